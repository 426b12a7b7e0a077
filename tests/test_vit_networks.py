"""ViT-SIREN generator, ViT / U-Net / multi-scale discriminators, improved spectral norm."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from translate.nets.discriminators.multiscale import MultiscaleDiscriminator
from translate.nets.discriminators.unet import UNetDiscriminator
from translate.nets.discriminators.vit import L2Attention, VitDiscriminator
from translate.nets.generators.vit_siren import SelfModulatedLayerNorm, SirenPatchDecoder, VitSirenGenerator
from translate.nets.layers import init_weights
from translate.nets.spectral import improved_spectral_norm, spectral_norm_of

TINY = dict(image_size=32, patch_size=8, dim=32, depth=2, heads=4)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)




def _assert_all_grads(net: nn.Module) -> None:
    missing = [name for name, p in net.named_parameters() if p.grad is None]
    assert not missing, f"no gradient for {missing}"


# ----------------------------------------------------------------------------- generator

@pytest.mark.parametrize("size", [(32, 32), (48, 64)])
def test_generator_shape_range_and_grads(size):
    gen = VitSirenGenerator(in_channels=3, out_channels=2, noise_dim=4, **TINY)
    init_weights(gen)
    out = gen(torch.randn(2, 3, *size))
    assert out.shape == (2, 2, *size)
    assert torch.isfinite(out).all() and out.abs().max() < 1
    out.square().mean().backward()
    _assert_all_grads(gen)


def test_generator_rejects_sizes_off_the_patch_grid():
    gen = VitSirenGenerator(in_channels=3, out_channels=3, **TINY)
    with pytest.raises(ValueError, match="multiples of patch_size"):
        gen(torch.randn(1, 3, 36, 32))


@pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning", "ignore::FutureWarning")
def test_traced_generator_follows_the_input_size():
    # Position tables are resampled even at the build size, so a trace is not frozen to it (export).
    gen = VitSirenGenerator(in_channels=3, out_channels=3, **TINY).eval()
    with torch.no_grad():
        traced = torch.jit.trace(gen, torch.randn(1, 3, 32, 32), check_trace=False)
        x = torch.randn(2, 3, 48, 64)
        assert torch.allclose(traced(x), gen(x), atol=1e-5)


def test_generator_noise_is_fresh_in_training_and_off_in_eval():
    gen = VitSirenGenerator(in_channels=3, out_channels=3, noise_dim=8, **TINY)
    x = torch.randn(1, 3, 32, 32)
    assert not torch.allclose(gen(x), gen(x))
    gen.eval()
    assert torch.equal(gen(x), gen(x))


def test_pixel_skip_feeds_each_output_pixel_its_own_input_features():
    # The per-pixel features reach only the pixel they were computed at: a bug in the patch
    # unfolding would route them to another position.
    gen = VitSirenGenerator(in_channels=3, out_channels=3, pixel_channels=4, **TINY)
    captured = {}
    gen.pixel_stem.register_forward_hook(lambda _m, _i, out: captured.setdefault("f", out.retain_grad() or out))
    out = gen(torch.randn(1, 3, 32, 48))
    y, x = 13, 34                      # in-patch offsets (5, 2) differ, so a transposition shows
    out[0, :, y, x].sum().backward()
    grad = captured["f"].grad[0].abs().sum(0)
    assert grad[y, x] > 0
    grad[y, x] = 0
    assert torch.count_nonzero(grad) == 0


def test_generator_without_pixel_skip_has_no_stem():
    gen = VitSirenGenerator(in_channels=3, out_channels=3, pixel_channels=0, **TINY)
    assert not hasattr(gen, "pixel_stem")
    assert gen(torch.randn(1, 3, 32, 32)).shape == (1, 3, 32, 32)


def test_init_weights_keeps_siren_and_sln_init():
    gen = VitSirenGenerator(in_channels=3, out_channels=3, **TINY)
    before = {n: p.clone() for n, p in gen.named_parameters() if n.startswith(("decoder", "norm"))}
    init_weights(gen, "normal", 0.02)
    for name, value in before.items():
        assert torch.equal(value, dict(gen.named_parameters())[name]), name


def test_sln_with_unit_gamma_zero_beta_is_layernorm_and_depends_on_w():
    sln = SelfModulatedLayerNorm(16, 8)
    h, w = torch.randn(2, 5, 16), torch.randn(2, 8)
    out = sln(h, w)
    assert not torch.allclose(out, sln(h, w + 1.0))
    with torch.no_grad():
        sln.weight.zero_()                 # gamma(w) = 1, beta(w) = 0 for every w
    assert torch.allclose(sln(h, w), F.layer_norm(h, (16,), eps=sln.eps), atol=1e-6)


def test_siren_patch_is_smooth_in_the_pixel_coordinate():
    decoder = SirenPatchDecoder(dim=32, patch_size=16, out_channels=3)
    tokens = torch.randn(1, 4, 32)
    with torch.no_grad():
        pix = decoder(tokens).reshape(4, 16, 16, 3)
        neighbour = (pix[:, 1:] - pix[:, :-1]).abs().mean() + (pix[:, :, 1:] - pix[:, :, :-1]).abs().mean()
        flat = pix.reshape(4, 256, 3)
        random_pairs = (flat - flat[:, torch.randperm(256)]).abs().mean()
        assert neighbour / 2 < 0.5 * random_pairs
        # Between pixel centres the function stays bounded: a 1/100-pixel step moves it little.
        v = decoder.coords
        step = decoder(tokens, v + 0.02 / 16) - decoder(tokens)
        assert step.abs().max() < 0.1 * flat.std()


# ----------------------------------------------------------------------------- ViT discriminator

@pytest.mark.parametrize("size", [(32, 32), (48, 64)])
def test_vit_discriminator_shape_and_grads(size):
    disc = VitDiscriminator(in_channels=6, overlap=2, **TINY)
    out = disc(torch.randn(2, 6, *size))
    assert out.shape == (2, 1) and torch.isfinite(out).all()
    out.sum().backward()
    _assert_all_grads(disc)


def test_overlapping_patches_keep_the_token_grid():
    disc = VitDiscriminator(in_channels=3, overlap=3, **TINY)
    weight = disc.patch_embed.weight
    assert weight.shape[-2:] == (8 + 2 * 3, 8 + 2 * 3)
    assert disc.patch_embed(torch.randn(1, 3, 48, 64)).shape[-2:] == (6, 8)


def test_l2_attention_ties_query_and_key_and_matches_brute_force():
    attn = L2Attention(24, heads=3)
    projections = [n for n, _ in attn.named_parameters() if n.endswith("weight")]
    assert projections == ["qk.weight", "v.weight", "proj.weight"]    # one tied query/key matrix
    x = torch.randn(2, 7, 24)
    q = (x @ attn.qk.weight.t()).reshape(2, 7, 3, 8).transpose(1, 2)  # queries = keys
    brute = -torch.cdist(q, q).square() / 8 ** 0.5
    assert torch.allclose(attn.attention_logits(x), brute, atol=1e-4)
    v = attn.v(x).reshape(2, 7, 3, 8).transpose(1, 2)
    expected = attn.proj((brute.softmax(-1) @ v).transpose(1, 2).reshape(2, 7, 24))
    assert torch.allclose(attn(x), expected, atol=1e-5)


def test_init_weights_leaves_the_vit_discriminator_alone():
    disc = VitDiscriminator(in_channels=3, **TINY).eval()
    x = torch.randn(1, 3, 32, 32)
    before = disc(x)
    init_weights(disc, "normal", 0.02)
    assert torch.equal(before, disc(x))


def _sigma_now(layer: nn.Linear) -> torch.Tensor:
    layer.eval()                         # read the weight without advancing the power iteration
    sigma = spectral_norm_of(layer.weight)
    layer.train()
    return sigma


def _push_sigma_up(layer: nn.Linear, steps: int) -> float:
    """Adam steps that maximise the output energy (pushing sigma(W) up); worst sigma seen."""
    opt = torch.optim.Adam(layer.parameters(), lr=1e-3)
    x = torch.randn(32, 16)
    worst = 0.0
    for _ in range(steps):
        opt.zero_grad()
        (-layer(x).square().mean()).backward()
        opt.step()
        worst = max(worst, float(_sigma_now(layer)))
    return worst


def test_isn_equals_init_weight_then_bounds_the_spectral_norm():
    plain = nn.Linear(16, 12)
    layer = nn.Linear(16, 12)
    layer.load_state_dict(plain.state_dict())
    w_init = layer.weight.detach().clone()
    sigma_init = float(spectral_norm_of(w_init))
    improved_spectral_norm(layer)
    assert torch.allclose(layer.weight, w_init, atol=1e-5)
    assert _push_sigma_up(plain, 200) > 2 * sigma_init
    # One power iteration per step lags the moving weight, so allow the
    # overshoot that torch's own spectral_norm shows in this test (<= ~30%).
    assert _push_sigma_up(layer, 200) < 1.35 * sigma_init
    with torch.no_grad():                # let the estimate catch up: then the bound is tight
        for _ in range(30):
            layer(torch.zeros(1, 16))
    assert abs(float(_sigma_now(layer)) / sigma_init - 1) < 1e-3


# ----------------------------------------------------------------------------- U-Net and multi-scale

def test_unet_discriminator_shapes_and_grads():
    disc = UNetDiscriminator(in_channels=4, base_channels=8, n_down=3, norm="instance", self_attention=True)
    global_logits, pixel_logits = disc(torch.randn(2, 4, 32, 48))
    assert global_logits.shape == (2, 1) and pixel_logits.shape == (2, 1, 32, 48)
    (global_logits.sum() + pixel_logits.sum()).backward()
    _assert_all_grads(disc)
    with pytest.raises(ValueError, match="multiples of 8"):
        disc(torch.randn(1, 4, 36, 48))


def test_multiscale_judges_pooled_copies():
    disc = MultiscaleDiscriminator(in_channels=3, num_D=3, base_channels=4, n_layers=1, norm="none")
    seen = []
    for single in disc.discriminators:
        single.register_forward_pre_hook(lambda _module, args: seen.append(args[0]))
    x = torch.randn(1, 3, 32, 32)
    outs = disc(x)
    assert [s.shape[-1] for s in seen] == [32, 16, 8] and len(outs) == 3
    assert torch.equal(seen[0], x)
    assert torch.allclose(seen[1], F.avg_pool2d(x, 3, 2, 1, count_include_pad=False))


def test_multiscale_defaults_to_patchgan():
    disc = MultiscaleDiscriminator(in_channels=3, num_D=2, base_channels=8, n_layers=2, norm="instance")
    outs = disc(torch.randn(1, 3, 64, 64))
    assert isinstance(outs, list) and len(outs) == 2 and all(o.shape[:2] == (1, 1) for o in outs)
