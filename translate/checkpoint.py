"""Checkpoints: safetensors weights + the resolved config, training state, classic .pth files.

Layout of a run folder (checkpoints_dir/name):

    ckpt_<label>/weights.safetensors   every network (``gen_ab.model.0.weight`` ...),
                                       the config JSON in the safetensors metadata
    ckpt_<label>/state.pt              optimizers, schedulers, pools, RNG, counters
                                       (tensors and plain containers only: weights_only)
    <label>_net_G_A.pth ...            classic per-network state dicts, so the weights
                                       load in the classic code as well

A checkpoint folder is written under a temporary name and swapped in by rename,
so the previous one stays intact until the new one is complete.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn

# Our network names <-> the classic ones, per model.  Classic D_A judges G_A's
# output, i.e. domain B, hence disc_b.
CLASSIC_NAMES = {
    "pix2pix": {"gen_ab": "G", "disc_b": "D"},
    "cycle_gan": {"gen_ab": "G_A", "gen_ba": "G_B", "disc_b": "D_A", "disc_a": "D_B"},
    "csgan": {"gen_ab": "G_A", "gen_ba": "G_B", "disc_b": "D_A", "disc_a": "D_B"},
}


class CheckpointError(RuntimeError):
    """A checkpoint is missing or unusable; the message says what to do."""


def _atomic_save(obj_writer, path: Path) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    try:
        obj_writer(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _plain_state_dict(net: nn.Module) -> dict[str, torch.Tensor]:
    """State dict without the wrappers' prefixes (DDP 'module.', torch.compile '_orig_mod.')."""
    return {strip_prefixes(k): v.detach().cpu().contiguous() for k, v in net.state_dict().items()}


def strip_prefixes(key: str) -> str:
    for prefix in ("module.", "_orig_mod."):
        key = key.replace(prefix, "")
    return key


def save_checkpoint(run_dir: str | Path, label: str, nets: dict[str, nn.Module], config: dict,
                    state: dict | None = None, model: str | None = None) -> Path:
    """Write ``ckpt_<label>`` (weights + config, optional training state) and classic .pth files."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    tensors = {}
    for net_name, net in nets.items():
        for key, value in _plain_state_dict(net).items():
            tensors[f"{net_name}.{key}"] = value
    bad = [k for k, v in tensors.items() if v.is_floating_point() and not torch.isfinite(v).all()]
    if bad:
        raise CheckpointError(f"refusing to save non-finite weights ({bad[0]} ...); "
                              f"the previous checkpoint is kept")
    final = run_dir / f"ckpt_{label}"
    _remove_leftovers(run_dir, label)
    staging = Path(tempfile.mkdtemp(prefix=f".ckpt_{label}.", dir=run_dir))
    try:
        save_file(tensors, str(staging / "weights.safetensors"),
                  metadata={"config": json.dumps(config, default=str), "format": "translate-1"})
        if state is not None:
            torch.save(state, staging / "state.pt")
        _swap_in(staging, final)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    for net_name, classic in CLASSIC_NAMES.get(model or "", {}).items():
        if net_name in nets:
            sd = _plain_state_dict(nets[net_name])
            _atomic_save(lambda p, sd=sd: torch.save(sd, p), run_dir / f"{label}_net_{classic}.pth")
    return final


def _remove_leftovers(run_dir: Path, label: str) -> None:
    """Staging folders and temp files of saves that a crash interrupted (one writer per run)."""
    for stale in run_dir.glob(f".ckpt_{label}.*"):
        shutil.rmtree(stale, ignore_errors=True)
    for stale in run_dir.glob(f".{label}_net_*.pth.*"):
        stale.unlink(missing_ok=True)


def _swap_in(staging: Path, final: Path) -> None:
    """Replace ``final`` by ``staging``; at every instant one complete copy exists."""
    old = final.with_name(final.name + ".old")
    if final.exists():
        shutil.rmtree(old, ignore_errors=True)
        os.replace(final, old)
    os.replace(staging, final)
    shutil.rmtree(old, ignore_errors=True)


def find_checkpoint(run_dir: str | Path, label: str) -> Path | None:
    """The checkpoint folder for ``label``, or its ``.old`` twin left by a crash mid-swap."""
    run_dir = Path(run_dir)
    for candidate in (run_dir / f"ckpt_{label}", run_dir / f"ckpt_{label}.old"):
        if (candidate / "weights.safetensors").exists():
            return candidate
    return None


def load_checkpoint(path: str | Path) -> tuple[dict[str, dict[str, torch.Tensor]], dict]:
    """Read a checkpoint folder: ({net_name: state_dict}, config dict)."""
    path = Path(path)
    weights = path / "weights.safetensors"
    from safetensors import safe_open
    with safe_open(str(weights), framework="pt") as f:
        metadata = f.metadata() or {}
    tensors = load_file(str(weights))
    per_net: dict[str, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        net_name, _, param = key.partition(".")
        per_net.setdefault(net_name, {})[param] = value
    return per_net, json.loads(metadata.get("config", "{}"))


def load_training_state(path: str | Path) -> dict | None:
    state_file = Path(path) / "state.pt"
    if not state_file.exists():
        return None
    return torch.load(state_file, map_location="cpu", weights_only=True)


def load_classic_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Load a classic ``*_net_*.pth`` file, tensors only (a pickle with code is refused)."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"no checkpoint at {path}") from None
    except Exception as exc:  # weights_only refuses anything but tensors and containers
        raise CheckpointError(f"{path} is not a plain weights file and was not loaded ({exc}). "
                              f"Only tensors are accepted from .pth files.") from None
    if hasattr(state, "_metadata"):
        del state._metadata
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{path} does not hold a state dict of tensors")
    return {strip_prefixes(k): v for k, v in state.items()}


def load_into(net: nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    """Load ``state`` into ``net``, tolerating the classic InstanceNorm running-stat keys.

    Old classic checkpoints hold running_mean/var for InstanceNorm layers that
    track no stats; those keys are dropped.  Anything else that does not match
    is an error naming the first mismatching keys.
    """
    own = net.state_dict()
    state = {k: v for k, v in state.items()
             if k in own or not k.endswith(("running_mean", "running_var", "num_batches_tracked"))}
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    wrong_shape = [k for k in state if k in own and own[k].shape != state[k].shape]
    if missing or unexpected or wrong_shape:
        raise CheckpointError(
            f"{source} does not fit the network built from the options: missing {missing[:3]}, "
            f"unexpected {unexpected[:3]}, wrong shape {wrong_shape[:3]}. Check --netG/--netD/--norm/"
            f"--ngf/--no_dropout/--input_nc/--output_nc against the ones used for training.")
    net.load_state_dict(state)


def atomic_write_text(path: str | Path, text: str) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _atomic_save(lambda p: Path(p).write_text(text), path)
