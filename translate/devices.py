"""Where the networks run and in which precision: the one place that decides.

Every command takes the classic ``--gpu_ids`` (``0``, ``0,1``; ``-1`` or empty for
the CPU) and ``--mixed_precision no|bf16|fp16``.  This module turns them into a
``torch.device`` and an autocast dtype, so training, test.py, ``python -m
translate``, the Python API, the metrics and the benchmark agree:

- the device is the first listed GPU when PyTorch sees CUDA, else the CPU (a GPU
  id on a machine without one falls back to the CPU, as the classic code did);
- ``no`` is float32 (autocast off), ``bf16`` / ``fp16`` autocast to that dtype;
- fp16 with ``--gpu_ids -1`` is refused (CPUs have no fast fp16 and the classic
  flags mean "use a GPU" by it); bf16 on a CPU without AVX512-BF16 / AMX is emulated
  by oneDNN, about 10x slower than float32, so it is allowed with one warning per
  process.
"""
from __future__ import annotations

import contextlib
import sys
from typing import Sequence, TextIO

import torch

PRECISIONS = ("no", "fp16", "bf16")
AUTOCAST_DTYPES = {"no": None, "bf16": torch.bfloat16, "fp16": torch.float16}
FP16_NEEDS_GPU = "--mixed_precision fp16 needs a GPU; on the CPU use bf16 or no"

_warned: set[str] = set()   # precisions already warned about in this process


class DeviceError(ValueError):
    """--gpu_ids or --mixed_precision cannot be used as given; the message says what to change."""


def gpu_list(gpu_ids: str | Sequence[int] | None) -> list[int]:
    """``"0,1"`` -> [0, 1]; ``"-1"``, ``""``, None -> [] (the CPU).  Negative ids are dropped, as
    the classic code does.  The one parser of --gpu_ids (options/ keeps its result in RunConfig)."""
    if gpu_ids is None:
        return []
    if isinstance(gpu_ids, str):
        try:
            ids = [int(t) for t in gpu_ids.split(",") if t.strip()]
        except ValueError:
            raise DeviceError(f"--gpu_ids {gpu_ids!r}: give GPU numbers such as 0 or 0,1, "
                              f"or -1 for the CPU") from None
    else:
        ids = [int(i) for i in gpu_ids]
    return [i for i in ids if i >= 0]


def wants_gpu(gpu_ids: str | Sequence[int] | None) -> bool:
    """Whether the flags ask for a GPU and PyTorch sees one (else everything runs on the CPU)."""
    return bool(gpu_list(gpu_ids)) and torch.cuda.is_available()


def pick_device(gpu_ids: str | Sequence[int] | None = "0") -> torch.device:
    """The device the networks run on: ``cuda:<first id>`` when there is a GPU, else the CPU."""
    ids = gpu_list(gpu_ids)
    return torch.device(f"cuda:{ids[0]}") if ids and torch.cuda.is_available() else torch.device("cpu")


def default_device() -> str:
    """Where to run when nothing is said (the API, the benchmark's --device): a GPU if any."""
    return "cuda" if torch.cuda.is_available() else "cpu"


def autocast_dtype(mixed_precision: str) -> torch.dtype | None:
    """The autocast dtype of ``--mixed_precision`` (None: float32, autocast off)."""
    try:
        return AUTOCAST_DTYPES[mixed_precision]
    except KeyError:
        raise DeviceError(f"--mixed_precision must be one of {', '.join(PRECISIONS)}, "
                          f"got {mixed_precision!r}") from None


def check_precision(gpu_ids: str | Sequence[int] | None, mixed_precision: str) -> None:
    """Refuse fp16 when the flags ask for the CPU (``--gpu_ids -1``)."""
    autocast_dtype(mixed_precision)
    if mixed_precision == "fp16" and not gpu_list(gpu_ids):
        raise DeviceError(FP16_NEEDS_GPU)


def autocast(device: str | torch.device, mixed_precision: str) -> contextlib.AbstractContextManager:
    """The autocast context for ``mixed_precision`` on ``device`` (a no-op for ``no``)."""
    dtype = autocast_dtype(mixed_precision)
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(torch.device(device).type, dtype=dtype)


def native_precision(device: str | torch.device, mixed_precision: str) -> bool:
    """Whether ``mixed_precision`` gets fast kernels on ``device`` (float32 always does)."""
    device = torch.device(device)
    if mixed_precision == "no":
        return True
    if device.type == "cuda":
        return mixed_precision == "fp16" or torch.cuda.is_bf16_supported()
    check = getattr(torch.ops.mkldnn, f"_is_mkldnn_{mixed_precision}_supported", None)
    return bool(check()) if check is not None else True


def emulation_warning(mixed_precision: str) -> str:
    return (f"warning: this CPU has no native {mixed_precision} (AVX512-BF16 or AMX): "
            f"{mixed_precision} convolutions fall back to emulated kernels, often 10x slower than "
            f"fp32. Use --mixed_precision no here.")


def warn_if_emulated(device: str | torch.device, mixed_precision: str, *,
                     stream: TextIO | None = None) -> bool:
    """Print the emulation warning once per process; True when this call printed it."""
    if torch.device(device).type != "cpu" or native_precision(device, mixed_precision):
        return False
    if mixed_precision in _warned:
        return False
    _warned.add(mixed_precision)
    print(emulation_warning(mixed_precision), file=stream or sys.stderr, flush=True)
    return True


# glibc mallopt parameters (malloc.h).
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_MMAP_THRESHOLD_MAX = 32 * 2**20      # glibc's upper limit on 64-bit systems
_TRIM_THRESHOLD = 2**30


def keep_freed_heap() -> bool:
    """Make glibc keep freed blocks up to 32 MiB for reuse instead of returning them to the kernel.

    By default glibc maps each block above its (adaptive) threshold afresh and unmaps it on
    free, so a CPU training step whose activations are freed and reallocated every step pays a
    page fault per 4 KiB again and again: measured on the 2-vCPU development VM, it halved the
    gain of the Winograd convolutions (translate/nets/cpu_convs.py; README, "Training faster than
    the classic code on the CPU").  The cost: the process keeps up to its peak heap resident.
    Returns False where there is no glibc (macOS, Windows, musl) and nothing changed.
    """
    import ctypes
    try:
        libc = ctypes.CDLL("libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD_MAX)) and bool(mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD))
