"""A translator as a Python function: ``load_translator(source)(image)``.

    from PIL import Image
    from translate import load_translator

    g = load_translator("checkpoints/horse2zebra")     # a run folder, a classic .pth, or a run name
    zebra = g(Image.open("horse.jpg"))                  # PIL in, PIL out, the input's size
    batch = g(torch.rand(4, 3, 100, 150) * 2 - 1)       # N x C x H x W in [-1, 1] in and out

It is the code ``python -m translate`` runs: the run loading of
translate/inference/loading.py (our checkpoints or classic files with their train_opt.txt),
tiling.Runner (padding to the generator's multiple, tiles, device, autocast,
eval mode) and translate_folder's conversion to 8 bits, so ``g(PIL image)``
gives the pixels the folder tool writes for that image.

Inputs: a PIL image (converted to the generator's channel count, as folder
translation does), a numpy uint8 array H x W x C (or H x W for one channel), or
a float tensor C x H x W / N x C x H x W in [-1, 1].  Arrays and tensors must
already have the generator's channel count; the output has the same type, rank
and size (tensors: the input's dtype and device).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from translate import devices
from translate.checkpoint import CheckpointError
from translate.inference.loading import RunGenerator, load_source
from translate.inference.tiling import Runner
from translate.inference.folder import image_io, to_uint8_array


class Translator:
    """Call it on a PIL image, a uint8 numpy array or a tensor in [-1, 1] (see the module docstring)."""

    def __init__(self, run: RunGenerator, runner: Runner):
        self.run, self.runner = run, runner
        self.in_channels, self.out_channels = run.in_channels, run.out_channels
        self.description = run.description

    def __repr__(self) -> str:
        return (f"Translator({self.description}; {self.in_channels} -> {self.out_channels} channels, "
                f"{self.runner.device})")

    def __call__(self, image):
        if isinstance(image, Image.Image):
            return self._pil(image)
        if isinstance(image, np.ndarray):
            return self._numpy(image)
        if isinstance(image, torch.Tensor):
            return self._tensor(image)
        raise TypeError(f"cannot translate a {type(image).__name__}: give a PIL image, a numpy uint8 "
                        f"array (H x W x C) or a float tensor (N x C x H x W in [-1, 1])")

    def _run(self, x: torch.Tensor) -> torch.Tensor:
        """N x C x H x W in [-1, 1] -> float32 N x C' x H x W on the CPU."""
        if x.shape[-1] == 0 or x.shape[-2] == 0:
            raise ValueError(f"the image is empty ({x.shape[-2]} x {x.shape[-1]} pixels)")
        return self.runner(x)

    def _pil(self, image: Image.Image) -> Image.Image:
        x = image_io.to_tensor(image, self.in_channels).mul_(2.0).sub_(1.0)
        return Image.fromarray(to_uint8_array(self._run(x[None])[0]))

    def _numpy(self, array: np.ndarray) -> np.ndarray:
        if array.dtype != np.uint8:
            raise TypeError(f"numpy images must be uint8 (0-255), got {array.dtype}; for float data "
                            f"pass a torch tensor in [-1, 1]")
        flat = array.ndim == 2
        if flat:
            array = array[:, :, None]
        if array.ndim != 3:
            raise ValueError(f"numpy images must be H x W x C (or H x W), got shape {array.shape}")
        if array.shape[2] != self.in_channels:
            raise ValueError(f"this generator takes {self.in_channels} channel(s); the array has "
                             f"{array.shape[2]} (shape {array.shape}, expected H x W x {self.in_channels})")
        x = torch.from_numpy(array.copy()).permute(2, 0, 1).float().div_(127.5).sub_(1.0)
        out = to_uint8_array(self._run(x[None])[0])
        return out if flat or out.ndim == 3 else out[:, :, None]

    def _tensor(self, x: torch.Tensor) -> torch.Tensor:
        if not x.is_floating_point():
            raise TypeError(f"tensors must be floating point in [-1, 1], got {x.dtype}; for uint8 "
                            f"images use x.float() / 127.5 - 1 (or pass a numpy array)")
        if x.ndim not in (3, 4):
            raise ValueError(f"tensors must be C x H x W or N x C x H x W, got shape {tuple(x.shape)}")
        batch = x if x.ndim == 4 else x[None]
        if batch.shape[1] != self.in_channels:
            layout = " (it looks channels-last: permute to N x C x H x W)" \
                if batch.shape[-1] == self.in_channels else ""
            raise ValueError(f"this generator takes {self.in_channels} channel(s); the tensor has "
                             f"{batch.shape[1]} in dimension {x.ndim - 3} (shape {tuple(x.shape)}){layout}")
        if batch.numel():
            low, high = batch.min().item(), batch.max().item()
            if low < -1.001 or high > 1.001:
                raise ValueError(f"tensor values must be in [-1, 1], got {low:.3g} .. {high:.3g}; "
                                 f"for images in [0, 1] pass x * 2 - 1")
        out = self._run(batch.float())
        out = out if x.ndim == 4 else out[0]
        return out.to(device=x.device, dtype=x.dtype)


def load_translator(source: str | Path, *, epoch: str = "latest", direction: str | None = None,
                    ema: bool = True, device: str | torch.device | None = None, mixed_precision: str = "no",
                    tile: int = 0, tile_overlap: int = 64, channels_last: bool = False, compile: bool = False,
                    checkpoints_dir: str = "./checkpoints") -> Translator:
    """A callable translator for ``source``.

    ``source``: a run folder (``checkpoints/NAME``: ours or classic), a classic
    generator file (``latest_net_G.pth``; its train_opt.txt is used when it
    sits in a run folder, else the classic network is recognised from its
    tensors), or a run name in ``checkpoints_dir`` (``horse2zebra_pretrained``).
    ``epoch`` and ``direction`` are ``python -m translate``'s (direction: which
    generator of a two-way run; default the trained one); ``ema=False`` takes the
    raw weights of a run trained with --ema_decay.  ``device`` defaults to the
    first GPU if there is one; ``mixed_precision`` is no, bf16 or fp16;
    ``tile``/``tile_overlap`` translate large images in blended tiles.
    """
    device = torch.device(device or devices.default_device())
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={str(device)!r}, but PyTorch sees no CUDA GPU here; use device='cpu'")
    run = load_source(source, checkpoints_dir=checkpoints_dir, epoch=epoch, direction=direction, ema=ema)
    runner = Runner(run.module, device=device, mixed_precision=mixed_precision,
                    channels_last=channels_last, compile=compile, tile=tile, tile_overlap=tile_overlap)
    return Translator(run, runner)


__all__ = ["load_translator", "Translator", "CheckpointError"]
