"""The image transforms the discriminator sees: DiffAugment and U-Net GAN's CutMix collages.

* DiffAugment (Zhao et al. 2020, "Differentiable Augmentation for Data-Efficient
  GAN Training"): the same differentiable colour / translation / cutout
  transforms on everything the discriminator sees, real and fake, in both the
  D and the G step, so D cannot memorise a small training set.  It is also bCR's
  transform T (translate/training/losses.py has the bCR loss).
* CutMix of U-Net GAN (Schoenfeld et al., CVPR 2020): a collage of a real and a
  fake image under a random box mask; the losses on it are in losses.py.

Pure functions and one small class; all randomness can come from a torch.Generator.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F

DIFFAUGMENT_POLICIES = ("color", "translation", "cutout")
_TRANSLATION_RATIO = 0.125   # shift by up to 1/8 of the image size
_CUTOUT_RATIO = 0.5          # erase a box of half the image size


def _rand(shape, *, like: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    device = generator.device if generator is not None else like.device
    return torch.rand(shape, device=device, generator=generator).to(like.device)


def sample_diffaugment_params(x: torch.Tensor, policy: Sequence[str], *,
                              generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
    """Draw one random transform per sample of ``x`` (N x C x H x W)."""
    unknown = set(policy) - set(DIFFAUGMENT_POLICIES)
    if unknown:
        raise ValueError(f"unknown --diffaugment policy {sorted(unknown)}; choose from {', '.join(DIFFAUGMENT_POLICIES)}")
    n, _, h, w = x.shape
    size = torch.tensor([h, w], device=x.device)
    params: dict[str, torch.Tensor] = {}
    if "color" in policy:
        r = _rand((3, n, 1, 1, 1), like=x, generator=generator)
        params["brightness"] = r[0] - 0.5          # add U(-0.5, 0.5)
        params["saturation"] = r[1] * 2            # scale chroma by U(0, 2)
        params["contrast"] = r[2] + 0.5            # scale contrast by U(0.5, 1.5)
    if "translation" in policy:
        max_shift = (size * _TRANSLATION_RATIO + 0.5).long()
        r = _rand((n, 2), like=x, generator=generator)
        params["translation"] = (r * (2 * max_shift + 1)).long() - max_shift   # integers in [-max, max]
    if "cutout" in policy:
        r = _rand((n, 2), like=x, generator=generator)
        params["cutout"] = (r * size).long()       # box centre, anywhere in the image
    return params


def apply_diffaugment(x: torch.Tensor, params: dict[str, torch.Tensor]) -> torch.Tensor:
    """Apply transforms drawn by sample_diffaugment_params; differentiable in ``x``."""
    if "brightness" in params:
        x = x + params["brightness"]
        mean = x.mean(dim=1, keepdim=True)
        x = (x - mean) * params["saturation"] + mean
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        x = (x - mean) * params["contrast"] + mean
    n, _, h, w = x.shape
    if "translation" in params:
        # out[i, j] = x[i - dy, j - dx]; indices falling outside read the zero border of a 1-pixel pad.
        dy, dx = params["translation"].unbind(1)
        rows = (torch.arange(h, device=x.device) - dy[:, None] + 1).clamp(0, h + 1)   # N, H
        cols = (torch.arange(w, device=x.device) - dx[:, None] + 1).clamp(0, w + 1)   # N, W
        padded = F.pad(x, (1, 1, 1, 1))
        batch = torch.arange(n, device=x.device)[:, None, None]
        x = padded[batch, :, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)  # N,H,W,C -> N,C,H,W
    if "cutout" in params:
        cy, cx = params["cutout"].unbind(1)
        bh, bw = int(h * _CUTOUT_RATIO + 0.5), int(w * _CUTOUT_RATIO + 0.5)
        ys = torch.arange(h, device=x.device) - (cy[:, None] - bh // 2)               # N, H
        xs = torch.arange(w, device=x.device) - (cx[:, None] - bw // 2)
        inside = ((ys >= 0) & (ys < bh))[:, :, None] & ((xs >= 0) & (xs < bw))[:, None, :]
        x = x * (~inside).unsqueeze(1).to(x.dtype)
    return x


def diff_augment(x: torch.Tensor, policy: Sequence[str], *, params: dict[str, torch.Tensor] | None = None,
                 generator: torch.Generator | None = None) -> torch.Tensor:
    """DiffAugment ``x``; pass ``params`` to reuse a transform drawn earlier."""
    if not policy:
        return x
    if params is None:
        params = sample_diffaugment_params(x, policy, generator=generator)
    return apply_diffaugment(x, params)


class DiffAugment:
    """DiffAugment with a fixed policy, e.g. DiffAugment(("color", "translation", "cutout")).

    ``aug(x)`` draws a fresh transform per call (the paper augments real and
    fake independently); ``aug.pair(real, fake)`` draws it once and applies
    the same transform, sample by sample, to both batches.
    """

    def __init__(self, policy: Sequence[str]):
        self.policy = tuple(policy)
        sample_diffaugment_params(torch.zeros(1, 1, 1, 1), self.policy)  # validate the names now

    def __bool__(self) -> bool:
        return bool(self.policy)

    def __call__(self, x: torch.Tensor, *, generator: torch.Generator | None = None) -> torch.Tensor:
        return diff_augment(x, self.policy, generator=generator)

    def pair(self, real: torch.Tensor, fake: torch.Tensor, *,
             generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        if not self.policy:
            return real, fake
        params = sample_diffaugment_params(real, self.policy, generator=generator)
        return apply_diffaugment(real, params), apply_diffaugment(fake, params)


# ----------------------------------------------------------------------------- CutMix

def cutmix_mask(n: int, h: int, w: int, *, device: torch.device | str | None = None,
                generator: torch.Generator | None = None) -> torch.Tensor:
    """N x 1 x H x W binary masks, 1 where the collage shows the real image.

    A box whose area ratio r ~ U(0, 1) (sides sqrt(r) H and sqrt(r) W) sits at a
    uniformly random centre, clipped to the image; half of the masks are
    inverted so that real and fake each appear inside and outside the box.
    """
    like = torch.empty(0, device=device)
    r = _rand((4, n), like=like, generator=generator)
    bh, bw = (r[0].sqrt() * h).round(), (r[0].sqrt() * w).round()
    cy, cx = r[1] * h, r[2] * w
    ys = torch.arange(h, device=like.device)[None] + 0.5
    xs = torch.arange(w, device=like.device)[None] + 0.5
    in_y = (ys >= (cy - bh / 2)[:, None]) & (ys < (cy + bh / 2)[:, None])          # N, H
    in_x = (xs >= (cx - bw / 2)[:, None]) & (xs < (cx + bw / 2)[:, None])          # N, W
    box = (in_y[:, :, None] & in_x[:, None, :]).float()
    invert = (r[3] < 0.5).float()[:, None, None]
    return (box * (1 - invert) + (1 - box) * invert).unsqueeze(1)


def cutmix(real: torch.Tensor, fake: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Collage: real where mask == 1, fake elsewhere."""
    return mask * real + (1 - mask) * fake


def cutmix_probability(step: int, warmup_steps: int) -> float:
    """Chance of a CutMix step: rises linearly from 0 to 0.5 over ``warmup_steps``
    (U-Net GAN lets the generator improve before D sees collages)."""
    if warmup_steps <= 0:
        return 0.5
    return 0.5 * min(1.0, step / warmup_steps)
