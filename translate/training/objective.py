"""What to compute and how the loss terms combine; no optimizers, no backward.

``generate(batch)`` returns only the images that the enabled terms need (a dict
that doubles as the visuals); ``generator_loss`` and ``discriminator_loss``
return ``(total, logs)`` with detached tensors in ``logs`` (no host sync here).

Stabilizers (translate/training/regularizers.py): every image a discriminator sees, in
both steps, goes through DiffAugment; the D loss adds R1, bCR and U-Net GAN's
CutMix terms; the GAN terms of the G loss start at --disc_start and may be
weighted adaptively against the reconstruction terms (VQGAN).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from options.config import LossConfig
from translate.training import losses
from translate.training import regularizers

# image name -> (network, input image name)
RECIPES = {
    "fake_b": ("gen_ab", "real_a"), "fake_a": ("gen_ba", "real_b"),
    "rec_a": ("gen_ba", "fake_b"), "rec_b": ("gen_ab", "fake_a"),
    "idt_b": ("gen_ab", "real_b"), "idt_a": ("gen_ba", "real_a"),
}
# The discriminator judging each domain, and the generated image it judges.
JUDGES = {"disc_b": ("real_b", "fake_b"), "disc_a": ("real_a", "fake_a")}
# U-Net GAN raises the chance of a CutMix D step from 0 to 0.5 over the first
# iterations after --disc_start, so that G gets going before D sees collages.
CUTMIX_WARMUP_STEPS = 1000


@dataclass(frozen=True)
class Term:
    name: str
    weight: float
    needs: tuple[str, ...]
    fn: Callable[["Objective", dict], torch.Tensor]


def unwrap(net: nn.Module) -> nn.Module:
    """The module inside a DistributedDataParallel wrapper (used where D must not sync)."""
    return getattr(net, "module", net)


def _has_batch_norm(net: nn.Module) -> bool:
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in net.modules())


class Objective(nn.Module):
    def __init__(self, model: str, nets: nn.ModuleDict, loss: LossConfig):
        super().__init__()
        self.model, self.nets, self.cfg = model, nets, loss
        self.conditional = model == "pix2pix"
        self.terms = [t for t in self._all_terms() if t.weight > 0]
        self.needed = self._needed_images()
        # Batch both inputs of a generator into one call when the math allows it
        # (no batch norm, whose statistics would mix the two batches).
        self.batchable = {name: not _has_batch_norm(net) for name, net in nets.items()}
        self.augment = regularizers.DiffAugment(loss.diffaugment)
        # bCR's transform T: the DiffAugment policy if one is set, else the paper's small shifts.
        self.bcr_augment = regularizers.DiffAugment(loss.diffaugment or ("translation",))
        has_reconstruction = any(not t.name.startswith("gan_") for t in self.terms)
        if (loss.adaptive_gan_weight or loss.disc_start > 0) and not has_reconstruction:
            raise ValueError("--adaptive_gan_weight and --disc_start weigh the GAN term against reconstruction "
                             "terms: enable one (--lambda_L1, or the cycle terms of cycle_gan)")

    # ---- the terms -------------------------------------------------------
    def _all_terms(self) -> list[Term]:
        c = self.cfg
        two_way = self.model in ("cycle_gan", "csgan")
        terms = [Term("gan_ab", 1.0, ("fake_b",), lambda s, im: s._fool("disc_b", im, "fake_b"))]
        if self.model == "pix2pix":
            return terms + [Term("l1", c.lambda_l1, ("fake_b",),
                                 lambda s, im: losses.l1(im["fake_b"], im["real_b"]))]
        terms += [
            Term("gan_ba", 1.0, ("fake_a",), lambda s, im: s._fool("disc_a", im, "fake_a")),
            Term("cycle_a", c.lambda_a, ("rec_a",), lambda s, im: losses.l1(im["rec_a"], im["real_a"])),
            Term("cycle_b", c.lambda_b, ("rec_b",), lambda s, im: losses.l1(im["rec_b"], im["real_b"])),
            Term("idt_a", c.lambda_a * c.lambda_identity, ("idt_a",),
                 lambda s, im: losses.l1(im["idt_a"], im["real_a"])),
            Term("idt_b", c.lambda_b * c.lambda_identity, ("idt_b",),
                 lambda s, im: losses.l1(im["idt_b"], im["real_b"])),
        ]
        if two_way and self.model == "csgan":
            terms += [
                Term("l1", c.lambda_l1, ("fake_a", "fake_b"),
                     lambda s, im: losses.l1(im["fake_b"], im["real_b"]) + losses.l1(im["fake_a"], im["real_a"])),
                # CSGAN: G_BA(real_B) and G_BA(G_AB(real_A)) should agree, and symmetrically.
                Term("cs_a", c.lambda_cs, ("rec_a", "fake_a"), lambda s, im: losses.l1(im["rec_a"], im["fake_a"])),
                Term("cs_b", c.lambda_cs, ("rec_b", "fake_b"), lambda s, im: losses.l1(im["rec_b"], im["fake_b"])),
            ]
        return terms

    def _needed_images(self) -> list[str]:
        """The generated images in an order where each input comes before its use."""
        order: list[str] = []

        def visit(name: str) -> None:
            if name in order or name.startswith("real_"):
                return
            visit(RECIPES[name][1])
            order.append(name)

        for term in self.terms:
            for name in term.needs:
                visit(name)
        return order

    @property
    def judges(self) -> list[str]:
        """Discriminators in use: those whose generated image is computed."""
        return [d for d, (_, fake) in JUDGES.items() if fake in self.needed and d in self.nets]

    # ---- images ----------------------------------------------------------
    def generate(self, batch: dict) -> dict[str, torch.Tensor]:
        images = {"real_a": batch["A"]}
        if "B" in batch:
            images["real_b"] = batch["B"]
        pending = list(self.needed)
        while pending:
            name = pending.pop(0)
            net_name, source = RECIPES[name]
            partner = self._batch_partner(name, pending, images)
            if partner is None:
                images[name] = self.nets[net_name](images[source])
                continue
            pending.remove(partner)
            other_source = RECIPES[partner][1]
            both = self.nets[net_name](torch.cat([images[source], images[other_source]]))
            images[name], images[partner] = both.split([images[source].shape[0],
                                                        images[other_source].shape[0]])
        return images

    def _batch_partner(self, name: str, pending: list[str], images: dict) -> str | None:
        net_name, source = RECIPES[name]
        if not self.batchable.get(net_name):
            return None
        for other in pending:
            other_net, other_source = RECIPES[other]
            if (other_net == net_name and other_source in images
                    and images[other_source].shape[1:] == images[source].shape[1:]):
                return other
        return None

    def discriminator_input(self, images: dict, image: torch.Tensor) -> torch.Tensor:
        """pix2pix's D is conditional: it sees the input A next to the (real or fake) B."""
        if self.conditional:
            return torch.cat([images["real_a"], image], 1)
        return image

    # ---- losses ----------------------------------------------------------
    def _fool(self, disc_name: str, images: dict, fake_name: str) -> torch.Tensor:
        # The unwrapped D: its parameters are frozen here, and DDP must not wait for their grads.
        disc = unwrap(self.nets[disc_name])
        logits = disc(self.augment(self.discriminator_input(images, images[fake_name])))
        return losses.gan_loss(logits, real=True, mode=self.cfg.gan_mode, for_discriminator=False)

    def generator_loss(self, images: dict, step: int = 0) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Weighted sum of the terms; the GAN terms only from iteration --disc_start on."""
        total, logs, gan_terms = 0.0, {}, []
        for term in self.terms:
            if term.name.startswith("gan_"):
                if step >= self.cfg.disc_start:
                    gan_terms.append(term)
                continue
            value = term.fn(self, images)
            logs[term.name] = value.detach()
            total = total + term.weight * value
        reconstruction = total
        for term in gan_terms:
            value = term.fn(self, images)
            logs[term.name] = value.detach()
            weight = term.weight
            if self.cfg.adaptive_gan_weight:
                # gan_ab judges gen_ab's output: balance the gradients at gen_ab's last layer.
                last = regularizers.last_layer_weight(unwrap(self.nets["gen_" + term.name[4:]]))
                weight = weight * regularizers.adaptive_gan_weight(reconstruction, value, last)
                logs[f"weight_{term.name}"] = weight
            total = total + weight * value
        return total, logs

    def fake_inputs(self, images: dict) -> dict[str, torch.Tensor]:
        """Detached D inputs for the fakes, per discriminator: what the image pools hold.

        For the conditional D these include real A, so a pooled fake keeps its own input.
        """
        return {d: self.discriminator_input(images, images[JUDGES[d][1]]).detach() for d in self.judges}

    def discriminator_loss(self, images: dict, fake_inputs: dict[str, torch.Tensor] | None = None,
                           step: int = 0) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """D loss on real images and (pooled) fakes from ``fake_inputs`` (default: this batch's)."""
        fake_inputs = fake_inputs or self.fake_inputs(images)
        total, logs = 0.0, {}
        mode = self.cfg.gan_mode
        for disc_name in self.judges:
            disc = self.nets[disc_name]
            real = self.discriminator_input(images, images[JUDGES[disc_name][0]])
            fake = fake_inputs[disc_name]
            if self.cfg.lambda_r1 > 0:
                real = real.detach().requires_grad_(True)   # R1 differentiates D at the real images
            # Real and fake get independent DiffAugment draws, as in Zhao et al.
            real_seen, fake_seen = self.augment(real), self.augment(fake)
            d_real, d_fake = disc(real_seen), disc(fake_seen)
            value = 0.5 * (losses.gan_loss(d_real, real=True, mode=mode)
                           + losses.gan_loss(d_fake, real=False, mode=mode))
            if mode == "wgangp" and self.cfg.lambda_gp > 0:
                value = value + self.cfg.lambda_gp * losses.gradient_penalty(disc, real, fake)
            logs[disc_name] = value.detach()
            extra = self._regularize_discriminator(disc, real, fake, (real_seen, fake_seen), (d_real, d_fake),
                                                   step, logs, disc_name[-2:])
            total = total + value + extra
        return total, logs

    def _regularize_discriminator(self, disc, real, fake, seen, outputs, step: int, logs: dict,
                                  suffix: str) -> torch.Tensor | float:
        """R1, bCR and CutMix terms for one discriminator (each only when its weight is > 0)."""
        c, extra = self.cfg, 0.0
        (real_seen, fake_seen), (d_real, d_fake) = seen, outputs
        if c.lambda_r1 > 0:
            r1 = regularizers.r1_penalty(d_real, real)
            logs["r1" + suffix], extra = r1.detach(), extra + c.lambda_r1 / 2 * r1
        if c.lambda_bcr_real > 0:
            bcr = regularizers.bcr_loss(d_real, disc(self.bcr_augment(real)))
            logs["bcr_real" + suffix], extra = bcr.detach(), extra + c.lambda_bcr_real * bcr
        if c.lambda_bcr_fake > 0:
            bcr = regularizers.bcr_loss(d_fake, disc(self.bcr_augment(fake)))
            logs["bcr_fake" + suffix], extra = bcr.detach(), extra + c.lambda_bcr_fake * bcr
        # CutMix needs U-Net D's (global N x 1, per-pixel N x 1 x H x W) pair, not multi-scale maps.
        pixel_maps = (isinstance(d_real, (tuple, list)) and len(d_real) == 2 and d_real[0].dim() == 2
                      and d_real[1].shape[-2:] == real_seen.shape[-2:])
        # A collage needs real and fake of one size: unpaired items of different sizes
        # (--preprocess scale_width / none) skip it, as a step does by chance anyway.
        pixel_maps = pixel_maps and fake_seen.shape == real_seen.shape
        chance = regularizers.cutmix_probability(step - c.disc_start, CUTMIX_WARMUP_STEPS)
        if c.lambda_cutmix > 0 and pixel_maps and torch.rand(()).item() < chance:
            n, _, h, w = real_seen.shape
            mask = regularizers.cutmix_mask(n, h, w, device=real_seen.device)
            global_mixed, pixel_mixed = disc(regularizers.cutmix(real_seen, fake_seen, mask))
            # The collage is fake as a whole; per pixel it is real where it shows the real image.
            target = (losses.gan_loss(global_mixed, real=False, mode=c.gan_mode)
                      + regularizers.cutmix_decoder_loss(pixel_mixed.float(), mask, c.gan_mode))
            consistency = regularizers.cutmix_consistency_loss(pixel_mixed.float(), d_real[1].float(),
                                                               d_fake[1].float(), mask)
            logs["cutmix" + suffix] = consistency.detach()
            extra = extra + target + c.lambda_cutmix * consistency
        return extra
