"""Preprocessing with the classic pix2pix/CycleGAN semantics, on float tensors.

``--preprocess`` modes (load_size L, crop_size C):

    resize_and_crop       resize to L x L, then crop C x C
    crop                  crop C x C from the original size
    scale_width           scale the width to L keeping the aspect ratio
                          (height at least C, as in the classic code)
    scale_width_and_crop  scale the width to L, then crop C x C
    none                  keep the image's own size

Then every mode fits the result to the networks (``fit_to_network``): an image
with a side below ``min_side`` (the smallest the generator and discriminator
accept; 1x1 or 2x9 inputs happen) is scaled up, keeping its aspect ratio, and
both sides are rounded to a multiple of ``size_multiple`` (the generator's, and
when training also the discriminator's; options/ works both out).  Crop modes
already give crop_size x crop_size, which start-up checks against the multiple,
so there this changes nothing; scale_width and none depend on it.
``output_size`` predicts the result from the input size alone, so a start-up
check can tell from image headers whether a folder can be batched.

Random crop positions and horizontal flips are drawn once per item by
``sample_params`` and then applied with ``apply``, so both halves of an aligned
image get the same crop and flip.  At test time (``is_train=False``) crops are
centred and nothing is flipped.  Resizing is bicubic (antialiased), like PIL's.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

PREPROCESS_MODES = ("resize_and_crop", "crop", "scale_width", "scale_width_and_crop", "none")


@dataclass(frozen=True)
class Params:
    """Random choices for one item: crop offsets as fractions in [0, 1], and a flip."""
    crop_fx: float = 0.5
    crop_fy: float = 0.5
    flip: bool = False


def check_mode(preprocess: str) -> None:
    if preprocess not in PREPROCESS_MODES:
        raise ValueError(f"unknown --preprocess {preprocess!r}; choose one of "
                         f"{', '.join(PREPROCESS_MODES)}")


def sample_params(cfg, *, is_train: bool, generator: torch.Generator | None = None) -> Params:
    """Draw the crop position and flip from ``generator`` (default: torch's RNG).

    Offsets are stored as fractions of the free space, so a draw does not depend
    on the image size, which is only known after resizing.
    """
    if not is_train:
        return Params()
    fx, fy, coin = torch.rand(3, generator=generator).tolist()
    return Params(crop_fx=fx, crop_fy=fy, flip=(not cfg.no_flip) and coin < 0.5)


def _resize(x: torch.Tensor, height: int, width: int) -> torch.Tensor:
    if (height, width) == tuple(x.shape[-2:]):
        return x
    # Antialiased bicubic matches PIL's Image.BICUBIC; it can overshoot, so clamp.
    out = F.interpolate(x[None], size=(height, width), mode="bicubic",
                        align_corners=False, antialias=True)[0]
    return out.clamp_(0.0, 1.0)


def resize(x: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """C x H x W in [0, 1] to height x width, with the same resampling as the modes above."""
    return _resize(x, height, width)


def _scale_width(x: torch.Tensor, load_size: int, crop_size: int) -> torch.Tensor:
    h, w = x.shape[-2:]
    if w == load_size and h >= crop_size:
        return x
    new_h = int(max(load_size * h / w, crop_size))
    return _resize(x, new_h, load_size)


def _crop(x: torch.Tensor, size: int, params: Params) -> torch.Tensor:
    h, w = x.shape[-2:]
    if h < size or w < size:
        # The classic code would silently return a smaller image, which then
        # fails to batch; scaling up keeps every item crop_size x crop_size.
        scale = size / min(h, w)
        x = _resize(x, max(size, round(h * scale)), max(size, round(w * scale)))
        h, w = x.shape[-2:]
    # int(f * (free + 1)) with f in [0, 1) is uniform over 0..free, like randint.
    top = min(h - size, int(params.crop_fy * (h - size + 1)))
    left = min(w - size, int(params.crop_fx * (w - size + 1)))
    return x[:, top:top + size, left:left + size]


def fitted_size(h: int, w: int, multiple: int, min_side: int = 1) -> tuple[int, int]:
    """(H, W) after scaling up to ``min_side`` and rounding to ``multiple`` (see the docstring)."""
    shorter = min(h, w)
    if shorter < min_side:
        scale = min_side / shorter
        h, w = max(min_side, round(h * scale)), max(min_side, round(w * scale))
    smallest = -(-min_side // multiple) * multiple    # min_side rounded up to the multiple
    return (max(smallest, int(round(h / multiple) * multiple)),
            max(smallest, int(round(w / multiple) * multiple)))


def fit_to_network(x: torch.Tensor, cfg) -> torch.Tensor:
    size = fitted_size(*x.shape[-2:], getattr(cfg, "size_multiple", 4), getattr(cfg, "min_side", 1))
    return _resize(x, *size)


def output_size(h: int, w: int, cfg) -> tuple[int, int]:
    """The (H, W) that ``apply`` gives an H x W image, without decoding it (crops do not move it)."""
    mode = cfg.preprocess
    check_mode(mode)
    if mode == "resize_and_crop":
        h, w = cfg.load_size, cfg.load_size
    elif mode.startswith("scale_width") and not (w == cfg.load_size and h >= cfg.crop_size):
        h, w = int(max(cfg.load_size * h / w, cfg.crop_size)), cfg.load_size
    if mode.endswith("crop"):
        h, w = cfg.crop_size, cfg.crop_size
    return fitted_size(h, w, getattr(cfg, "size_multiple", 4), getattr(cfg, "min_side", 1))


def apply(x: torch.Tensor, cfg, params: Params) -> torch.Tensor:
    """Preprocess one image (C x H x W in [0, 1]) and normalise it to [-1, 1]."""
    mode = cfg.preprocess
    check_mode(mode)
    if mode == "resize_and_crop":
        x = _resize(x, cfg.load_size, cfg.load_size)
    elif mode.startswith("scale_width"):
        x = _scale_width(x, cfg.load_size, cfg.crop_size)
    if mode.endswith("crop"):
        x = _crop(x, cfg.crop_size, params)
    x = fit_to_network(x, cfg)
    if params.flip:
        x = x.flip(-1)
    return x.mul(2.0).sub_(1.0).contiguous()
