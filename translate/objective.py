"""What to compute and how the loss terms combine; no optimizers, no backward.

``generate(batch)`` returns only the images that the enabled terms need (a dict
that doubles as the visuals); ``generator_loss`` and ``discriminator_loss``
return ``(total, logs)`` with detached tensors in ``logs`` (no host sync here).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from options.config import LossConfig
from translate import losses

# image name -> (network, input image name)
RECIPES = {
    "fake_b": ("gen_ab", "real_a"), "fake_a": ("gen_ba", "real_b"),
    "rec_a": ("gen_ba", "fake_b"), "rec_b": ("gen_ab", "fake_a"),
    "idt_b": ("gen_ab", "real_b"), "idt_a": ("gen_ba", "real_a"),
}
# The discriminator judging each domain, and the generated image it judges.
JUDGES = {"disc_b": ("real_b", "fake_b"), "disc_a": ("real_a", "fake_a")}


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
        logits = disc(self.discriminator_input(images, images[fake_name]))
        return losses.gan_loss(logits, real=True, mode=self.cfg.gan_mode, for_discriminator=False)

    def generator_loss(self, images: dict) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        total, logs = 0.0, {}
        for term in self.terms:
            value = term.fn(self, images)
            logs[term.name] = value.detach()
            total = total + term.weight * value
        return total, logs

    def fake_inputs(self, images: dict) -> dict[str, torch.Tensor]:
        """Detached D inputs for the fakes, per discriminator: what the image pools hold.

        For the conditional D these include real A, so a pooled fake keeps its own input.
        """
        return {d: self.discriminator_input(images, images[JUDGES[d][1]]).detach() for d in self.judges}

    def discriminator_loss(self, images: dict, fake_inputs: dict[str, torch.Tensor] | None = None
                           ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """D loss on real images and (pooled) fakes from ``fake_inputs`` (default: this batch's)."""
        fake_inputs = fake_inputs or self.fake_inputs(images)
        total, logs = 0.0, {}
        mode = self.cfg.gan_mode
        for disc_name in self.judges:
            disc = self.nets[disc_name]
            real = self.discriminator_input(images, images[JUDGES[disc_name][0]])
            fake = fake_inputs[disc_name]
            value = 0.5 * (losses.gan_loss(disc(real), real=True, mode=mode)
                           + losses.gan_loss(disc(fake), real=False, mode=mode))
            if mode == "wgangp" and self.cfg.lambda_gp > 0:
                value = value + self.cfg.lambda_gp * losses.gradient_penalty(disc, real, fake)
            logs[disc_name] = value.detach()
            total = total + value
        return total, logs
