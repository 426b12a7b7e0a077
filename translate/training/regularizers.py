"""GAN stabilizers: pure functions and small classes, no optimizers.

* DiffAugment (Zhao et al. 2020, "Differentiable Augmentation for Data-Efficient
  GAN Training"): the same differentiable colour / translation / cutout
  transforms on everything the discriminator sees, real and fake, in both the
  D and the G step, so D cannot memorise a small training set.
* bCR, balanced consistency regularization (Zhao et al. 2020, "Improved
  Consistency Regularization for GANs"): D(x) ~ D(T(x)) on real and on fake.
* CutMix consistency of U-Net GAN (Schönfeld et al., CVPR 2020): the U-Net
  discriminator's per-pixel map of a real/fake collage should be the collage
  of the two maps, and it should label each collage pixel by its source.
* R1 penalty (Mescheder et al. 2018, "Which Training Methods for GANs do
  actually Converge?"): the squared gradient norm of D at real images.
* Adaptive GAN weight of VQGAN (Esser et al. 2021, "Taming Transformers"):
  balance the GAN term against the reconstruction term by their gradient
  norms at the generator's last layer.
* EMA of generator weights (Karras et al.; Yazici et al. 2019).

Discriminator outputs may be a Tensor or a tuple/list of Tensors (multi-scale,
U-Net global + pixel); the losses here sum over the entries, like the GAN loss.
"""
from __future__ import annotations

import copy
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

DIFFAUGMENT_POLICIES = ("color", "translation", "cutout")
_TRANSLATION_RATIO = 0.125   # shift by up to 1/8 of the image size
_CUTOUT_RATIO = 0.5          # erase a box of half the image size


def _entries(out: torch.Tensor | Sequence[torch.Tensor]) -> list[torch.Tensor]:
    return list(out) if isinstance(out, (tuple, list)) else [out]


def _rand(shape, *, like: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    device = generator.device if generator is not None else like.device
    return torch.rand(shape, device=device, generator=generator).to(like.device)


# ----------------------------------------------------------------------------- DiffAugment

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


# ----------------------------------------------------------------------------- consistency terms

def bcr_loss(d_out_clean, d_out_aug) -> torch.Tensor:
    """Balanced consistency: mean squared difference of D on clean and augmented inputs."""
    return sum(F.mse_loss(a, b) for a, b in zip(_entries(d_out_clean), _entries(d_out_aug), strict=True))


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


def cutmix_probability(step: int, warmup_steps: int) -> float:
    """Chance of a CutMix step: rises linearly from 0 to 0.5 over ``warmup_steps``
    (U-Net GAN lets the generator improve before D sees collages)."""
    if warmup_steps <= 0:
        return 0.5
    return 0.5 * min(1.0, step / warmup_steps)


# ----------------------------------------------------------------------------- gradient terms

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
    """The generator weight nearest the output: ``net.last_layer`` if defined, else
    the last conv/linear weight in registration order (which follows the data flow
    in every generator of this package)."""
    if hasattr(net, "last_layer"):
        return net.last_layer
    weights = [p for name, p in net.named_parameters() if p.dim() >= 2 and name.endswith("weight")]
    if not weights:
        raise ValueError(f"{type(net).__name__} has no weight matrix for the adaptive GAN weight")
    return weights[-1]


# ----------------------------------------------------------------------------- EMA

class EMA:
    """Exponential moving average of a model's weights, kept in a shadow copy.

    ``update(model)``: shadow = decay * shadow + (1 - decay) * param for every
    floating-point parameter; buffers (batch-norm statistics, spectral-norm
    vectors) are copied, since averaging them has no meaning. Parameters are
    matched by name, so pass the unwrapped model (not its DDP wrapper).
    """

    def __init__(self, model: nn.Module, decay: float):
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"--ema_decay must be in [0, 1), got {decay}")
        self.decay = decay
        self.shadow_module = copy.deepcopy(model).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        params = dict(model.named_parameters())
        shadows = [p for _, p in self.shadow_module.named_parameters()]
        sources = [params[name] for name, _ in self.shadow_module.named_parameters()]
        # One multi-tensor kernel instead of a lerp per parameter (this runs every G step).
        torch._foreach_lerp_(shadows, sources, 1.0 - self.decay)
        buffers = dict(model.named_buffers())
        for name, shadow in self.shadow_module.named_buffers():
            shadow.copy_(buffers[name])

    def state_dict(self) -> dict[str, torch.Tensor]:
        return self.shadow_module.state_dict()

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.shadow_module.load_state_dict(state)


__all__ = [
    "DIFFAUGMENT_POLICIES", "DiffAugment", "diff_augment", "sample_diffaugment_params", "apply_diffaugment",
    "bcr_loss", "cutmix_mask", "cutmix", "cutmix_consistency_loss", "cutmix_decoder_loss",
    "cutmix_probability", "r1_penalty", "adaptive_gan_weight", "last_layer_weight", "EMA",
]
