"""Load a trained run for translation: the one loader of test.py, ``python -m translate``,
export, ``translate.load_translator`` and the benchmark.

What loads what:

- our checkpoint ``ckpt_<label>/`` (weights + the resolved config): the networks are
  rebuilt from the config it carries, whatever the flags say; the EMA weights
  (``ema_gen_*``, trained with --ema_decay) are used when present unless ``ema=False``;
- classic ``<label>_net_G*.pth`` files (the classic code's, or ours written beside our
  checkpoints): the networks are built from the flags, which for ``python -m translate``,
  export and the API are the run's train_opt.txt read by train.py's own parser (with
  the classic per-model defaults for what the file leaves out, or when there is none);
- a bare classic generator file (``load_source``): the network is recognised from its
  tensors (translate.pretrained).

Which generators a model has and their classic file names come from translate.models.
A damaged ``latest`` falls back to the newest intact checkpoint, with a warning on stderr
(see checkpoint.find_intact_checkpoint); damaged files are errors naming them.
"""
from __future__ import annotations

import argparse
import re
from dataclasses import dataclass
from pathlib import Path

from torch import nn

from options.config import NetworkConfig, train_config_from_dict
from translate import checkpoint as ckpt
from translate.models import MODELS, ModelSpec, get_model
from translate.networks import build_networks, make_generator, rebuild_networks

# The train.py flags a classic train_opt.txt gives the loader: those that shape the
# generators (NetworkConfig's) and the direction the run was trained in.
CLASSIC_RUN_FLAGS = ("netG", "ngf", "norm", "no_dropout", "input_nc", "output_nc", "crop_size", "init_type",
                     "vit_patch_size", "vit_depth", "vit_dim", "vit_heads", "vit_noise", "vit_pixel_skip",
                     "vit_patch_overlap", "vit_decode_overlap", "vit_stem", "vit_fourier_scale", "vit_output_init",
                     "self_attention", "direction")
CLASSIC_CROP_SIZE = 256   # the classic --crop_size default (ours is 128 on the built-in data)
CLASSIC_FILE = re.compile(r"(?P<label>.+)_net_G\.pth")


@dataclass
class LoadedRun:
    generators: dict[str, nn.Module]   # gen_ab and, for two-way models, gen_ba
    model: str                         # the model the weights were trained as
    net: NetworkConfig
    train_config: dict | None          # the resolved training config, for our checkpoints
    source: str


@dataclass
class RunGenerator:
    """One generator of a run, with what a caller needs to feed it."""
    module: nn.Module
    in_channels: int
    out_channels: int
    size: int            # the crop size it was trained at
    direction: str       # AtoB | BtoA, in the dataset's domains
    description: str     # "gen_ab of run NAME (epoch latest, cycle_gan)"


def load_generators(run_dir: str | Path, label: str, *, model: str | None, net: NetworkConfig | None,
                    model_suffix: str = "", ema: bool = True) -> LoadedRun:
    """Generators of the run in ``run_dir`` at checkpoint ``label`` (latest, an epoch, iter_N).

    Our checkpoints carry their config, so the networks are rebuilt from it and
    ``net`` is ignored; classic ``<label>_net_G*.pth`` files are built from ``net``.
    EMA weights (``ema_gen_*``) are used when the checkpoint has them, unless ``ema`` is False.
    ``model_suffix`` (test.py's --model_suffix, for --model test) picks ``G<suffix>``.
    ``model`` and ``net`` may be None where only our checkpoints are to be loaded.
    """
    run_dir = Path(run_dir)
    wanted = get_model(model) if model is not None else None
    found = ckpt.find_intact_checkpoint(run_dir, label)
    if found is not None:
        # Our checkpoint: the networks are rebuilt from the config saved with the weights.
        weights, config = ckpt.load_checkpoint(found)
        trained = train_config_from_dict(config)
        # Rebuilt from the networks' records; checkpoints written before they had them, from the config.
        records, gen_names = ckpt.load_network_records(found) or {}, get_model(trained.run.model).generators
        nets = (rebuild_networks({n: records[n] for n in gen_names}) if all(n in records for n in gen_names)
                else build_networks(trained.run.model, trained.net, with_discriminators=False))
        for name, g in nets.items():
            state = weights.get(f"ema_{name}", weights.get(name)) if ema else weights.get(name)
            if state is None:
                raise ckpt.CheckpointError(f"{found} holds no weights for {name}")
            ckpt.load_into(g, state, f"{found} [{name}]")
        gens = dict(nets.items())
        picked = wanted and _suffix_generator(wanted, model_suffix, get_model(trained.run.model))
        if picked and picked in gens:
            gens = {"gen_ab": gens[picked]}
        return LoadedRun(gens, trained.run.model, trained.net, config, str(found))
    if wanted is None or net is None:
        raise ckpt.CheckpointError(f"no checkpoint '{label}' for run {run_dir.name}: looked for "
                                   f"{run_dir / f'ckpt_{label}'}. Check --name, --checkpoints_dir, --epoch.")
    return _load_classic(run_dir, label, wanted, net=net, model_suffix=model_suffix)


def _suffix_generator(wanted: ModelSpec, model_suffix: str, trained: ModelSpec) -> str | None:
    """For a one-file model (--model test), the generator ``G<suffix>`` names in ``trained``."""
    if wanted.trainable or not model_suffix:
        return None
    classic = {name: gen for gen, name in trained.classic_names.items()}
    return classic.get(f"{wanted.classic_names['gen_ab']}{model_suffix}")


def _classic_files(spec: ModelSpec, model_suffix: str) -> dict[str, str]:
    """Our generator name -> classic file stem (G, G_A, ...); test.py's one-file model adds the suffix."""
    suffix = "" if spec.trainable else model_suffix
    return {gen: f"{spec.classic_names[gen]}{suffix}" for gen in spec.generators}


def _load_classic(run_dir: Path, label: str, spec: ModelSpec, *, net: NetworkConfig,
                  model_suffix: str) -> LoadedRun:
    paths = {gen: run_dir / f"{label}_net_{stem}.pth" for gen, stem in _classic_files(spec, model_suffix).items()}
    missing = [str(p) for p in paths.values() if not p.exists()]
    if missing:
        raise ckpt.CheckpointError(
            f"no checkpoint '{label}' for run {run_dir.name}: looked for {run_dir / f'ckpt_{label}'} "
            f"and {', '.join(missing)}. Check --name, --checkpoints_dir, --epoch (and --model_suffix).")
    gens = {}
    for gen, path in paths.items():
        gens[gen] = make_generator(net, *spec.generator_channels(gen, net.input_nc, net.output_nc))
        ckpt.load_into(gens[gen], ckpt.load_classic_state_dict(path), str(path))
    return LoadedRun(gens, spec.name, net, None, ", ".join(str(p) for p in paths.values()))


# ---- a classic run's settings ----------------------------------------------------

def classic_model(run_dir: Path, label: str, flags: dict[str, str]) -> ModelSpec:
    """The model of a classic run: train_opt.txt's ``model`` line where its files are there, else the files'.

    Of the trainable models whose generator files all exist, the one with the most
    generators (two files G_A, G_B: a cycle model; one file G: pix2pix).
    """
    trainable = [spec for spec in MODELS.values() if spec.trainable]
    present = [spec for spec in trainable
               if all((run_dir / f"{label}_net_{stem}.pth").exists() for stem in _classic_files(spec, "").values())]
    named = MODELS.get(flags.get("model", ""))
    if named in present:   # (a published CycleGAN generator is one G file: its line says cycle_gan)
        return named
    return max(present or [min(trainable, key=lambda s: len(s.generators))], key=lambda s: len(s.generators))


def classic_flags(run_dir: Path, model: ModelSpec, flags: dict[str, str]) -> argparse.Namespace:
    """train.py's flags for a classic run: ``flags`` (from train_opt.txt) read by train.py's parser
    (options.classic_flags: the classic defaults of ``model``, each value's type and range)."""
    from options import classic_flags as read_classic_flags
    parsed, _ = read_classic_flags(flags, model.name, CLASSIC_RUN_FLAGS)
    if parsed.crop_size is None:
        parsed.crop_size = CLASSIC_CROP_SIZE
    return parsed


def classic_settings(run_dir: Path, label: str) -> tuple[ModelSpec, NetworkConfig, str]:
    """(model, networks, trained direction) of a classic run, from its train_opt.txt if any."""
    from options import network_config_from_flags, read_options_file
    opt_file = run_dir / "train_opt.txt"
    flags = read_options_file(opt_file) if opt_file.is_file() else {}
    model = classic_model(run_dir, label, flags)
    parsed = classic_flags(run_dir, model, flags)
    return model, network_config_from_flags(parsed), parsed.direction


# ---- one generator, by direction -------------------------------------------------

def load_run_generator(checkpoints_dir: str, name: str, epoch: str = "latest",
                       direction: str | None = None, *, ema: bool = True) -> RunGenerator:
    """The generator of run ``name`` that translates ``direction``.

    Directions are the dataset's domains.  ``gen_ab`` maps the side the run was
    trained from to the other (for a run trained with --direction BtoA, B to A),
    so leaving ``direction`` out, or naming the run's own, picks ``gen_ab`` and the
    opposite picks ``gen_ba``, which only two-generator models (cycle_gan, csgan) have.
    """
    run_dir = Path(checkpoints_dir) / name
    if not run_dir.is_dir():
        raise ckpt.CheckpointError(f"no run folder {run_dir}: check --name and --checkpoints_dir")
    model, net, trained = None, None, "AtoB"   # our checkpoints carry their model and networks
    if ckpt.find_checkpoint(run_dir, epoch) is None:
        spec, net, trained = classic_settings(run_dir, epoch)
        model = spec.name
    loaded = load_generators(run_dir, epoch, model=model, net=net, ema=ema)
    if loaded.train_config is not None:
        trained = loaded.train_config.get("data", {}).get("direction", "AtoB")
    wanted = direction or trained
    key = "gen_ab" if wanted == trained else "gen_ba"
    if key not in loaded.generators:
        two_way = ", ".join(n for n, s in MODELS.items() if s.two_way)
        raise ckpt.CheckpointError(
            f"run {name} is a --model {loaded.model} run with one generator, trained {trained}; "
            f"--direction {wanted} needs a two-generator model ({two_way}). Leave --direction out.")
    channels = (loaded.net.input_nc, loaded.net.output_nc)
    in_c, out_c = channels if key == "gen_ab" else channels[::-1]
    return RunGenerator(loaded.generators[key].eval(), in_c, out_c, loaded.net.crop_size, wanted,
                        f"{key} ({wanted}) of run {name}, epoch {epoch}, --model {loaded.model}")


def load_source(source: str | Path, *, checkpoints_dir: str = "./checkpoints", epoch: str = "latest",
                direction: str | None = None, ema: bool = True) -> RunGenerator:
    """A run folder, a classic generator .pth file or a run name in ``checkpoints_dir``.

    A classic ``<label>_net_G.pth`` beside a train_opt.txt loads as that run folder's
    checkpoint ``label``; any other .pth is recognised from its tensors.
    """
    path = Path(source)
    if path.is_file():
        if path.suffix != ".pth":
            raise ValueError(f"{path} is neither a run folder nor a classic .pth generator file")
        named = CLASSIC_FILE.fullmatch(path.name)
        if named and (path.parent / "train_opt.txt").exists():   # a classic run folder's file
            return load_run_generator(str(path.parent.parent), path.parent.name, named["label"], direction, ema=ema)
        if direction not in (None, "AtoB"):
            raise ValueError(f"{path} is one generator: it translates one way only; leave direction out")
        from translate.pretrained import CLASSIC_CANDIDATES, fit_classic_generator
        module, net, _ = fit_classic_generator(ckpt.load_classic_state_dict(path), CLASSIC_CANDIDATES, str(path))
        return RunGenerator(module, net.input_nc, net.output_nc, CLASSIC_CROP_SIZE, "AtoB",
                            f"classic {net.netG} ({net.norm} norm) from {path}")
    if path.is_dir():
        return load_run_generator(str(path.parent), path.name, epoch, direction, ema=ema)
    if (Path(checkpoints_dir) / str(source)).is_dir():
        return load_run_generator(checkpoints_dir, str(source), epoch, direction, ema=ema)
    raise FileNotFoundError(f"no run folder, .pth file or run name {str(source)!r} (also looked in "
                            f"{checkpoints_dir}); `python -m translate.pretrained NAME` fetches a "
                            f"published one as NAME_pretrained")
