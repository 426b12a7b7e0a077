"""Paired metrics between a translation and its ground truth: L1, PSNR, SSIM.

Images are compared as RGB floats in [0, 1] (decoded 8-bit values / 255), one
value per image pair, then averaged over pairs:

* L1: mean absolute difference on the [0, 1] scale;
* PSNR: 10 log10(1 / MSE) in dB, per image (kornia.metrics.psnr), capped at
  100 dB for identical images so an average stays finite;
* SSIM: kornia.metrics.ssim with an 11 x 11 Gaussian window (sigma 1.5),
  the constants of Wang et al. 2004, averaged over pixels and channels.
"""
from __future__ import annotations

import torch

PSNR_CAP_DB = 100.0


def _check(fake: torch.Tensor, real: torch.Tensor) -> None:
    if fake.shape != real.shape or fake.dim() != 4:
        raise ValueError(f"paired metrics need two N x C x H x W batches of one shape, "
                         f"got {tuple(fake.shape)} and {tuple(real.shape)}")


def l1(fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    _check(fake, real)
    return (fake - real).abs().flatten(1).mean(1)


def psnr(fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    _check(fake, real)
    from kornia.metrics import psnr as kornia_psnr
    values = torch.stack([kornia_psnr(f, r, 1.0) for f, r in zip(fake, real)])
    return torch.nan_to_num(values, posinf=PSNR_CAP_DB).clamp(max=PSNR_CAP_DB)


def ssim(fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    _check(fake, real)
    from kornia.metrics import ssim as kornia_ssim
    return kornia_ssim(fake, real, window_size=11, max_val=1.0).flatten(1).mean(1)
