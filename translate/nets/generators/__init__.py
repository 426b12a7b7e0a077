"""Generator name table: the --netG flag values and the builders behind them.

An entry is a class or a ``functools.partial`` of one; what it takes is its keyword-only
constructor arguments less the ones the partial fixes (``generator_arguments``), and its
sizes come from the class's ``size_rule`` (``generator_size_rule``), without building it.
"""
from __future__ import annotations

from functools import partial

from torch import nn

from translate.nets.generators.resnet import ResnetGenerator
from translate.nets.generators.unet import UnetGenerator
from translate.nets.generators.vit_siren import VitSirenGenerator
from translate.nets.signatures import SizeRule, build_entry, entry_arguments, entry_size_rule

GENERATORS = {
    "resnet_9blocks": partial(ResnetGenerator, n_blocks=9),
    "resnet_6blocks": partial(ResnetGenerator, n_blocks=6),
    "unet_256": partial(UnetGenerator, num_downs=8),
    "unet_128": partial(UnetGenerator, num_downs=7),
    # Small U-Net for 64 px images (the built-in demo, tests).
    "unet_64": partial(UnetGenerator, num_downs=6),
    # ViTGAN's transformer generator with an implicit SIREN patch decoder (--vit_* flags).
    "vit_siren": VitSirenGenerator,
}


def _entry(name: str):
    try:
        return GENERATORS[name]
    except KeyError:
        raise ValueError(f"unknown --netG {name!r}; valid names: {', '.join(sorted(GENERATORS))}") from None


def build_generator(name: str, **kwargs) -> nn.Module:
    """Build the generator registered under ``name`` (a --netG value); an argument it does
    not take is a TypeError."""
    return build_entry(_entry(name), f"--netG {name}", kwargs)


def generator_arguments(name: str) -> dict:
    """{argument: default} of what ``build_generator(name, ...)`` takes."""
    return entry_arguments(_entry(name))


def generator_size_rule(name: str, arguments: dict) -> SizeRule:
    """The H, W multiple and smallest side of generator ``name`` built with ``arguments``."""
    return entry_size_rule(_entry(name), arguments)


def size_multiple(net: nn.Module) -> int:
    """The multiple that input H and W must have for this generator."""
    return int(getattr(net, "size_multiple", 1))


def smallest_side(net: nn.Module) -> int:
    """The smallest input H and W this generator runs on (its ``min_side``, else its multiple)."""
    return int(getattr(net, "min_side", size_multiple(net)))
