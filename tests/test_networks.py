"""Every registered network: shape, finite values, gradients; classic parameter counts."""
import pytest
import torch

from translate.nets.discriminators import DISCRIMINATORS, build_discriminator
from translate.nets.generators import GENERATORS, build_generator, size_multiple
from translate.nets.layers import init_weights
from options.config import NetworkConfig
from translate.networks import network_arguments

# Tiny networks; each gets only the arguments it takes (from the builder).
SMALL = NetworkConfig(ngf=4, ndf=4, vit_patch_size=8, vit_dim=16, vit_depth=1, vit_heads=2, crop_size=64)


def _small(kind, name, **overrides):
    net = NetworkConfig(**{**SMALL.__dict__, **overrides})
    channels = {"in_channels": 3, "out_channels": 1} if kind == "generator" else {"in_channels": 6}
    return network_arguments(kind, name, net, **channels)


def _count(net):
    return sum(p.numel() for p in net.parameters())


def _side(name):
    return {"unet_256": 256, "unet_128": 128}.get(name, 64)


@pytest.mark.parametrize("name", sorted(GENERATORS))
@pytest.mark.parametrize("norm", ["instance", "batch"])
def test_generator_shape_finite_and_gradients(name, norm):
    torch.manual_seed(0)
    net = init_weights(build_generator(name, **_small("generator", name, norm=norm)))
    side = _side(name)
    assert side % size_multiple(net) == 0
    x = torch.randn(2, 3, side, side)
    y = net(x)
    assert y.shape == (2, 1, side, side)
    assert torch.isfinite(y).all() and y.abs().max() <= 1
    y.square().mean().backward()
    missing = [n for n, p in net.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert not missing, missing


@pytest.mark.parametrize("name", sorted(DISCRIMINATORS))
def test_discriminator_shape_finite_and_gradients(name):
    torch.manual_seed(0)
    net = init_weights(build_discriminator(name, **_small("discriminator", name, norm="instance", n_layers_D=3)))
    out = net(torch.randn(2, 6, 64, 64))
    outs = [out] if isinstance(out, torch.Tensor) else list(out)
    for o in outs:
        assert o.shape[0] == 2 and o.shape[1] == 1 and torch.isfinite(o).all()
    sum(o.square().mean() for o in outs).backward()
    missing = [n for n, p in net.named_parameters() if p.grad is None]
    assert not missing, missing


def test_patchgan_is_70x70_receptive_field_map():
    net = build_discriminator("basic", in_channels=3, norm="instance")
    assert net(torch.zeros(1, 3, 256, 256)).shape == (1, 1, 30, 30)


@pytest.mark.parametrize("name,norm,expected", [
    ("resnet_9blocks", "instance", 11.378), ("unet_256", "batch", 54.414), ("unet_128", "batch", 41.829)])
def test_classic_generator_parameter_counts(name, norm, expected):
    assert round(_count(build_generator(name, norm=norm)) / 1e6, 3) == expected


@pytest.mark.parametrize("channels,norm,expected", [(3, "instance", 2.765), (6, "batch", 2.769)])
def test_classic_patchgan_parameter_counts(channels, norm, expected):
    net = build_discriminator("basic", in_channels=channels, norm=norm)
    assert round(_count(net) / 1e6, 3) == expected


def test_classic_parameter_names():
    g = build_generator("resnet_9blocks", norm="instance")
    keys = list(g.state_dict())
    assert keys[0] == "model.1.weight" and "model.10.conv_block.1.weight" in keys
    assert "model.26.weight" in keys  # the final 7x7 conv
    u = build_generator("unet_256", norm="batch")
    assert "model.model.1.model.3.model.3.model.3.model.3.model.3.model.3.model.1.weight" in u.state_dict()
    d = build_discriminator("basic", in_channels=6, norm="batch")
    assert list(d.state_dict())[:2] == ["model.0.weight", "model.0.bias"]


def test_dropout_only_when_asked():
    with_dropout = build_generator("resnet_6blocks", use_dropout=True)
    assert any(isinstance(m, torch.nn.Dropout) for m in with_dropout.modules())
    assert not any(isinstance(m, torch.nn.Dropout) for m in build_generator("resnet_6blocks").modules())


def test_unknown_names_list_the_valid_ones():
    with pytest.raises(ValueError, match="resnet_9blocks"):
        build_generator("resnet_99")
    with pytest.raises(ValueError, match="basic"):
        build_discriminator("nope")


@pytest.mark.parametrize("init_type", ["normal", "xavier", "kaiming", "orthogonal"])
def test_init_types_change_weights(init_type):
    torch.manual_seed(0)
    net = build_discriminator("pixel", in_channels=3, norm="batch")
    before = net.net[0].weight.clone()
    init_weights(net, init_type, 0.02)
    assert not torch.equal(before, net.net[0].weight)
    if init_type == "normal":
        assert net.net[0].weight.std().item() == pytest.approx(0.02, rel=0.3)


def test_self_attention_and_spectral_norm_options():
    g = build_generator("resnet_6blocks", self_attention=True, base_channels=8)
    assert g(torch.randn(1, 3, 32, 32)).shape == (1, 3, 32, 32)
    d = build_discriminator("basic", in_channels=3, spectral_norm=True, self_attention=True, base_channels=8)
    assert any("parametrizations" in k for k in d.state_dict())
    assert d(torch.randn(1, 3, 64, 64)).shape[1] == 1
