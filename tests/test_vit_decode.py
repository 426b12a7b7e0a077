"""vit_siren's options against patch seams (issue 15): overlapping decoder windows
(--vit_decode_overlap), a convolutional stem (--vit_stem conv), the Fourier scale flag.
Each is off by default, and off it is today's network bit for bit."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from options import OptionsError, parse_train_options
from options.config import NetworkConfig
from translate.nets.generators.vit_patches import ConvStem, blend_window, overlap_add
from translate.nets.generators.vit_siren import SirenPatchDecoder, VitSirenGenerator
from translate.nets.layers import init_weights, resize_pos_embed
from translate.networks import build_from_record, make_generator, network_record

TINY = dict(in_channels=3, out_channels=3, image_size=32, patch_size=8, dim=32, depth=1, heads=4, pixel_channels=4)
BASE = ["--gpu_ids", "-1", "--display_id", "0", "--crop_size", "64", "--load_size", "64", "--netG", "vit_siren",
        "--vit_dim", "32", "--vit_heads", "2", "--vit_depth", "1", "--vit_patch_size", "8"]


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def _twin(gen: VitSirenGenerator, **changes) -> VitSirenGenerator:
    """A generator with ``changes`` and gen's very weights (the overlap adds no parameter)."""
    other = VitSirenGenerator(**{**TINY, **changes})
    other.load_state_dict(gen.state_dict())
    return other


def _stitched_forward(gen: VitSirenGenerator, x: torch.Tensor) -> torch.Tensor:
    """VitSirenGenerator.forward as it was before the options (each token decodes its P x P
    patch and the patches are stitched), written out here as the reference."""
    n, _, height, width = x.shape
    p = gen.patch_size
    grid = (height // p, width // p)
    tokens = gen.patch_embed(x).flatten(2).transpose(1, 2)
    w = gen.mapping(tokens.mean(1))
    h = tokens + resize_pos_embed(gen.pos_embed, gen.grid, grid)
    for block in gen.blocks:
        h = block(h, w)
    f = gen.pixel_stem(x)
    pixels = f.reshape(n, -1, grid[0], p, grid[1], p).permute(0, 2, 4, 3, 5, 1).reshape(n, grid[0] * grid[1], p * p, -1)
    patches = gen.decoder(gen.norm(h, w), pixels=pixels)
    image = patches.reshape(n, grid[0], grid[1], p, p, gen.out_channels)
    return torch.tanh(image.permute(0, 5, 1, 3, 2, 4).reshape(n, gen.out_channels, height, width))


def _seam_ratio(image: torch.Tensor, p: int) -> float:
    """Mean absolute step between neighbouring pixels across patch borders over the same inside patches."""
    dx = (image[..., 1:] - image[..., :-1]).abs()         # step between columns j and j + 1
    dy = (image[..., 1:, :] - image[..., :-1, :]).abs()
    across_x = torch.arange(dx.shape[-1]) % p == p - 1
    across_y = torch.arange(dy.shape[-2]) % p == p - 1
    border = torch.cat([dx[..., across_x].flatten(), dy[..., across_y, :].flatten()]).mean()
    inside = torch.cat([dx[..., ~across_x].flatten(), dy[..., ~across_y, :].flatten()]).mean()
    return float(border / inside)


# ----------------------------------------------------------------------------- overlapping windows

@pytest.mark.parametrize("overlap", [1, 2, 4])
@pytest.mark.parametrize("size", [(32, 32), (48, 64), (8, 24)])
def test_overlapping_decoder_keeps_the_shape_range_and_grads(overlap, size):
    gen = init_weights(VitSirenGenerator(**TINY, decode_overlap=overlap, noise_dim=2))
    out = gen(torch.randn(2, 3, *size))
    assert out.shape == (2, 3, *size) and torch.isfinite(out).all() and out.abs().max() < 1
    out.square().mean().backward()
    assert not [n for n, p in gen.named_parameters() if p.grad is None]


@pytest.mark.parametrize("y,x", [(13, 34), (8, 7), (0, 47), (31, 0)])
def test_each_window_gives_a_pixel_the_skip_features_of_that_pixel(y, x):
    # Several windows decode a pixel near a border; each must be handed that pixel's own
    # features (an unfold / fold mismatch would route a neighbour's there).
    gen = VitSirenGenerator(**TINY, decode_overlap=3)
    captured = {}
    gen.pixel_stem.register_forward_hook(lambda _m, _i, out: captured.setdefault("f", out.retain_grad() or out))
    out = gen(torch.randn(1, 3, 32, 48))
    out[0, :, y, x].sum().backward()
    grad = captured["f"].grad[0].abs().sum(0)
    assert grad[y, x] > 0
    grad[y, x] = 0
    assert torch.count_nonzero(grad) == 0


def test_the_middle_of_each_window_is_the_plain_patch():
    # The window extends the patch's coordinate grid at the same spacing: its middle P x P
    # pixels are the coordinates, and so the values, of the plain patch decoder.
    plain = SirenPatchDecoder(dim=16, patch_size=8, out_channels=3)
    wide = SirenPatchDecoder(dim=16, patch_size=8, out_channels=3, overlap=3)
    wide.load_state_dict(plain.state_dict())
    tokens = torch.randn(2, 5, 16)
    with torch.no_grad():
        middle = wide(tokens).reshape(2, 5, 14, 14, 3)[:, :, 3:11, 3:11]
        assert torch.allclose(middle.reshape(2, 5, 64, 3), plain(tokens), atol=1e-6)
    assert wide.coords.min() < -1 and wide.coords.max() > 1


def test_overlap_keeps_the_size_rule():
    gen = VitSirenGenerator(**TINY, decode_overlap=2)
    assert (gen.size_multiple, gen.min_side) == (8, 8)
    with pytest.raises(ValueError, match="multiples of patch_size"):
        gen(torch.randn(1, 3, 36, 32))


def test_overlap_zero_is_the_stitched_forward_bit_for_bit():
    gen = init_weights(VitSirenGenerator(**TINY, decode_overlap=0))
    x = torch.randn(2, 3, 32, 48)
    with torch.no_grad():
        assert torch.equal(gen(x), _stitched_forward(gen, x))


def test_overlap_add_of_unit_windows_without_overlap_is_stitching():
    # The fold path itself, at M = 0, places each token's patch where the stitching does.
    patches = torch.randn(2, 3 * 4, 64, 5)                  # N, T (3 x 4 grid), K = 8 x 8, C
    stitched = patches.reshape(2, 3, 4, 8, 8, 5).permute(0, 5, 1, 3, 2, 4).reshape(2, 5, 24, 32)
    assert torch.allclose(overlap_add(patches, torch.ones(64), (24, 32), 8, 0), stitched)


def test_overlap_zero_adds_no_parameters_or_buffers_to_the_state_dict():
    plain = VitSirenGenerator(**TINY, decode_overlap=0)
    for changes in ({"decode_overlap": 3}, {"fourier_scale": 5.0}):
        assert {k: v.shape for k, v in _twin(plain, **changes).state_dict().items()} == \
               {k: v.shape for k, v in plain.state_dict().items()}


@pytest.mark.parametrize("overlap", [1, 3, 4])
@pytest.mark.parametrize("size", [(32, 32), (16, 40)])
def test_blend_of_a_constant_is_that_constant_everywhere_even_at_the_image_border(overlap, size):
    k = (8 + 2 * overlap) ** 2
    tokens = (size[0] // 8) * (size[1] // 8)
    out = overlap_add(torch.full((1, tokens, k, 2), 0.7), blend_window(8, overlap), size, 8, overlap)
    assert out.shape == (1, 2, *size)
    assert torch.allclose(out, torch.full_like(out, 0.7), atol=1e-6)


def test_generator_with_a_constant_decoder_is_constant_to_the_edge():
    gen = VitSirenGenerator(**TINY, decode_overlap=3)
    with torch.no_grad():
        gen.decoder.to_pixels.weight.zero_()
        gen.decoder.to_pixels.bias.fill_(0.5)
        out = gen(torch.randn(1, 3, 24, 40))
    assert torch.allclose(out, torch.full_like(out, torch.tanh(torch.tensor(0.5)).item()), atol=1e-6)


@pytest.mark.parametrize("overlap", [1, 2, 4])
def test_neighbouring_tapers_sum_to_one(overlap):
    # Inside the image the weights already form a partition of unity: the normalisation only
    # matters at the border, and the middle of each patch is its own token's alone.
    taper = blend_window(8, overlap).reshape(8 + 2 * overlap, -1).diagonal().sqrt()   # the 1-D taper
    assert torch.all(taper > 0) and torch.equal(taper[2 * overlap:8], torch.ones(8 - 2 * overlap))
    # The next window starts 8 pixels on: where the two overlap, their weights sum to 1.
    assert torch.allclose(taper[:2 * overlap] + taper[8:], torch.ones(2 * overlap))


def test_overlap_lowers_the_seams_of_an_untrained_generator():
    torch.manual_seed(3)
    plain = init_weights(VitSirenGenerator(**TINY, decode_overlap=0)).eval()
    blended = _twin(plain, decode_overlap=4).eval()
    x = torch.rand(4, 3, 32, 48) * 2 - 1
    with torch.no_grad():
        before, after = _seam_ratio(plain(x), 8), _seam_ratio(blended(x), 8)
    assert before > 1.5                  # the stitched output really has seams to remove
    assert after < 0.6 * before, (before, after)


def test_overlap_past_half_a_patch_is_refused():
    with pytest.raises(ValueError, match="patch_size / 2"):
        VitSirenGenerator(**TINY, decode_overlap=5)
    with pytest.raises(OptionsError, match="--vit_decode_overlap 5 .* at most --vit_patch_size / 2 = 4"):
        parse_train_options(BASE + ["--vit_decode_overlap", "5"])


# ----------------------------------------------------------------------------- convolutional stem

@pytest.mark.parametrize("patch", [1, 4, 8])
def test_conv_stem_gives_the_token_grid_and_trains(patch):
    gen = init_weights(VitSirenGenerator(**{**TINY, "patch_size": patch, "image_size": 16}, stem="conv"))
    assert isinstance(gen.patch_embed, ConvStem)
    assert gen.patch_embed(torch.randn(1, 3, 16, 24)).shape == (1, 32, 16 // patch, 24 // patch)
    out = gen(torch.randn(2, 3, 16, 24))
    assert out.shape == (2, 3, 16, 24) and torch.isfinite(out).all()
    out.square().mean().backward()
    assert not [n for n, p in gen.named_parameters() if p.grad is None]


def test_conv_stem_follows_the_paper_channels():
    convs = [m for m in ConvStem(3, 384, 16).modules() if isinstance(m, nn.Conv2d)]
    assert [(c.out_channels, c.kernel_size, c.stride) for c in convs] == \
           [(24, (3, 3), (2, 2)), (48, (3, 3), (2, 2)), (96, (3, 3), (2, 2)), (192, (3, 3), (2, 2)), (384, (1, 1), (1, 1))]


def test_conv_stem_needs_a_power_of_two_patch():
    with pytest.raises(ValueError, match="power of two"):
        VitSirenGenerator(**{**TINY, "patch_size": 12, "image_size": 24}, stem="conv")
    argv = BASE[:-1] + ["12", "--crop_size", "48", "--load_size", "48", "--vit_stem", "conv"]
    with pytest.raises(OptionsError, match="--vit_stem conv .* --vit_patch_size must be a power of two .* use e.g. 8"):
        parse_train_options(argv)


def test_default_stem_is_the_linear_patch_map():
    gen = VitSirenGenerator(**TINY)
    assert type(gen.patch_embed) is nn.Conv2d and gen.patch_embed.kernel_size == gen.patch_embed.stride == (8, 8)


# ----------------------------------------------------------------------------- flags and records

def test_flags_reach_the_generator():
    net = parse_train_options(BASE + ["--vit_decode_overlap", "2", "--vit_stem", "conv",
                                      "--vit_fourier_scale", "3.5"]).net
    gen = make_generator(net, 3, 3)
    assert gen.decode_overlap == 2 and isinstance(gen.patch_embed, ConvStem)
    assert gen.decoder.fourier_scale == 3.5
    args = network_record(gen)["args"]
    assert (args["decode_overlap"], args["stem"], args["fourier_scale"]) == (2, "conv", 3.5)


def test_defaults_record_todays_network_and_old_records_rebuild_it():
    default = make_generator(parse_train_options(BASE).net, 3, 3)
    assert default.decode_overlap == default.patch_size // 4 > 0      # a quarter patch each side
    args = network_record(default)["args"]
    assert (args["decode_overlap"], args["stem"], args["fourier_scale"]) == (None, "linear", None)
    assert build_from_record(network_record(default)).decode_overlap == default.decode_overlap
    # A checkpoint written before these options records none of them: it rebuilds the network of
    # that time (patches side by side, today's --vit_decode_overlap 0).
    gen = make_generator(parse_train_options(BASE + ["--vit_decode_overlap", "0"]).net, 3, 3).eval()
    args = network_record(gen)["args"]
    old = {"kind": "generator", "name": "vit_siren",
           "args": {k: v for k, v in args.items() if k not in ("decode_overlap", "stem", "fourier_scale")}}
    rebuilt = build_from_record(old).eval()
    rebuilt.load_state_dict(gen.state_dict())          # strict: the same keys and shapes
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(rebuilt(x), gen(x))


def test_new_flags_on_another_generator_are_an_error():
    with pytest.raises(OptionsError, match="--vit_decode_overlap has no effect on --netG unet_64"):
        parse_train_options(["--gpu_ids", "-1", "--display_id", "0", "--crop_size", "64", "--load_size", "64",
                             "--netG", "unet_64", "--vit_decode_overlap", "2"])


def test_network_config_defaults_match_the_constructor():
    net = NetworkConfig()
    defaults = VitSirenGenerator.__init__.__kwdefaults__
    assert (net.vit_decode_overlap, net.vit_stem, net.vit_fourier_scale) == \
           (defaults["decode_overlap"], defaults["stem"], defaults["fourier_scale"])


@pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning", "ignore::FutureWarning")
def test_traced_variants_follow_the_input_size():
    # Export traces the generator at one size: the window folding must not freeze to it.
    gen = VitSirenGenerator(**TINY, decode_overlap=2, stem="conv").eval()
    with torch.no_grad():
        traced = torch.jit.trace(gen, torch.randn(1, 3, 32, 32), check_trace=False)
        x = torch.randn(2, 3, 48, 64)
        assert torch.allclose(traced(x), gen(x), atol=1e-5)


def test_a_classic_train_opt_txt_carries_the_options_to_the_loader():
    # Classic .pth runs are rebuilt from train_opt.txt; the file writes an unset scale as None.
    from options import classic_flags, network_config_from_flags
    from translate.inference.loading import CLASSIC_RUN_FLAGS
    flags = {"netG": "vit_siren", "vit_patch_size": "8", "vit_decode_overlap": "3", "vit_stem": "conv",
             "vit_fourier_scale": "None"}
    net = network_config_from_flags(classic_flags(flags, "pix2pix", CLASSIC_RUN_FLAGS)[0])
    assert (net.vit_decode_overlap, net.vit_stem, net.vit_fourier_scale) == (3, "conv", None)
    flags["vit_fourier_scale"] = "2.5"
    assert network_config_from_flags(classic_flags(flags, "pix2pix", CLASSIC_RUN_FLAGS)[0]).vit_fourier_scale == 2.5


def _pre_tanh_std(gen: VitSirenGenerator, x: torch.Tensor) -> float:
    with torch.no_grad():
        return float(torch.atanh(gen(x).clamp(-0.999999, 0.999999)).std())


def test_linear_output_init_starts_away_from_grey_and_loads_the_same_weights():
    """SIREN's 1/omega scale on the last (linear) layer starts the outputs within a few hundredths of
    grey; nn.Linear's scale spreads them over tanh's range. Only the start differs: same keys, and
    loaded weights give the same output."""
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    torch.manual_seed(0)
    siren = VitSirenGenerator(image_size=64, patch_size=8, dim=64, depth=1, heads=2).eval()
    torch.manual_seed(0)
    linear = VitSirenGenerator(image_size=64, patch_size=8, dim=64, depth=1, heads=2, output_init="linear").eval()
    assert _pre_tanh_std(siren, x) < 0.1 < 0.2 < _pre_tanh_std(linear, x)
    linear.load_state_dict(siren.state_dict())   # strict
    with torch.no_grad():
        assert torch.equal(linear(x), siren(x))
    with pytest.raises(ValueError, match="unknown output_init"):
        VitSirenGenerator(image_size=64, patch_size=8, dim=64, depth=1, heads=2, output_init="zeros")


def test_output_init_flag_reaches_the_record():
    gen = make_generator(parse_train_options(BASE + ["--vit_output_init", "linear"]).net, 3, 3)
    assert network_record(gen)["args"]["output_init"] == "linear"
    assert network_record(make_generator(parse_train_options(BASE).net, 3, 3))["args"]["output_init"] == "siren"
