"""Checkpoints: safetensors weights + the resolved config, training state, classic .pth files.

Layout of a run folder (checkpoints_dir/name):

    ckpt_<label>/weights.safetensors   every network (``gen_ab.model.0.weight`` ...),
                                       the config JSON in the safetensors metadata, and
                                       per network its table name and arguments
                                       ("networks": {"gen_ab": {"kind", "name", "args"}})
    ckpt_<label>/state.pt              optimizers, schedulers, pools, RNG, counters
                                       (tensors and plain containers only: weights_only)
    ckpt_<label>/checksums.json        size and SHA-256 of each file above, and the
                                       progress (epoch, iterations); written last
    <label>_net_G_A.pth ...            classic per-network state dicts, so the weights
                                       load in the classic code as well

A checkpoint folder is written under a temporary name and swapped in by rename
(translate/files.py), so the previous one stays intact until the new one is
complete.  Every loader checks what it reads against checksums.json (or, for
checkpoints written before it existed, the files' own structure) and says which
file is damaged and how; ``find_intact_checkpoint`` falls back from a damaged
``latest`` to the newest intact checkpoint of the run.
"""
from __future__ import annotations

import json
import re
import shutil
import sys
import zipfile
from pathlib import Path
from types import MappingProxyType
from typing import Callable

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from translate import files
from translate.models import MODELS

# Our network names <-> the classic ones (<label>_net_<classic>.pth), per model: the model
# table's classic_names.  Classic D_A judges G_A's output, i.e. domain B, hence disc_b.
CLASSIC_NAMES = MappingProxyType({name: spec.classic_names for name, spec in MODELS.items()})


WEIGHTS, STATE, MANIFEST = "weights.safetensors", "state.pt", "checksums.json"
NETWORKS_KEY = "networks"   # safetensors metadata: the network records, beside "config"
PROGRESS_KEYS = ("epoch", "epoch_iter", "total_iters", "steps")


class CheckpointError(RuntimeError):
    """A checkpoint is missing or unusable; the message says what to do."""


class DamagedCheckpointError(CheckpointError):
    """A checkpoint file is empty, truncated, corrupted or not what its name says."""

    def __init__(self, path: Path, problem: str):
        self.path, self.problem = Path(path), problem
        super().__init__(f"{path} is damaged: {problem}")


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
    with files.staged_directory(final) as staging:
        metadata = {"config": json.dumps(config, default=str), "format": "translate-1"}
        records = _network_records(nets)
        if records:   # per network: its table name and constructor arguments (translate/networks.py)
            metadata[NETWORKS_KEY] = json.dumps(records)
        # Through write_with for open()'s umask-given mode: safetensors alone makes 0600.
        files.write_with(staging / WEIGHTS, lambda p: save_file(tensors, p, metadata=metadata))
        if state is not None:
            files.write_with(staging / STATE, lambda p: torch.save(state, p))
        _write_manifest(staging, state)
    for net_name, classic in CLASSIC_NAMES.get(model or "", {}).items():
        if net_name in nets:
            sd = _plain_state_dict(nets[net_name])
            files.write_with(run_dir / f"{label}_net_{classic}.pth", lambda p, sd=sd: torch.save(sd, p))
    return final


def _network_records(nets: dict[str, nn.Module]) -> dict[str, dict]:
    from translate.networks import network_record
    records = {name: network_record(net) for name, net in nets.items()}
    return {name: r for name, r in records.items() if r is not None}


def load_network_records(path: str | Path) -> dict[str, dict] | None:
    """{net name: {"kind", "name", "args"}} of a checkpoint folder; None for checkpoints
    written before they recorded their networks (those rebuild from their config)."""
    weights = Path(path) / WEIGHTS
    verify_checkpoint(path, (WEIGHTS,))
    try:
        from safetensors import safe_open
        with safe_open(str(weights), framework="pt") as f:
            text = (f.metadata() or {}).get(NETWORKS_KEY)
        return json.loads(text) if text else None
    except Exception as exc:
        raise DamagedCheckpointError(weights, f"its network records do not load ({type(exc).__name__}: {exc})") from None


def _write_manifest(folder: Path, state: dict | None) -> None:
    """checksums.json: what each file of the folder must be, so damage is detected, not guessed."""
    recorded = {f.name: {"bytes": f.stat().st_size, "sha256": files.sha256_of(f)}
                for f in sorted(folder.iterdir()) if f.is_file()}
    progress = {k: state[k] for k in PROGRESS_KEYS if isinstance((state or {}).get(k), int)}
    manifest = {"format": "translate-checksums-1", "files": recorded, "progress": progress}
    files.write_text(folder / MANIFEST, json.dumps(manifest, indent=1))


def _remove_leftovers(run_dir: Path, label: str) -> None:
    """Staging folders and temp files of saves that a crash interrupted (one writer per run)."""
    for stale in run_dir.glob(f".ckpt_{label}.*"):
        shutil.rmtree(stale, ignore_errors=True)
    for stale in run_dir.glob(f".{label}_net_*.pth.*"):
        stale.unlink(missing_ok=True)


def find_checkpoint(run_dir: str | Path, label: str) -> Path | None:
    """The checkpoint folder for ``label``, or its ``.old`` twin left by a crash mid-swap."""
    run_dir = Path(run_dir)
    for candidate in (run_dir / f"ckpt_{label}", run_dir / f"ckpt_{label}.old"):
        if (candidate / "weights.safetensors").exists():
            return candidate
    return None


def load_checkpoint(path: str | Path) -> tuple[dict[str, dict[str, torch.Tensor]], dict]:
    """Read a checkpoint folder: ({net_name: state_dict}, config dict).

    Raises DamagedCheckpointError naming the file when it is not intact.
    """
    weights = Path(path) / WEIGHTS
    verify_checkpoint(path, (WEIGHTS,))
    try:
        from safetensors import safe_open
        with safe_open(str(weights), framework="pt") as f:
            metadata = f.metadata() or {}
        tensors = load_file(str(weights))
        config = json.loads(metadata.get("config", "{}"))
    except Exception as exc:  # safetensors' own errors: say which file, keep the reason
        raise DamagedCheckpointError(weights, f"it does not load as a safetensors file "
                                              f"({type(exc).__name__}: {exc})") from None
    per_net: dict[str, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        net_name, _, param = key.partition(".")
        per_net.setdefault(net_name, {})[param] = value
    return per_net, config


def load_training_state(path: str | Path) -> dict | None:
    """state.pt of a checkpoint folder, or None where the checkpoint has none."""
    state_file = Path(path) / STATE
    if not state_file.exists() and STATE not in _manifest(Path(path)).get("files", {}):
        return None
    verify_checkpoint(path, (STATE,))
    try:
        return torch.load(state_file, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise DamagedCheckpointError(state_file, f"it does not load ({type(exc).__name__}: {exc})") from None


def load_classic_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Load a classic ``*_net_*.pth`` file, tensors only (a pickle with code is refused)."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"no checkpoint at {path}")
    if path.stat().st_size == 0:
        raise DamagedCheckpointError(path, "it is empty (0 bytes)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # weights_only refuses anything but tensors and containers
        if "weights_only" in str(exc) or "Weights only" in str(exc):
            raise CheckpointError(f"{path} is not a plain weights file and was not loaded ({exc}). "
                                  f"Only tensors are accepted from .pth files.") from None
        raise DamagedCheckpointError(path, f"it is truncated or corrupted ({type(exc).__name__}: "
                                           f"{exc})") from None
    if hasattr(state, "_metadata"):
        del state._metadata
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{path} does not hold a state dict of tensors")
    return {strip_prefixes(k): v for k, v in state.items()}


# ---- integrity ---------------------------------------------------------------

def _manifest(folder: Path) -> dict:
    """checksums.json of ``folder``; {} for checkpoints written before it existed."""
    manifest = folder / MANIFEST
    if not manifest.exists():
        return {}
    try:
        data = json.loads(manifest.read_text())
        if not isinstance(data.get("files"), dict):
            raise ValueError("no 'files' table")
        return data
    except (OSError, ValueError, AttributeError) as exc:
        raise DamagedCheckpointError(manifest, f"it does not parse ({exc})") from None


_verified: dict[tuple, None] = {}   # (path, size, mtime, inode) of files already hashed


def verify_checkpoint(folder: str | Path, names: tuple[str, ...] = (WEIGHTS, STATE)) -> None:
    """Raise DamagedCheckpointError for the first of ``names`` in ``folder`` that is not intact.

    With a checksums.json the size and SHA-256 must match; without one (older
    checkpoints) the file's own structure is checked: the safetensors header and
    its data length, state.pt's zip directory and CRCs.
    """
    folder = Path(folder)
    recorded = _manifest(folder).get("files", {})
    for name in names:
        path = folder / name
        if not path.is_file():
            if name in recorded or name == WEIGHTS:
                raise DamagedCheckpointError(path, "the file is missing")
            continue
        stat = path.stat()
        key = (str(path), stat.st_size, stat.st_mtime_ns, stat.st_ino)
        if key in _verified:
            continue
        problem = _problem(path, stat.st_size, recorded.get(name))
        if problem:
            raise DamagedCheckpointError(path, problem)
        _verified[key] = None


def _problem(path: Path, size: int, recorded: dict | None) -> str | None:
    if size == 0:
        return "it is empty (0 bytes)"
    if recorded:
        want = recorded.get("bytes")
        if isinstance(want, int) and size != want:
            return (f"it is truncated ({size} of {want} bytes)" if size < want
                    else f"it has {size} bytes, {want} were written")
        if files.sha256_of(path) != recorded.get("sha256"):
            return (f"its SHA-256 checksum differs from the one recorded in {MANIFEST} when it was "
                    f"written (the data changed on disk)")
        return None
    if path.name == WEIGHTS:
        return _safetensors_problem(path, size)
    if path.name == STATE:
        return _zip_problem(path)
    return None


def _safetensors_problem(path: Path, size: int) -> str | None:
    """Structure of a safetensors file: 8-byte header length, JSON header, then the data."""
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) < 8:
            return f"it is truncated ({size} bytes; a safetensors file starts with an 8-byte length)"
        length = int.from_bytes(head, "little")
        if length > size - 8:
            return f"it is truncated or not a safetensors file (header of {length} bytes in a {size}-byte file)"
        try:
            header = json.loads(f.read(length))
            end = max((v["data_offsets"][1] for k, v in header.items() if k != "__metadata__"), default=0)
        except (ValueError, TypeError, KeyError, IndexError, AttributeError):
            return "it is not a safetensors file (its header does not parse)"
    if 8 + length + end > size:
        return f"it is truncated ({size} of {8 + length + end} bytes)"
    return None


def _zip_problem(path: Path) -> str | None:
    """torch.save writes a zip archive with a CRC per entry."""
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
        return f"it is truncated or not a torch.save file ({exc})"
    return f"entry {bad} fails its CRC check (the data changed on disk)" if bad else None


# ---- choosing a checkpoint -----------------------------------------------------

def list_checkpoints(run_dir: str | Path) -> list[Path]:
    """Every checkpoint folder of a run (ckpt_<label> and crash-left ckpt_<label>.old)."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        return []
    return sorted(p for p in run_dir.iterdir() if p.name.startswith("ckpt_") and p.is_dir())


def checkpoint_label(folder: Path) -> str:
    """ckpt_iter_40.old -> iter_40: what --epoch takes."""
    return folder.name[len("ckpt_"):].removesuffix(".old")


def _progress(folder: Path) -> tuple:
    """Sort key, newest last: iterations recorded in checksums.json or the name, then mtime."""
    try:
        recorded = _manifest(folder).get("progress", {})
    except DamagedCheckpointError:
        recorded = {}
    iters = recorded.get("total_iters")
    if not isinstance(iters, int):
        named = re.fullmatch(r"iter_(\d+)", checkpoint_label(folder))
        iters = int(named.group(1)) if named else -1
    try:
        mtime = (folder / WEIGHTS).stat().st_mtime
    except OSError:
        mtime = 0.0
    return iters, mtime


def _needed(with_state: bool) -> tuple[str, ...]:
    return (WEIGHTS, STATE) if with_state else (WEIGHTS,)


def _intact(folder: Path, with_state: bool) -> bool:
    try:
        verify_checkpoint(folder, _needed(with_state))
    except DamagedCheckpointError:
        return False
    return True


def find_intact_checkpoint(run_dir: str | Path, label: str, *, with_state: bool = False,
                           warn: Callable[[str], None] | None = None) -> Path | None:
    """The checkpoint folder to load for ``--epoch label``, checked to be intact.

    None when the run has no folder for ``label`` (classic .pth files may exist).
    A damaged ``latest`` falls back to the newest intact checkpoint of the run,
    with a warning naming the damaged file; a damaged explicit label (an epoch,
    iter_N) is an error that lists the intact ones.  ``with_state``: state.pt
    must be intact too (resuming); inference reads only the weights.
    """
    run_dir = Path(run_dir)
    wanted = find_checkpoint(run_dir, label)
    if wanted is None:
        if not (run_dir / f"ckpt_{label}").is_dir():
            return None
        wanted = run_dir / f"ckpt_{label}"   # the folder is there, its weights are not
    try:
        verify_checkpoint(wanted, _needed(with_state))
        return wanted
    except DamagedCheckpointError as err:
        damage = err
    others = sorted((c for c in list_checkpoints(run_dir) if c != wanted), key=_progress, reverse=True)
    if label != "latest":
        intact = [checkpoint_label(c) for c in others if _intact(c, with_state)]
        choice = (f"Intact checkpoints of this run: {', '.join(intact)} (pass one with --epoch)" if intact
                  else "No other checkpoint of this run is intact")
        raise DamagedCheckpointError(damage.path, f"{damage.problem}. {choice}")
    for candidate in others:
        if _intact(candidate, with_state):
            (warn or _warn)(f"warning: {damage}; using the newest intact checkpoint instead: {candidate} "
                            f"(--epoch {checkpoint_label(candidate)})")
            return candidate
    raise DamagedCheckpointError(damage.path, f"{damage.problem}, and no other checkpoint "
                                              f"of {run_dir} is intact. Restore it from a backup or train anew.")


def _warn(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


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
