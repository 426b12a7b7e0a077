"""Flags -> typed configs.  Only this package (and the entry points) touch argparse."""
from __future__ import annotations

import argparse
import json
import math
from collections.abc import Sequence
from pathlib import Path

from options.config import (DataConfig, DisplayConfig, LossConfig, MetricsConfig, NetworkConfig,
                            OptimConfig, RunConfig, TestConfig, TrainConfig, train_config_from_dict)
from options.flags import PAIRED_DATASET_MODES, build_parser, generator_defaults, model_defaults
from translate.nets.discriminators import DISCRIMINATORS
from translate.nets.generators import GENERATORS, generator_arguments
from translate.nets.layers import NORMS
from translate import devices
from translate.models import MODELS, TRAINABLE, ModelSpec

__all__ = ["OptionsError", "parse_train_options", "parse_test_options", "format_options",
           "TrainConfig", "TestConfig", "train_config_from_dict"]



class OptionsError(ValueError):
    """A bad flag value or combination; the message says which flag and what to do."""


def _parse(argv: Sequence[str] | None, is_train: bool) -> tuple[argparse.Namespace, argparse.ArgumentParser]:
    probe = build_parser(is_train)
    known, _ = probe.parse_known_args(argv)
    parser = build_parser(is_train, known.model)
    # After the model's defaults, which may name the generator.
    parser.set_defaults(**generator_defaults(parser.parse_known_args(argv)[0].netG, is_train))
    if not is_train:
        parser.set_defaults(**classic_run_defaults(Path(known.checkpoints_dir) / known.name))
    return parser.parse_args(argv), parser


def explicit_flags(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> frozenset[str]:
    """The dests of the flags ``argv`` gives, whatever their value (a default the user repeats
    counts).  argparse fills only attributes the namespace lacks, so a namespace that already
    holds a marker for every dest keeps the marker exactly where no flag was given (defaults,
    per-model set_defaults included)."""
    unset = object()
    marked = argparse.Namespace(**{a.dest: unset for a in parser._actions if a.dest != argparse.SUPPRESS})
    parser.parse_args(argv, namespace=marked)
    return frozenset(k for k, v in vars(marked).items() if v is not unset)


# Flags that a classic run's train_opt.txt supplies to test.py when the command line leaves
# them out (the classic test.py needs them repeated).  Runs trained here carry their config.
CLASSIC_TEST_FLAGS = ("netG", "norm", "ngf", "input_nc", "output_nc", "no_dropout", "direction")


def read_options_file(path: Path) -> dict[str, str]:
    """``key: value  [default: ...]`` lines of a classic train_opt.txt -> {key: value}."""
    flags = {}
    for line in path.read_text(errors="replace").splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() and value.split():
            flags[key.strip()] = value.split()[0]
    return flags


def classic_flags(flags: dict[str, str], model: str, keys) -> tuple[argparse.Namespace, frozenset]:
    """train.py's flags for a classic run: the ``keys`` of ``flags`` (from train_opt.txt) read by
    train.py's own parser, with the classic defaults of ``model`` for the rest.

    Returns the parsed flags and the keys taken from the file.  A value the parser refuses (a
    flag of another version of the classic code) is left out, so its default applies.  This is
    the one reading of train_opt.txt: test.py's defaults and the inference loader both use it.
    """
    parser = build_parser(True, model)
    argv, switches, taken = [], {}, set()
    for action in parser._actions:   # noqa: SLF001 - argparse offers no public list of its actions
        key = action.dest
        if key not in keys or key not in flags:
            continue
        flag, value = action.option_strings[0], flags[key]
        if action.nargs == 0:   # store_true flags are written True / False; False must beat a
            switches[key] = value == "True"   # model default of True (cycle_gan's no_dropout)
            taken.add(key)
        elif _accepts(action, value):
            argv += [flag, value]
            taken.add(key)
    parsed = parser.parse_args(argv)
    for key, on in switches.items():
        setattr(parsed, key, on)
    return parsed, frozenset(taken)


def _accepts(action: argparse.Action, value: str) -> bool:
    try:
        converted = action.type(value) if action.type else value
    except (TypeError, ValueError, argparse.ArgumentTypeError):
        return False
    return action.choices is None or converted in action.choices


def classic_run_defaults(run_dir: Path) -> dict:
    """Network flags of a classic run folder (train_opt.txt, no train_config.json), else {}."""
    opt_file = run_dir / "train_opt.txt"
    if (run_dir / "train_config.json").exists() or not opt_file.is_file():
        return {}
    found = read_options_file(opt_file)
    model = found.get("model") if found.get("model") in TRAINABLE else TRAINABLE[0]
    parsed, taken = classic_flags(found, model, CLASSIC_TEST_FLAGS)
    return {key: getattr(parsed, key) for key in taken}


def _gpu_ids(text: str) -> tuple[int, ...]:
    try:
        return tuple(devices.gpu_list(str(text)))
    except devices.DeviceError as err:
        raise OptionsError(str(err)) from None


def _generator_multiple(o) -> int:
    if o.netG not in GENERATORS:
        return 1
    from translate.networks import size_rule
    return size_rule("generator", _network_config(o)).multiple


def _network_sizes(o, net: NetworkConfig, is_train: bool, multiple: int) -> tuple[int, int]:
    """(multiple, smallest side) that every image must have for the networks.

    The transforms round to the multiple and scale smaller images up (datasets/transforms.py).
    Each network's size rule (translate/nets/signatures.py) gives both without building it.
    When training, the discriminator must take the images too: its multiple joins in, and the
    smallest side is the first common multiple that both networks take.
    """
    from translate.networks import size_rule
    if net.netG not in GENERATORS or (is_train and net.netD not in DISCRIMINATORS):
        return multiple, 1   # an unknown name is reported by the checks
    side = size_rule("generator", net).min_side
    if not is_train:
        return multiple, side
    disc = size_rule("discriminator", net)
    multiple = math.lcm(multiple, disc.multiple)
    return multiple, -(-max(side, disc.min_side) // multiple) * multiple


def _check_network_flags(net: NetworkConfig, given: frozenset[str]) -> None:
    """A network flag given on the command line that neither network takes is a mistake
    (a misspelt network, or a flag meant for another one); defaults never are."""
    from translate.networks import flags_without_effect
    unused = flags_without_effect(net, sorted(given), ("generator", "discriminator"))
    if unused:
        raise OptionsError(unused[0])


def _sizes(o, builtin: bool, is_train: bool, multiple: int) -> None:
    """Classic sizes (load 286, crop 256; test: load = crop).

    The built-in data is 128 px: crop 128 there, unless the generator needs more (unet_256).
    """
    if o.crop_size is None:
        o.crop_size = max(128, multiple) if builtin else 256
    if o.load_size is None:
        o.load_size = round(o.crop_size * 286 / 256) if is_train else o.crop_size


def _network_config(o) -> NetworkConfig:
    return NetworkConfig(
        netG=o.netG, netD=o.netD, input_nc=o.input_nc, output_nc=o.output_nc, ngf=o.ngf, ndf=o.ndf,
        n_layers_D=o.n_layers_D, norm=o.norm, init_type=o.init_type, init_gain=o.init_gain,
        use_dropout=not o.no_dropout, vit_patch_size=o.vit_patch_size, vit_depth=o.vit_depth,
        vit_dim=o.vit_dim, vit_heads=o.vit_heads, vit_noise=o.vit_noise, vit_pixel_skip=o.vit_pixel_skip,
        vit_patch_overlap=o.vit_patch_overlap, vit_decode_overlap=o.vit_decode_overlap, vit_stem=o.vit_stem,
        vit_fourier_scale=o.vit_fourier_scale, vit_output_init=o.vit_output_init, spectral_norm=o.spectral_norm,
        self_attention=o.self_attention, num_D=o.num_D, crop_size=o.crop_size)


def _data_config(o, phase: str, sizes: tuple[int, int]) -> DataConfig:
    multiple, min_side = sizes
    return DataConfig(
        dataroot=o.dataroot, dataset_mode=o.dataset_mode, direction=o.direction, phase=phase,
        serial_batches=o.serial_batches, num_threads=o.num_threads, batch_size=o.batch_size,
        load_size=o.load_size, crop_size=o.crop_size,
        max_dataset_size=None if math.isinf(o.max_dataset_size) else int(o.max_dataset_size),
        preprocess=o.preprocess, no_flip=o.no_flip, input_nc=o.input_nc, output_nc=o.output_nc,
        size_multiple=multiple, seed=o.seed, min_side=min_side, skip_unmatched=o.skip_unmatched)


def _run_config(o, is_train: bool) -> RunConfig:
    name = o.name
    if o.suffix:
        name = f"{name}_{o.suffix.format(**vars(o))}"
    epoch = f"iter_{o.load_iter}" if o.load_iter > 0 else str(o.epoch)
    return RunConfig(
        name=name, checkpoints_dir=o.checkpoints_dir, model=o.model, gpu_ids=_gpu_ids(o.gpu_ids),
        continue_train=getattr(o, "continue_train", False), start_over=getattr(o, "start_over", False),
        epoch=epoch, load_iter=o.load_iter,
        verbose=o.verbose, save_latest_freq=getattr(o, "save_latest_freq", 5000),
        save_epoch_freq=getattr(o, "save_epoch_freq", 5), save_by_iter=getattr(o, "save_by_iter", False))


def _check_common(o, multiple: int) -> None:
    # Each flag's own range is checked while parsing (options/ranges.py); here: combinations.
    for flag in ("crop_size", "load_size"):  # also the computed defaults
        if getattr(o, flag) < 1:
            raise OptionsError(f"--{flag} must be at least 1 (got {getattr(o, flag)})")
    if o.input_nc not in (1, 3) or o.output_nc not in (1, 3):
        raise OptionsError("--input_nc and --output_nc must be 1 (grayscale) or 3 (RGB)")
    if o.preprocess in ("resize_and_crop", "scale_width_and_crop") and o.crop_size > o.load_size:
        raise OptionsError(f"--crop_size {o.crop_size} is larger than --load_size {o.load_size}; "
                           f"lower --crop_size or raise --load_size")
    if o.preprocess != "none" and "crop" in o.preprocess and o.crop_size % multiple:
        # A patch-based generator's multiple is its patch size: name that flag too.
        patch = (f" (its patches, --vit_patch_size {o.vit_patch_size})"
                 if "patch_size" in generator_arguments(o.netG) else "")
        raise OptionsError(f"--netG {o.netG} needs image sides that are multiples of {multiple}{patch}; "
                           f"--crop_size {o.crop_size} is not (try {max(multiple, o.crop_size // multiple * multiple)})")
    _check_vit(o)


def _uses_vit(o) -> bool:
    return o.netG == "vit_siren" or o.netD == "vit"


def _check_vit(o) -> None:
    if _uses_vit(o) and o.vit_dim % o.vit_heads:
        raise OptionsError(f"--vit_heads {o.vit_heads} must divide --vit_dim {o.vit_dim} "
                           f"(each head gets vit_dim / vit_heads channels)")
    if o.netG != "vit_siren":
        return
    if o.vit_decode_overlap is not None and o.vit_decode_overlap > o.vit_patch_size // 2:
        raise OptionsError(f"--vit_decode_overlap {o.vit_decode_overlap} reaches more than half into the "
                           f"neighbouring patches; use at most --vit_patch_size / 2 = {o.vit_patch_size // 2}")
    if o.vit_stem == "conv" and o.vit_patch_size & (o.vit_patch_size - 1):
        raise OptionsError(f"--vit_stem conv halves the image per stage, so --vit_patch_size must be a power "
                           f"of two (got {o.vit_patch_size}); use e.g. {1 << (o.vit_patch_size.bit_length() - 1)} "
                           f"or --vit_stem linear")


def _check_crop_fits(o, sizes: tuple[int, int], networks: str) -> None:
    """Where preprocess crops, the networks see crop_size images: they must take that size
    (the discriminator's receptive field / downsamplings, a ResNet's padding, U-Net and ViT
    multiples; from the networks' size rules, see _network_sizes)."""
    multiple, smallest = sizes
    if "crop" not in o.preprocess or (o.crop_size >= smallest and o.crop_size % multiple == 0):
        return
    fits = max(smallest, -(-o.crop_size // multiple) * multiple)
    names = networks.format(netG=o.netG, netD=getattr(o, "netD", ""))
    raise OptionsError(f"--crop_size {o.crop_size}: {names} image sides of at least {smallest} px that "
                       f"are multiples of {multiple}; use --crop_size {fits}" + (" (and --load_size >= it)"
                       if o.preprocess != "crop" and o.load_size < fits else ""))


def _models_where(test) -> list[str]:
    """The trainable --model names whose spec passes ``test`` (for messages that suggest one)."""
    return [name for name in TRAINABLE if test(MODELS[name])]


def _or_list(names: list[str]) -> str:
    return " or ".join([", ".join(names[:-1]), names[-1]] if len(names) > 2 else names)


def _reconstruction_weights(o, spec: ModelSpec) -> bool:
    """Whether one of the model's reconstruction terms (spec.terms but the GAN ones) has a weight > 0."""
    weight = {"l1": o.lambda_L1, "cycle_a": o.lambda_A, "cycle_b": o.lambda_B,
              "idt_a": o.lambda_A * o.lambda_identity, "idt_b": o.lambda_B * o.lambda_identity,
              "cs_a": o.lambda_cs, "cs_b": o.lambda_cs}
    return any(weight[t] > 0 for t in spec.terms if t in weight)


def _check_train(o) -> None:
    spec = MODELS[o.model]
    paired_data = o.dataset_mode in PAIRED_DATASET_MODES
    if o.continue_train and o.start_over:
        raise OptionsError("--continue_train resumes the run and --start_over deletes it: give one of them")
    if spec.paired and not paired_data:
        unpaired = " or ".join(f"--model {m}" for m in _models_where(lambda s: not s.paired))
        raise OptionsError(f"--model {o.model} needs paired data: use --dataset_mode aligned or "
                           f"paired_folders" + (f" (or {unpaired} for unpaired data)" if unpaired else ""))
    if o.dataset_mode == "paired_folders" and o.dataroot is None:
        raise OptionsError("--dataset_mode paired_folders needs --dataroot DIR (DIR/trainA and "
                           "DIR/trainB with matching file names)")
    if not spec.trainable:
        raise OptionsError(f"--model {o.model} is for test.py; train with {_or_list(list(TRAINABLE))}")
    if o.dataset_mode == "single":   # every trainable model reads A and B (paired ones stopped above)
        raise OptionsError(f"--model {o.model} trains on two domains: use --dataset_mode unaligned or aligned")
    if not paired_data and (o.lambda_L1 > 0 or o.lambda_cs > 0):
        flag = "--lambda_L1" if o.lambda_L1 > 0 else "--lambda_cs"
        raise OptionsError(f"{flag} needs paired data (--dataset_mode aligned or paired_folders); "
                           f"set it to 0 for unpaired data")
    if "cs_a" not in spec.terms and o.lambda_cs > 0:
        owners = _models_where(lambda s: "cs_a" in s.terms)
        raise OptionsError(f"--lambda_cs belongs to --model {_or_list(owners)} (paired cycle model)")
    if spec.two_way and o.lambda_identity > 0 and o.input_nc != o.output_nc:
        raise OptionsError(f"--lambda_identity needs --input_nc == --output_nc (got {o.input_nc} and "
                           f"{o.output_nc}); set --lambda_identity 0")
    if o.n_epochs < 0 or o.n_epochs_decay < 0 or o.n_epochs + o.n_epochs_decay < 1:
        raise OptionsError("--n_epochs + --n_epochs_decay must be at least 1")
    if o.mixed_precision == "fp16" and o.gpu_ids == "-1":
        raise OptionsError(devices.FP16_NEEDS_GPU)
    if o.lambda_cutmix > 0 and o.netD != "unet":
        raise OptionsError("--lambda_cutmix needs the per-pixel map of --netD unet (U-Net GAN)")
    if (o.adaptive_gan_weight or o.disc_start > 0) and not _reconstruction_weights(o, spec):
        raise OptionsError("--adaptive_gan_weight and --disc_start weigh the GAN term against a "
                           "reconstruction term: set --lambda_L1 (pix2pix) or the cycle weights > 0")
    _check_latent_optimization(o)
    unknown = [t for t in _diffaugment(o) if t not in ("color", "translation", "cutout")]
    if unknown:
        raise OptionsError(f"--diffaugment: unknown {', '.join(unknown)}; use color,translation,cutout")


def _check_latent_optimization(o) -> None:
    """LOGAN optimises a noise latent: the generator must take one, of --vit_noise > 0 entries."""
    if not o.latent_optimization:
        return
    takers = sorted(n for n in GENERATORS if "noise_dim" in generator_arguments(n))
    if o.netG not in takers:
        raise OptionsError(f"--latent_optimization needs a generator with a noise latent (--netG {_or_list(takers)} "
                           f"with --vit_noise > 0); --netG {o.netG} takes none")
    if o.vit_noise == 0:
        raise OptionsError(f"--latent_optimization optimises the noise latent, but --vit_noise is 0: "
                           f"set --vit_noise N (e.g. 64) for --netG {o.netG}")


def _diffaugment(o) -> tuple[str, ...]:
    return tuple(t.strip() for t in o.diffaugment.split(",") if t.strip())


def _logging_fields(o) -> dict:
    """The TensorBoard / W&B fields of DisplayConfig; a missing package stops here, before any work."""
    needs = {"use_tensorboard": ("tensorboard", "tensorboard"), "use_wandb": ("wandb", "wandb")}
    for flag, (module, extra) in needs.items():
        if getattr(o, flag) and not _importable(module):
            raise OptionsError(f'--{flag} needs the {module} package: pip install -e ".[{extra}]" '
                               f"(or pip install {module})")
    return {"use_tensorboard": o.use_tensorboard, "use_wandb": o.use_wandb,
            "wandb_project_name": o.wandb_project_name}


def _importable(module: str) -> bool:
    import importlib.util
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):   # ValueError: a module blocked or half-imported in sys.modules
        return False


def parse_train_options(argv: Sequence[str] | None = None) -> TrainConfig:
    o, parser = _parse(argv, is_train=True)
    builtin = o.dataroot is None
    multiple = _generator_multiple(o)
    _sizes(o, builtin, is_train=True, multiple=multiple)
    _check_common(o, multiple)
    _check_train(o)
    lambda_l1 = o.lambda_L1
    net = _network_config(o)
    _check_network_flags(net, explicit_flags(parser, argv))
    sizes = _network_sizes(o, net, True, multiple)
    _check_crop_fits(o, sizes, "--netG {netG} and --netD {netD} need")
    return TrainConfig(
        run=_run_config(o, True), data=_data_config(o, o.phase, sizes),
        net=net,
        loss=LossConfig(gan_mode=o.gan_mode, lambda_a=o.lambda_A, lambda_b=o.lambda_B,
                        lambda_identity=o.lambda_identity if MODELS[o.model].two_way else 0.0,
                        lambda_l1=lambda_l1, lambda_cs=o.lambda_cs, lambda_gp=o.lambda_gp,
                        lambda_cutmix=o.lambda_cutmix, lambda_bcr_real=o.lambda_bcr_real,
                        lambda_bcr_fake=o.lambda_bcr_fake, lambda_r1=o.lambda_r1,
                        diffaugment=_diffaugment(o), adaptive_gan_weight=o.adaptive_gan_weight,
                        disc_start=o.disc_start),
        optim=OptimConfig(lr=o.lr, lr_d=o.lr_D, beta1=o.beta1, n_epochs=o.n_epochs,
                          n_epochs_decay=o.n_epochs_decay, epoch_count=o.epoch_count,
                          lr_policy=o.lr_policy, lr_decay_iters=o.lr_decay_iters,
                          pool_size=o.pool_size, mixed_precision=o.mixed_precision,
                          channels_last=o.channels_last, compile=o.compile, n_critic=o.n_critic,
                          ema_decay=o.ema_decay, max_bad_steps=o.max_bad_steps,
                          max_iters=o.max_iters, seed=o.seed, deterministic=o.deterministic,
                          fast_convs=not o.stock_convs,
                          latent_optimization=o.latent_optimization, lo_steps=o.lo_steps, lo_alpha=o.lo_alpha,
                          lo_beta=o.lo_beta, lo_clip=o.lo_clip),
        display=DisplayConfig(display_id=o.display_id, display_server=o.display_server,
                              display_port=o.display_port, display_env=o.display_env,
                              display_ncols=o.display_ncols, display_freq=o.display_freq,
                              display_winsize=o.display_winsize, update_html_freq=o.update_html_freq,
                              print_freq=o.print_freq, no_html=o.no_html, **_logging_fields(o)),
        flags=_flags_with_defaults(o, True), metrics=_metrics_config(o, True))


def _metrics_config(o, is_train: bool) -> MetricsConfig:
    """The metrics flags, checked (see translate/metrics for the METRICS table)."""
    from translate.metrics import DEFAULT_VAL_METRICS, METRICS
    if o.kid_subsets < 1 or o.kid_subset_size < 2 or o.metrics_batch_size < 1:
        raise OptionsError("--kid_subsets and --metrics_batch_size must be at least 1, --kid_subset_size at least 2")
    common = dict(inception=o.inception, kid_subsets=o.kid_subsets, kid_subset_size=o.kid_subset_size,
                  batch_size=o.metrics_batch_size)
    if not is_train:
        return MetricsConfig(enabled=o.metrics, **common)
    if o.val_freq < 0 or o.val_max_size < 2:
        raise OptionsError("--val_freq must be 0 (off) or more and --val_max_size at least 2")
    paired = o.dataset_mode in PAIRED_DATASET_MODES + ("synthetic_paired",)
    if o.val_metrics is None:
        names = DEFAULT_VAL_METRICS[paired]
    else:
        names = tuple(dict.fromkeys(t.strip() for t in o.val_metrics.split(",") if t.strip()))
        unknown = [n for n in names if n not in METRICS]
        if unknown or not names:
            raise OptionsError(f"--val_metrics: unknown metric {', '.join(unknown) or '(none given)'}; "
                               f"choose from {', '.join(sorted(METRICS))}")
        unpaired_only = [n for n in names if METRICS[n].needs_paired and not paired]
        if unpaired_only:
            raise OptionsError(f"--val_metrics {', '.join(unpaired_only)} need paired data "
                               f"(--dataset_mode aligned); on unpaired data use kid,fid")
    if o.save_best is not None and o.val_freq == 0:
        raise OptionsError(f"--save_best {o.save_best} needs validation: set --val_freq N (iterations)")
    if o.save_best is not None and o.save_best not in names:
        raise OptionsError(f"--save_best {o.save_best} is not computed: add it to --val_metrics "
                           f"(computed: {','.join(names)})")
    return MetricsConfig(val_freq=o.val_freq, val_phase=o.val_phase, val_max_size=o.val_max_size,
                         val_metrics=names if o.val_freq > 0 else (), save_best=o.save_best, **common)


def parse_test_options(argv: Sequence[str] | None = None) -> TestConfig:
    o, _ = _parse(argv, is_train=False)
    # Classic test-time settings: in order, no flips, one image at a time, no workers.
    o.serial_batches, o.no_flip, o.num_threads = True, True, 0
    saved = _with_saved_generator(o)
    multiple = _generator_multiple(saved)
    _sizes(o, o.dataroot is None, is_train=False, multiple=multiple)
    _check_common(o, multiple)
    if o.num_test < 1:
        raise OptionsError("--num_test must be at least 1")
    net = _network_config(o)
    # The sizes of the generator that will run: the saved one, for runs trained here.
    sizes = _network_sizes(o, _network_config(_with_saved_generator(o)), False, multiple)
    _check_crop_fits(_with_saved_generator(o), sizes, "--netG {netG} needs")
    return TestConfig(
        run=_run_config(o, False), data=_data_config(o, o.phase, sizes),
        net=net,
        results_dir=o.results_dir, aspect_ratio=o.aspect_ratio, eval=o.eval, num_test=o.num_test,
        model_suffix=o.model_suffix, html_page_size=o.html_page_size,
        mixed_precision=o.mixed_precision, channels_last=o.channels_last, compile=o.compile,
        flags=_flags_with_defaults(o, False), metrics=_metrics_config(o, False))


def _with_saved_generator(o):
    """For runs trained here the saved config, not the flags, decides the generator."""
    saved = Path(o.checkpoints_dir) / o.name / "train_config.json"
    if not saved.exists():
        return o
    try:
        net = json.loads(saved.read_text())["net"]
    except (ValueError, KeyError):
        return o
    return argparse.Namespace(**{**vars(o), "netG": net.get("netG", o.netG),
                                 "vit_patch_size": net.get("vit_patch_size", o.vit_patch_size)})


def _flags_with_defaults(o, is_train: bool) -> dict:
    defaults = vars(build_parser(is_train, o.model).parse_args([]))
    return {k: {"value": v, "default": defaults.get(k)} for k, v in sorted(vars(o).items())
}


def format_options(flags: dict) -> str:
    """The classic train_opt.txt text: one flag a line, with the default where it differs."""
    lines = ["----------------- Options ---------------"]
    for key, entry in flags.items():
        value, default = entry["value"], entry["default"]
        note = f"\t[default: {default}]" if value != default else ""
        lines.append(f"{key:>25}: {str(value):<30}{note}")
    lines.append("----------------- End -------------------")
    return "\n".join(lines) + "\n"


def network_config_from_flags(o: argparse.Namespace) -> NetworkConfig:
    """The networks of parsed train.py flags (the loader reads a classic train_opt.txt so)."""
    return _network_config(o)
