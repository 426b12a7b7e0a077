"""Load trained generators for translation: from our checkpoints or classic .pth files."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from torch import nn

from options.config import NetworkConfig, train_config_from_dict
from translate import checkpoint as ckpt
from translate.models import get_model
from translate.networks import build_networks, rebuild_networks

# Which classic file holds which of our generators, per model (--model test: G<suffix>).
CLASSIC_GENERATOR_FILES = {"pix2pix": {"gen_ab": "G"}, "cycle_gan": {"gen_ab": "G_A", "gen_ba": "G_B"},
                           "csgan": {"gen_ab": "G_A", "gen_ba": "G_B"}}


@dataclass
class LoadedRun:
    generators: dict[str, nn.Module]   # gen_ab and, for two-way models, gen_ba
    model: str                         # the model the weights were trained as
    net: NetworkConfig
    train_config: dict | None          # the resolved training config, for our checkpoints
    source: str


def load_generators(run_dir: str | Path, label: str, *, model: str, net: NetworkConfig,
                    model_suffix: str = "", ema: bool = True) -> LoadedRun:
    """Generators of the run in ``run_dir`` at checkpoint ``label`` (latest, an epoch, iter_N).

    Our checkpoints carry their config, so the networks are rebuilt from it and
    ``net`` is ignored; classic ``<label>_net_G*.pth`` files are built from ``net``.
    EMA weights (``ema_gen_*``) are used when the checkpoint has them, unless ``ema`` is False.
    A damaged ``latest`` falls back to the newest intact checkpoint, with a warning on stderr
    (see checkpoint.find_intact_checkpoint); damaged files are errors naming them.
    """
    run_dir = Path(run_dir)
    found = ckpt.find_intact_checkpoint(run_dir, label)
    if found is not None:
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
        if model == "test" and model_suffix == "_B" and "gen_ba" in gens:
            gens = {"gen_ab": gens["gen_ba"]}
        return LoadedRun(gens, trained.run.model, trained.net, config, str(found))
    return _load_classic(run_dir, label, model=model, net=net, model_suffix=model_suffix)


def _load_classic(run_dir: Path, label: str, *, model: str, net: NetworkConfig, model_suffix: str) -> LoadedRun:
    files = ({"gen_ab": f"G{model_suffix}"} if model == "test" else CLASSIC_GENERATOR_FILES.get(model))
    if files is None:
        raise ckpt.CheckpointError(f"--model {model} has no generators to load")
    paths = {name: run_dir / f"{label}_net_{stem}.pth" for name, stem in files.items()}
    missing = [str(p) for p in paths.values() if not p.exists()]
    if missing:
        raise ckpt.CheckpointError(
            f"no checkpoint '{label}' for run {run_dir.name}: looked for {run_dir / f'ckpt_{label}'} "
            f"and {', '.join(missing)}. Check --name, --checkpoints_dir, --epoch (and --model_suffix).")
    build_as = "cycle_gan" if len(paths) == 2 else "pix2pix"
    nets = build_networks(build_as, net, with_discriminators=False)
    for name, path in paths.items():
        ckpt.load_into(nets[name], ckpt.load_classic_state_dict(path), str(path))
    return LoadedRun({n: nets[n] for n in paths}, model, net, None, ", ".join(str(p) for p in paths.values()))
