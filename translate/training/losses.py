"""GAN losses and the small pure loss functions the objective combines.

A discriminator output may be one logit tensor or a tuple/list of them (multi-
scale or U-Net discriminators); the GAN loss is then the sum over entries.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

GAN_MODES = ("vanilla", "lsgan", "hinge", "wgangp")

Logits = torch.Tensor | Sequence[torch.Tensor]


def _entries(logits: Logits) -> Sequence[torch.Tensor]:
    return [logits] if isinstance(logits, torch.Tensor) else list(logits)


def _single_gan_loss(pred: torch.Tensor, real: bool, mode: str, for_discriminator: bool):
    pred = pred.float()  # losses in fp32 even under autocast
    if mode == "vanilla":
        target = torch.ones_like(pred) if real else torch.zeros_like(pred)
        return F.binary_cross_entropy_with_logits(pred, target)
    if mode == "lsgan":
        return F.mse_loss(pred, torch.full_like(pred, 1.0 if real else 0.0))
    if mode == "hinge":
        if for_discriminator:
            return F.relu(1 - pred).mean() if real else F.relu(1 + pred).mean()
        return -pred.mean()  # the generator maximises D's score on fakes
    if mode == "wgangp":
        return -pred.mean() if real else pred.mean()
    raise ValueError(f"unknown --gan_mode {mode!r}; choose one of {', '.join(GAN_MODES)}")


def gan_loss(logits: Logits, *, real: bool, mode: str, for_discriminator: bool = True) -> torch.Tensor:
    """Adversarial loss of ``logits`` against the label real/fake.

    For the generator call it with ``real=True`` on the fakes' logits.
    """
    return sum(_single_gan_loss(p, real, mode, for_discriminator) for p in _entries(logits))


def l1(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return F.l1_loss(a.float(), b.float())


def gradient_penalty(disc, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """WGAN-GP penalty (Gulrajani et al. 2017): E[(||grad D(x_hat)|| - 1)^2] on interpolates."""
    alpha = torch.rand(real.shape[0], 1, 1, 1, device=real.device, dtype=real.dtype)
    if fake.shape[-2:] != real.shape[-2:]:
        # Unpaired A and B of different sizes (--preprocess scale_width / none): the
        # interpolates need one size, so the fake is resized to the real image's.
        fake = F.interpolate(fake.detach(), size=real.shape[-2:], mode="bilinear", align_corners=False)
    mixed = (alpha * real.detach() + (1 - alpha) * fake.detach()).requires_grad_(True)
    outputs = _entries(disc(mixed))
    grads = torch.autograd.grad([o.float().sum() for o in outputs], mixed, create_graph=True)[0]
    return ((grads.flatten(1).norm(2, dim=1) - 1) ** 2).mean()
