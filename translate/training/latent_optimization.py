"""LOGAN's latent optimisation (Wu, Donahue, Balduzzi, Simonyan, Lillicrap 2019, "LOGAN: Latent
Optimisation for Generative Adversarial Networks"), for generators that take a noise latent.

Before a step's G and D updates, the latent z of every fake that a discriminator judges is moved
towards where D scores the fake higher, by natural gradient ascent on the generator's adversarial
score f(z) (the negated G adversarial loss: D(G(z)) for hinge/WGAN, -(D(G(z)) - 1)^2 for LSGAN):

    g = df/dz,   dz = alpha * g / (beta + ||g||^2),   z' = clip(z + dz, -clip, clip)

per sample (the paper's empirical Fisher g g^T with Tikhonov damping beta, inverted in closed
form; its defaults alpha = 0.9, beta = 5).  Both updates then use G(z').  Unlike the paper, z' is
a constant for the weight update (no second-order terms through dz), so the paper's penalty
on ||dz||^2 in the losses would have no gradient and is left out.  The paper draws z ~ U(-1, 1)
and clips z' to that support; our generators draw z ~ N(0, I), so the clip bound is a flag
(default 3: a bound on where a step may push z, which leaves 99.7 % of the draws untouched).

The pass leaves no gradient in any parameter (torch.autograd.grad w.r.t. the latents only) and
gives back every buffer it changed (batch-norm running statistics, spectral-norm vectors), so
those advance once per step as without it.  Its images see DiffAugment as in the G step.
"""
from __future__ import annotations

import contextlib
from typing import Iterator, Mapping

import torch
from torch import nn


def natural_gradient_step(z: torch.Tensor, grad: torch.Tensor, *, alpha: float, beta: float,
                          clip: float) -> torch.Tensor:
    """z + alpha g / (beta + ||g||^2), each sample with its own ||g||, clipped to [-clip, clip]."""
    norm2 = grad.flatten(1).pow(2).sum(1).view(-1, *([1] * (grad.dim() - 1)))
    return (z + alpha * grad / (beta + norm2)).clamp(-clip, clip)


def latent_dim(net: nn.Module) -> int:
    """Size of the noise latent a generator's forward takes as ``z`` (0: it takes none)."""
    return int(getattr(net, "latent_dim", 0) or 0)


@contextlib.contextmanager
def buffers_kept(modules: list[nn.Module]) -> Iterator[None]:
    """Give back every buffer (running statistics, power-iteration vectors) as it was before."""
    saved = [(b, b.detach().clone()) for m in modules for b in m.buffers()]
    try:
        yield
    finally:
        with torch.no_grad():
            for buffer, value in saved:
                buffer.copy_(value)


class LatentOptimizer:
    """``latents(batch, step)`` -> {fake image name: z'} for ``Objective.generate``.

    ``nets``: the modules to run the pass with, by name (bare modules of DDP-wrapped networks:
    nothing here syncs).  Which images: the fakes of the objective's adversarial terms whose
    generator takes a latent (pix2pix: fake_b; cycle_gan: fake_b and fake_a).
    """

    def __init__(self, objective, nets: Mapping[str, nn.Module], *, steps: int = 1, alpha: float = 0.9,
                 beta: float = 5.0, clip: float = 3.0):
        self.objective, self.nets = objective, nets
        self.steps, self.alpha, self.beta, self.clip = steps, alpha, beta, clip
        self.terms = [t for t in objective.terms if t.adversarial
                      and latent_dim(nets[objective.recipes[t.needs[0]][0]]) > 0]
        if not self.terms:
            raise ValueError("--latent_optimization needs a generator that takes a noise latent and a GAN term "
                             "to judge its output: --netG vit_siren with --vit_noise > 0")

    def latents(self, batch: dict, step: int) -> dict[str, torch.Tensor] | None:
        """Optimised latents of this batch's judged fakes; None before --disc_start (no D to ask)."""
        obj = self.objective
        if not obj.discriminator_on(step):
            return None
        real = {"real_a": batch["A"], **({"real_b": batch["B"]} if "B" in batch else {})}
        z = {}
        for term in self.terms:
            fake = term.needs[0]
            source = real[obj.recipes[fake][1]]
            dim = latent_dim(self.nets[obj.recipes[fake][0]])
            z[fake] = torch.randn(source.shape[0], dim, device=source.device)
        modules = list(dict.fromkeys(self.nets[n] for n in self.nets))
        with buffers_kept(modules):
            for _ in range(self.steps):
                z = self._step(real, z)
        return z

    def _step(self, real: dict, z: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        obj = self.objective
        leaves = {name: value.detach().requires_grad_(True) for name, value in z.items()}
        images = dict(real)
        score = 0.0
        for term in self.terms:
            fake = term.needs[0]
            gen, source = obj.recipes[fake]
            images[fake] = self.nets[gen](real[source], z=leaves[fake])
            # The loss is a batch mean: times N it is the sum of per-sample scores, so each z
            # gets the gradient of its own sample's score.
            loss = obj.adversarial_loss(term, self.nets[term.discriminator], images)
            score = score - loss * images[fake].shape[0]
        grads = torch.autograd.grad(score, list(leaves.values()))
        return {name: natural_gradient_step(leaves[name].detach(), grad.detach().float(), alpha=self.alpha,
                                            beta=self.beta, clip=self.clip)
                for name, grad in zip(leaves, grads)}
