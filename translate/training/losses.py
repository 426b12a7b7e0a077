"""The loss functions the objective combines: small pure functions, no optimizers.

* GAN losses (vanilla, LSGAN, hinge, WGAN) and L1, as the classic code has them;
  WGAN-GP's gradient penalty (Gulrajani et al. 2017).
* Regularizers of D: bCR, balanced consistency regularization (Zhao et al. 2020,
  "Improved Consistency Regularization for GANs"): D(x) ~ D(T(x)) on real and on
  fake; U-Net GAN's CutMix consistency and per-pixel collage loss (Schoenfeld et
  al., CVPR 2020); the R1 penalty (Mescheder et al. 2018, "Which Training Methods
  for GANs do actually Converge?"): the squared gradient norm of D at real images.
* The adaptive GAN weight of VQGAN (Esser et al. 2021, "Taming Transformers"):
  the GAN term balanced against the reconstruction terms by their gradient norms
  at the generator's last layer.

A discriminator output may be one logit tensor or a tuple/list of them (multi-
scale or U-Net discriminators); the losses then sum over the entries.
The images these losses see (DiffAugment, CutMix collages) come from augment.py.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from translate.training.augment import cutmix

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


# ----------------------------------------------------------------------------- regularizers of D

def bcr_loss(d_out_clean, d_out_aug) -> torch.Tensor:
    """Balanced consistency: mean squared difference of D on clean and augmented inputs."""
    return sum(F.mse_loss(a, b) for a, b in zip(_entries(d_out_clean), _entries(d_out_aug), strict=True))


def cutmix_consistency_loss(dec_mixed: torch.Tensor, dec_real: torch.Tensor, dec_fake: torch.Tensor,
                            mask: torch.Tensor) -> torch.Tensor:
    """|| D_dec(mix(x, G(z), M)) - mix(D_dec(x), D_dec(G(z)), M) ||^2, averaged, in logit space."""
    return F.mse_loss(dec_mixed, cutmix(dec_real, dec_fake, mask))


def cutmix_decoder_loss(dec_mixed: torch.Tensor, mask: torch.Tensor, gan_mode: str = "vanilla") -> torch.Tensor:
    """Per-pixel D loss on a collage: mask pixels are real (target 1), the rest fake.

    (The encoder's target for a collage is simply "fake", the ordinary fake loss.)
    """
    if gan_mode == "vanilla":
        return F.binary_cross_entropy_with_logits(dec_mixed, mask)
    if gan_mode == "lsgan":
        return F.mse_loss(dec_mixed, mask)
    if gan_mode == "hinge":
        return (mask * F.relu(1 - dec_mixed) + (1 - mask) * F.relu(1 + dec_mixed)).mean()
    if gan_mode == "wgangp":
        return (dec_mixed * (1 - 2 * mask)).mean()
    raise ValueError(f"unknown gan_mode {gan_mode!r}")


def r1_penalty(d_out, real_images: torch.Tensor) -> torch.Tensor:
    """Mean over the batch of ||grad_x D(x)||^2 at real images; multiply by lambda_r1 / 2.

    ``real_images`` must have had requires_grad set before D ran on them.
    Summing the outputs gives each sample's gradient, since samples do not interact.
    """
    total = sum(out.sum() for out in _entries(d_out))
    (grad,) = torch.autograd.grad(total, real_images, create_graph=True)
    return grad.pow(2).flatten(1).sum(1).mean()


def adaptive_gan_weight(rec_loss: torch.Tensor, gan_loss: torch.Tensor, last_layer_weight: torch.Tensor,
                        max_weight: float = 1e4) -> torch.Tensor:
    """||grad rec|| / (||grad gan|| + 1e-6) at the generator's last layer, detached, in [0, max_weight]."""
    (g_rec,) = torch.autograd.grad(rec_loss, last_layer_weight, retain_graph=True, allow_unused=True)
    (g_gan,) = torch.autograd.grad(gan_loss, last_layer_weight, retain_graph=True, allow_unused=True)
    if g_rec is None or g_gan is None:
        raise ValueError("--adaptive_gan_weight needs both a reconstruction term (L1, cycle) and the GAN "
                         "term to depend on the generator's last layer")
    return (g_rec.norm() / (g_gan.norm() + 1e-6)).clamp(0.0, max_weight).detach()


def last_layer_weight(net: nn.Module) -> torch.Tensor:
    """The generator weight nearest the output: ``last_layer`` where the network declares
    one (found inside any wrapper, DDP or torch.compile, that holds the network as a
    submodule), else the last conv/linear weight in registration order (which follows
    the data flow in every generator of this package)."""
    for module in net.modules():
        if hasattr(module, "last_layer"):
            return module.last_layer
    weights = [p for name, p in net.named_parameters() if p.dim() >= 2 and name.endswith("weight")]
    if not weights:
        raise ValueError(f"{type(net).__name__} has no weight matrix for the adaptive GAN weight")
    return weights[-1]
