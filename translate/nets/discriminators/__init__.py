"""Discriminator name table: the --netD flag values and the builders behind them.

A discriminator returns logits: a Tensor, or a tuple/list of Tensors (several
outputs whose GAN losses are summed, e.g. multi-scale or U-Net global + pixel).
"""
from __future__ import annotations

from functools import partial

from torch import nn

from translate.nets.discriminators.multiscale import MultiscaleDiscriminator
from translate.nets.discriminators.patchgan import NLayerDiscriminator, PixelDiscriminator
from translate.nets.discriminators.unet import UNetDiscriminator
from translate.nets.discriminators.vit import VitDiscriminator

DISCRIMINATORS = {
    "basic": partial(NLayerDiscriminator, n_layers=3),
    "n_layers": NLayerDiscriminator,
    "pixel": PixelDiscriminator,
    "multiscale": MultiscaleDiscriminator,   # --num_D PatchGANs (--n_layers_D) at halved resolutions
    "unet": UNetDiscriminator,               # U-Net GAN: (global logit, per-pixel logit map)
    "vit": VitDiscriminator,                 # ViTGAN: L2 attention, improved spectral norm (--vit_*)
}


def build_discriminator(name: str, *, spectral_norm: bool = False, **kwargs) -> nn.Module:
    """Build the discriminator registered under ``name`` (a --netD value)."""
    try:
        builder = DISCRIMINATORS[name]
    except KeyError:
        raise ValueError(f"unknown --netD {name!r}; valid names: {', '.join(sorted(DISCRIMINATORS))}") from None
    net = builder(**kwargs)
    if spectral_norm:
        apply_spectral_norm(net)
    return net


def apply_spectral_norm(net: nn.Module) -> nn.Module:
    """Spectral normalization (Miyato et al. 2018) on every conv and linear layer."""
    for module in list(net.modules()):
        for name, child in list(module.named_children()):
            if isinstance(child, (nn.Conv2d, nn.Linear)) and not getattr(child, "keeps_own_init", False):
                setattr(module, name, nn.utils.parametrizations.spectral_norm(child))
    return net
