"""The generator loss terms: one table from term name to how the term is built.

Which terms a model has is written in the model table (``MODELS[name].terms``,
translate/models.py); this table says, per term, its weight (from the loss flags),
the images it reads, the generators it trains and, for an adversarial term, the
discriminator that judges it.  The objective enables the terms with weight > 0.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping

import torch

from options.config import LossConfig
from translate.models import ModelSpec
from translate.training import losses


@dataclass(frozen=True)
class Term:
    """One generator loss term.

    ``generators``: the networks whose outputs it scores, so whose parameters its
    gradient trains.  An adversarial term has a ``discriminator``, which judges its
    one image ``needs[0]``; the others compute ``score(images)``.
    """
    name: str
    weight: float
    needs: tuple[str, ...]
    generators: tuple[str, ...]
    discriminator: str | None = None
    score: Callable[[dict], torch.Tensor] | None = None

    def __post_init__(self):
        if self.adversarial and (len(self.needs) != 1 or len(self.generators) != 1):
            raise ValueError(f"adversarial term {self.name} must judge one image of one generator")
        if not self.adversarial and self.score is None:
            raise ValueError(f"term {self.name} needs a score function or a discriminator")

    @property
    def adversarial(self) -> bool:
        return self.discriminator is not None


# ---- the term table ------------------------------------------------------

def image_recipes(spec: ModelSpec) -> dict[str, tuple[str, str]]:
    """Generated image name -> (generator, input image name), from the model's generators.

    A generator reading domain x and writing y makes ``fake_y`` from ``real_x``,
    ``rec_y`` (the cycle) from ``fake_x``, and ``idt_y`` (the identity) from ``real_y``.
    """
    recipes = {}
    for gen, (reads, writes) in spec.generators.items():
        recipes[f"fake_{writes}"] = (gen, f"real_{reads}")
        recipes[f"rec_{writes}"] = (gen, f"fake_{reads}")
        recipes[f"idt_{writes}"] = (gen, f"real_{writes}")
    return recipes


def _adversarial(name: str, spec: ModelSpec, domain: str) -> Term:
    """The generator writing ``domain`` tries to fool the discriminator judging it."""
    fake = f"fake_{domain}"
    generator = image_recipes(spec)[fake][0]
    judges = [d for d, judged in spec.discriminators.items() if judged == domain]
    if len(judges) != 1:
        raise ValueError(f"term {name} of --model {spec.name} needs one discriminator judging domain {domain}, "
                         f"the model table (translate/models.py) lists {judges or 'none'}")
    judge = judges[0]
    return Term(name, 1.0, (fake,), (generator,), discriminator=judge)


def _l1(name: str, spec: ModelSpec, weight: float, pairs: list[tuple[str, str]]) -> Term:
    """The sum of the L1 distances of each (generated, target) pair."""
    def score(images: dict) -> torch.Tensor:
        total = losses.l1(images[pairs[0][0]], images[pairs[0][1]])
        for a, b in pairs[1:]:
            total = total + losses.l1(images[a], images[b])
        return total

    recipes = image_recipes(spec)
    needs = tuple(dict.fromkeys(n for pair in pairs for n in pair if n in recipes))
    generators = tuple(dict.fromkeys(recipes[n][0] for n in needs))
    return Term(name, weight, needs, generators, score=score)


# term name -> how to build it (the loss weights, the model) -> Term.
TERMS: Mapping[str, Callable[[LossConfig, ModelSpec], Term]] = {
    "gan_ab": lambda c, spec: _adversarial("gan_ab", spec, "b"),
    "gan_ba": lambda c, spec: _adversarial("gan_ba", spec, "a"),
    "cycle_a": lambda c, spec: _l1("cycle_a", spec, c.lambda_a, [("rec_a", "real_a")]),
    "cycle_b": lambda c, spec: _l1("cycle_b", spec, c.lambda_b, [("rec_b", "real_b")]),
    "idt_a": lambda c, spec: _l1("idt_a", spec, c.lambda_a * c.lambda_identity, [("idt_a", "real_a")]),
    "idt_b": lambda c, spec: _l1("idt_b", spec, c.lambda_b * c.lambda_identity, [("idt_b", "real_b")]),
    # Each generator's output against its paired target (pix2pix: gen_ab's; CSGAN: both).
    "l1": lambda c, spec: _l1("l1", spec, c.lambda_l1,
                              [(f"fake_{writes}", f"real_{writes}") for _, writes in spec.generators.values()]),
    # CSGAN: G_BA(real_B) and G_BA(G_AB(real_A)) should agree, and symmetrically.
    "cs_a": lambda c, spec: _l1("cs_a", spec, c.lambda_cs, [("rec_a", "fake_a")]),
    "cs_b": lambda c, spec: _l1("cs_b", spec, c.lambda_cs, [("rec_b", "fake_b")]),
}


def enabled_terms(spec: ModelSpec, loss: LossConfig) -> list[Term]:
    """The model's terms (in the table's order) whose weight is > 0."""
    unknown = [name for name in spec.terms if name not in TERMS]
    if unknown:
        raise ValueError(f"--model {spec.name} lists terms {unknown} that translate/training/objective.py "
                         f"cannot build: add them to its TERMS table")
    terms = [TERMS[name](loss, spec) for name in spec.terms]
    return [t for t in terms if t.weight > 0]
