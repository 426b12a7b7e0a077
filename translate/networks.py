"""Build the networks a model needs from a NetworkConfig.

Which networks and their channel counts come from the model table (translate/models.py):
pix2pix has gen_ab and a conditional disc_b (judges A and B concatenated); cycle_gan / csgan
have gen_ab, gen_ba, disc_a (judges domain A) and disc_b (domain B).
"""
from __future__ import annotations

from torch import nn

from options.config import NetworkConfig
from translate.nets.discriminators import build_discriminator
from translate.nets.generators import build_generator
from translate.nets.layers import init_weights
from translate.models import get_model


def generator_kwargs(net: NetworkConfig, in_channels: int, out_channels: int) -> dict:
    return dict(in_channels=in_channels, out_channels=out_channels, base_channels=net.ngf,
                norm=net.norm, use_dropout=net.use_dropout, self_attention=net.self_attention,
                image_size=net.crop_size, patch_size=net.vit_patch_size, dim=net.vit_dim,
                depth=net.vit_depth, heads=net.vit_heads, noise_dim=net.vit_noise,
                pixel_channels=net.vit_pixel_skip)


def discriminator_kwargs(net: NetworkConfig, in_channels: int) -> dict:
    return dict(in_channels=in_channels, base_channels=net.ndf, n_layers=net.n_layers_D,
                norm=net.norm, self_attention=net.self_attention, spectral_norm=net.spectral_norm,
                image_size=net.crop_size, patch_size=net.vit_patch_size, dim=net.vit_dim,
                depth=net.vit_depth, heads=net.vit_heads, overlap=net.vit_patch_overlap,
                num_D=net.num_D)


def make_generator(net: NetworkConfig, in_channels: int, out_channels: int) -> nn.Module:
    g = build_generator(net.netG, **generator_kwargs(net, in_channels, out_channels))
    return init_weights(g, net.init_type, net.init_gain)


def make_discriminator(net: NetworkConfig, in_channels: int) -> nn.Module:
    d = build_discriminator(net.netD, **discriminator_kwargs(net, in_channels))
    return init_weights(d, net.init_type, net.init_gain)


def build_networks(model: str, net: NetworkConfig, *, with_discriminators: bool = True) -> nn.ModuleDict:
    """The model's generators (and discriminators), in the table's order: that order decides the
    random initialization, so it must stay fixed for a model (seeded runs, bit-exact resume)."""
    spec = get_model(model)
    nets = nn.ModuleDict({name: make_generator(net, *spec.generator_channels(name, net.input_nc, net.output_nc))
                          for name in spec.generators})
    if with_discriminators:
        for name in spec.discriminators:
            nets[name] = make_discriminator(net, spec.discriminator_channels(name, net.input_nc, net.output_nc))
    return nets
