"""What to compute and how the loss terms combine; no optimizers, no backward, no wrappers.

``generate(batch)`` returns only the images that the enabled terms need (a dict
that doubles as the visuals); ``generator_loss`` and ``discriminator_loss``
return ``(total, logs)`` with detached tensors in ``logs`` (no host sync here).

Which terms a model has comes from the model table (``MODELS[name].terms``,
translate/models.py); ``TERMS`` in terms.py says how each is built from the loss
weights, and the terms with weight > 0 are enabled.  The networks are called as they are
given: whether they are wrapped (DDP, torch.compile) is the trainer's business; it
may hand the generator step other discriminator modules than the D step.

Stabilizers (augment.py, losses.py): every image a discriminator sees, in both
steps, goes through DiffAugment; the D loss adds R1, bCR and U-Net GAN's CutMix
terms; the GAN terms of the G loss start at --disc_start and may be weighted
adaptively against the reconstruction terms (VQGAN).
"""
from __future__ import annotations

from typing import Mapping

import torch
from torch import nn

from options.config import LossConfig
from translate.models import ModelSpec, get_model
from translate.training import augment, losses
from translate.training.terms import Term, enabled_terms, image_recipes

# U-Net GAN raises the chance of a CutMix D step from 0 to 0.5 over the first
# iterations after --disc_start, so that G gets going before D sees collages.
CUTMIX_WARMUP_STEPS = 1000


def _has_batch_norm(net: nn.Module) -> bool:
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in net.modules())


class Objective(nn.Module):
    def __init__(self, model: str | ModelSpec, nets: nn.ModuleDict, loss: LossConfig):
        super().__init__()
        self.spec = get_model(model) if isinstance(model, str) else model
        self.nets, self.cfg = nets, loss
        self.recipes = image_recipes(self.spec)
        self.terms = enabled_terms(self.spec, loss)
        self.needed = self._needed_images()
        # Discriminators in use, in term order: each judges one domain, real vs the term's fake.
        self.judged = {t.discriminator: (f"real_{self.spec.discriminators[t.discriminator]}", t.needs[0])
                       for t in self.terms if t.adversarial}
        # Batch both inputs of a generator into one call when the math allows it
        # (no batch norm, whose statistics would mix the two batches).
        self.batchable = {name: not _has_batch_norm(net) for name, net in nets.items()}
        self.augment = augment.DiffAugment(loss.diffaugment)
        # bCR's transform T: the DiffAugment policy if one is set, else the paper's small shifts.
        self.bcr_augment = augment.DiffAugment(loss.diffaugment or ("translation",))
        has_reconstruction = any(not t.adversarial for t in self.terms)
        if (loss.adaptive_gan_weight or loss.disc_start > 0) and not has_reconstruction:
            raise ValueError("--adaptive_gan_weight and --disc_start weigh the GAN term against reconstruction "
                             "terms: enable one (--lambda_L1, or the cycle terms of cycle_gan)")

    def _needed_images(self) -> list[str]:
        """The generated images in an order where each input comes before its use."""
        order: list[str] = []

        def visit(name: str) -> None:
            if name in order or name not in self.recipes:   # real images are given
                return
            visit(self.recipes[name][1])
            order.append(name)

        for term in self.terms:
            for name in term.needs:
                visit(name)
        return order

    @property
    def judges(self) -> list[str]:
        """Discriminators in use: those of the enabled adversarial terms."""
        return list(self.judged)

    # ---- --disc_start: the one place that decides when D counts -----------
    def steps_since_disc_start(self, step: int) -> int:
        return step - self.cfg.disc_start

    def discriminator_on(self, step: int) -> bool:
        """Whether D trains and its verdict enters the G loss at iteration ``step`` (VQGAN's --disc_start)."""
        return self.steps_since_disc_start(step) >= 0

    # ---- images ----------------------------------------------------------
    def generate(self, batch: dict, latents: Mapping[str, torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
        """``latents``: the noise latent z to make some images with (LOGAN, latent_optimization.py);
        the others are made as the generator makes them by itself."""
        latents = latents or {}
        images = {"real_a": batch["A"]}
        if "B" in batch:
            images["real_b"] = batch["B"]
        pending = list(self.needed)
        while pending:
            name = pending.pop(0)
            net_name, source = self.recipes[name]
            partner = self._batch_partner(name, pending, images, latents)
            if partner is None:
                images[name] = self._run(net_name, images[source], latents.get(name))
                continue
            pending.remove(partner)
            other_source = self.recipes[partner][1]
            z = torch.cat([latents[name], latents[partner]]) if name in latents else None
            both = self._run(net_name, torch.cat([images[source], images[other_source]]), z)
            images[name], images[partner] = both.split([images[source].shape[0],
                                                        images[other_source].shape[0]])
        return images

    def _run(self, net_name: str, x: torch.Tensor, z: torch.Tensor | None) -> torch.Tensor:
        return self.nets[net_name](x) if z is None else self.nets[net_name](x, z=z)

    def _batch_partner(self, name: str, pending: list[str], images: dict, latents: Mapping) -> str | None:
        net_name, source = self.recipes[name]
        if not self.batchable.get(net_name):
            return None
        for other in pending:
            other_net, other_source = self.recipes[other]
            # One call takes one latent for both or none (the generator draws the rest itself).
            if (other_net == net_name and other_source in images and (name in latents) == (other in latents)
                    and images[other_source].shape[1:] == images[source].shape[1:]):
                return other
        return None

    def discriminator_input(self, images: dict, image: torch.Tensor) -> torch.Tensor:
        """A conditional D (pix2pix) sees the input A next to the (real or fake) B."""
        if self.spec.conditional_d:
            return torch.cat([images["real_a"], image], 1)
        return image

    # ---- losses ----------------------------------------------------------
    def adversarial_loss(self, term: Term, disc: nn.Module, images: dict) -> torch.Tensor:
        """The G loss of adversarial ``term`` with ``disc`` judging (the score LOGAN's latent step climbs)."""
        return self._fool(term, disc, images)

    def _fool(self, term: Term, disc: nn.Module, images: dict) -> torch.Tensor:
        logits = disc(self.augment(self.discriminator_input(images, images[term.needs[0]])))
        return losses.gan_loss(logits, real=True, mode=self.cfg.gan_mode, for_discriminator=False)

    def generator_loss(self, images: dict, step: int = 0, discriminators: Mapping[str, nn.Module] | None = None
                       ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Weighted sum of the terms; the GAN terms only once D is on (--disc_start).

        ``discriminators``: the modules that judge the fakes here (default ``nets``'s).
        """
        discriminators = self.nets if discriminators is None else discriminators
        total, logs = 0.0, {}
        for term in self.terms:
            if not term.adversarial:
                value = term.score(images)
                logs[term.name] = value.detach()
                total = total + term.weight * value
        if not self.discriminator_on(step):
            return total, logs
        reconstruction = total
        for term in self.terms:
            if not term.adversarial:
                continue
            value = self._fool(term, discriminators[term.discriminator], images)
            logs[term.name] = value.detach()
            weight = term.weight
            if self.cfg.adaptive_gan_weight:
                # Balance the gradients at the last layer of the generator the term trains.
                last = losses.last_layer_weight(self.nets[term.generators[0]])
                weight = weight * losses.adaptive_gan_weight(reconstruction, value, last)
                logs[f"weight_{term.name}"] = weight
            total = total + weight * value
        return total, logs

    def fake_inputs(self, images: dict) -> dict[str, torch.Tensor]:
        """Detached D inputs for the fakes, per discriminator: what the image pools hold.

        For the conditional D these include real A, so a pooled fake keeps its own input.
        """
        return {d: self.discriminator_input(images, images[fake]).detach() for d, (_, fake) in self.judged.items()}

    def discriminator_loss(self, images: dict, fake_inputs: dict[str, torch.Tensor] | None = None,
                           step: int = 0) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """D loss on real images and (pooled) fakes from ``fake_inputs`` (default: this batch's)."""
        fake_inputs = fake_inputs or self.fake_inputs(images)
        total, logs = 0.0, {}
        mode = self.cfg.gan_mode
        for disc_name, (real_name, _) in self.judged.items():
            disc = self.nets[disc_name]
            real = self.discriminator_input(images, images[real_name])
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
            suffix = "_" + self.spec.discriminators[disc_name]   # r1_b: the R1 term of the D judging B
            extra = self._regularize_discriminator(disc, real, fake, (real_seen, fake_seen), (d_real, d_fake),
                                                   step, logs, suffix)
            total = total + value + extra
        return total, logs

    def _regularize_discriminator(self, disc, real, fake, seen, outputs, step: int, logs: dict,
                                  suffix: str) -> torch.Tensor | float:
        """R1, bCR and CutMix terms for one discriminator (each only when its weight is > 0)."""
        c, extra = self.cfg, 0.0
        (real_seen, fake_seen), (d_real, d_fake) = seen, outputs
        if c.lambda_r1 > 0:
            r1 = losses.r1_penalty(d_real, real)
            logs["r1" + suffix], extra = r1.detach(), extra + c.lambda_r1 / 2 * r1
        if c.lambda_bcr_real > 0:
            bcr = losses.bcr_loss(d_real, disc(self.bcr_augment(real)))
            logs["bcr_real" + suffix], extra = bcr.detach(), extra + c.lambda_bcr_real * bcr
        if c.lambda_bcr_fake > 0:
            bcr = losses.bcr_loss(d_fake, disc(self.bcr_augment(fake)))
            logs["bcr_fake" + suffix], extra = bcr.detach(), extra + c.lambda_bcr_fake * bcr
        # CutMix needs U-Net D's (global N x 1, per-pixel N x 1 x H x W) pair, not multi-scale maps.
        pixel_maps = (isinstance(d_real, (tuple, list)) and len(d_real) == 2 and d_real[0].dim() == 2
                      and d_real[1].shape[-2:] == real_seen.shape[-2:])
        # A collage needs real and fake of one size: unpaired items of different sizes
        # (--preprocess scale_width / none) skip it, as a step does by chance anyway.
        pixel_maps = pixel_maps and fake_seen.shape == real_seen.shape
        chance = augment.cutmix_probability(self.steps_since_disc_start(step), CUTMIX_WARMUP_STEPS)
        if c.lambda_cutmix > 0 and pixel_maps and torch.rand(()).item() < chance:
            n, _, h, w = real_seen.shape
            mask = augment.cutmix_mask(n, h, w, device=real_seen.device)
            global_mixed, pixel_mixed = disc(augment.cutmix(real_seen, fake_seen, mask))
            # The collage is fake as a whole; per pixel it is real where it shows the real image.
            target = (losses.gan_loss(global_mixed, real=False, mode=c.gan_mode)
                      + losses.cutmix_decoder_loss(pixel_mixed.float(), mask, c.gan_mode))
            consistency = losses.cutmix_consistency_loss(pixel_mixed.float(), d_real[1].float(),
                                                         d_fake[1].float(), mask)
            logs["cutmix" + suffix] = consistency.detach()
            extra = extra + target + c.lambda_cutmix * consistency
        return extra
