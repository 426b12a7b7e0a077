"""Discriminator name table: the --netD flag values and the builders behind them.

A discriminator returns logits: a Tensor, or a tuple/list of Tensors (several
outputs whose GAN losses are summed, e.g. multi-scale or U-Net global + pixel).

An entry is a class or a ``functools.partial`` of one; what it takes is its keyword-only
constructor arguments less the ones the partial fixes, plus ``spectral_norm``, which
``build_discriminator`` applies to any of them (``discriminator_arguments``).  Sizes come
from the class's ``size_rule`` (``discriminator_size_rule``), without building it.
"""
from __future__ import annotations

from functools import partial

from torch import nn

from translate.nets.discriminators.multiscale import MultiscaleDiscriminator
from translate.nets.discriminators.patchgan import NLayerDiscriminator, PixelDiscriminator
from translate.nets.discriminators.unet import UNetDiscriminator
from translate.nets.discriminators.vit import VitDiscriminator
from translate.nets.signatures import SizeRule, build_entry, entry_arguments, entry_size_rule

DISCRIMINATORS = {
    "basic": partial(NLayerDiscriminator, n_layers=3),
    "n_layers": NLayerDiscriminator,
    "pixel": PixelDiscriminator,
    "multiscale": MultiscaleDiscriminator,   # --num_D PatchGANs (--n_layers_D) at halved resolutions
    "unet": UNetDiscriminator,               # U-Net GAN: (global logit, per-pixel logit map)
    "vit": VitDiscriminator,                 # ViTGAN: L2 attention, improved spectral norm (--vit_*)
}


def _entry(name: str):
    try:
        return DISCRIMINATORS[name]
    except KeyError:
        raise ValueError(f"unknown --netD {name!r}; valid names: {', '.join(sorted(DISCRIMINATORS))}") from None


def build_discriminator(name: str, *, spectral_norm: bool = False, **kwargs) -> nn.Module:
    """Build the discriminator registered under ``name`` (a --netD value); an argument it
    does not take is a TypeError."""
    net = build_entry(_entry(name), f"--netD {name}", kwargs)
    if spectral_norm:
        apply_spectral_norm(net)
    return net


def discriminator_arguments(name: str) -> dict:
    """{argument: default} of what ``build_discriminator(name, ...)`` takes."""
    return {**entry_arguments(_entry(name)), "spectral_norm": False}


def discriminator_size_rule(name: str, arguments: dict) -> SizeRule:
    """The H, W multiple and smallest side of discriminator ``name`` built with ``arguments``."""
    return entry_size_rule(_entry(name), {k: v for k, v in arguments.items() if k != "spectral_norm"})


def apply_spectral_norm(net: nn.Module) -> nn.Module:
    """Spectral normalization (Miyato et al. 2018) on every conv and linear layer."""
    for module in list(net.modules()):
        for name, child in list(module.named_children()):
            if isinstance(child, (nn.Conv2d, nn.Linear)) and not getattr(child, "keeps_own_init", False):
                setattr(module, name, nn.utils.parametrizations.spectral_norm(child))
    return net
