"""translate/inference/phase_deconv.py: transposed convolutions as s x s ordinary ones + depth-to-space,
exact in float64, batch norm folded, cases it does not cover left alone; and the int8 recipe that uses it."""
import pytest
import torch
from torch import nn

from translate.inference import int8
from translate.inference.phase_deconv import PhaseConvTranspose2d, can_rewrite, with_phase_deconvs
from translate.nets.generators.resnet import ResnetGenerator
from translate.nets.generators.unet import UnetGenerator

# pix2pix's U-Net, the ResNet generator's up-sampling, a kernel equal to the stride, stride 3.
LAYERS = [dict(kernel_size=4, stride=2, padding=1), dict(kernel_size=3, stride=2, padding=1, output_padding=1),
          dict(kernel_size=2, stride=2), dict(kernel_size=5, stride=3, padding=1)]


@pytest.mark.parametrize("args", LAYERS, ids=lambda a: "k{kernel_size}s{stride}".format(**a))
@pytest.mark.parametrize("size", [(1, 1), (3, 5), (8, 6)])
def test_the_same_function_as_the_transposed_convolution_in_float64(args, size):
    torch.manual_seed(0)
    layer = nn.ConvTranspose2d(5, 7, **args).double()
    x = torch.randn(2, 5, *size, dtype=torch.float64)
    phased = PhaseConvTranspose2d(layer)
    assert len(phased.phase_weights) == args["stride"] ** 2
    # The phases hold the kernel's taps exactly once: no multiplications by zero taps.
    assert sum(w.shape[2] * w.shape[3] for w in phased.phase_weights) == args["kernel_size"] ** 2
    with torch.no_grad():
        assert torch.allclose(phased(x), layer(x), atol=1e-12, rtol=0)


def test_a_following_batch_norm_is_folded_in():
    torch.manual_seed(0)
    block = nn.Sequential(nn.ConvTranspose2d(6, 4, 4, stride=2, padding=1, bias=False), nn.BatchNorm2d(4), nn.ReLU())
    block.train()
    for _ in range(3):   # running statistics away from 0 / 1, an affine part away from 1 / 0
        block(torch.randn(2, 6, 5, 5) * 3 + 1)
    with torch.no_grad():
        block[1].weight.uniform_(0.5, 2)
        block[1].bias.uniform_(-1, 1)
    block.eval()
    rewritten, count, kept = with_phase_deconvs(block)
    assert (count, kept) == (1, 0)
    assert isinstance(rewritten[0], PhaseConvTranspose2d) and isinstance(rewritten[1], nn.Identity)
    x = torch.randn(3, 6, 7, 4)
    with torch.no_grad():
        assert torch.allclose(rewritten(x), block(x), atol=1e-5, rtol=0)
    assert isinstance(block[0], nn.ConvTranspose2d), "the original network was changed"


def test_cases_outside_the_rewrite_are_kept():
    uncovered = [nn.ConvTranspose2d(4, 4, 4, stride=2, padding=1, groups=2),
                 nn.ConvTranspose2d(4, 4, 3, stride=2, padding=1),              # output 2H - 1
                 nn.ConvTranspose2d(4, 4, 3, stride=2, padding=1, output_padding=1, dilation=2),
                 nn.ConvTranspose2d(4, 4, (4, 2), stride=(2, 1), padding=(1, 0))]   # unequal strides
    for layer in uncovered:
        assert not can_rewrite(layer)
        with pytest.raises(ValueError, match="only stride x input"):
            PhaseConvTranspose2d(layer)
    net, count, kept = with_phase_deconvs(nn.Sequential(*uncovered))
    assert (count, kept) == (0, 4)


@pytest.mark.parametrize("make", [lambda: UnetGenerator(base_channels=8, num_downs=5, norm="batch"),
                                  lambda: ResnetGenerator(base_channels=8, n_blocks=2)], ids=["unet", "resnet"])
def test_whole_generators_translate_as_before(make):
    torch.manual_seed(0)
    gen = make()
    gen.train()
    with torch.no_grad():
        gen(torch.rand(2, 3, 64, 64) * 2 - 1)   # batch-norm statistics of their own
    gen.eval()
    rewritten, count, kept = with_phase_deconvs(gen)
    assert count == sum(isinstance(m, nn.ConvTranspose2d) for m in gen.modules()) and kept == 0
    assert not any(isinstance(m, nn.ConvTranspose2d) for m in rewritten.modules())
    x = torch.rand(2, 3, 64, 96) * 2 - 1
    with torch.no_grad():
        assert torch.allclose(rewritten(x), gen(x), atol=2e-5, rtol=0)


def test_deconv_share_picks_the_u_nets_only():
    # ResNets: two up-sampling layers among 20 convolutions; U-Nets: every up-convolution reads
    # the skip concatenation, twice the channels of the way down.
    assert int8.deconv_share(ResnetGenerator(n_blocks=9), 3, 64) < 0.1 < int8.DECONV_SHARE
    assert int8.deconv_share(UnetGenerator(num_downs=6), 3, 64) > 0.6 > int8.DECONV_SHARE


def _nodes(path):
    import onnx
    return list(onnx.load(str(path)).graph.node)


@pytest.mark.parametrize("make,transposed", [
    (lambda: UnetGenerator(base_channels=8, num_downs=5, norm="instance"), 0),
    (lambda: ResnetGenerator(base_channels=8, n_blocks=2), 2)], ids=["unet", "resnet"])
def test_int8_models_keep_the_output_convolutions_float(tmp_path, make, transposed):
    pytest.importorskip("onnxruntime")
    torch.manual_seed(0)
    gen = make().eval()
    images = [torch.rand(1, 3, 32, 32) * 2 - 1 for _ in range(2)]
    path = int8.quantize(gen, images, tmp_path / "q.onnx", in_channels=3)
    ops = [n.op_type for n in _nodes(path)]
    # U-Net: its up-convolutions became int8 convolutions, the outermost one's four phases stay
    # float; ResNet: the two transposed convolutions stay float and so does the last 7x7.
    assert ops.count("ConvTranspose") == transposed
    assert ops.count("Conv") == (4 if transposed == 0 else 1)
    assert ops.count("QLinearConv") > 5
    # ... and the float ones are exactly the convolutions that write the output.
    float_convs = [n.name for n in _nodes(path) if n.op_type == "Conv"]
    assert sorted(int8.output_convs(path)) == sorted(float_convs)
    with torch.no_grad():
        reference = gen(images[1])
    onnx_gen = int8.OnnxGenerator(path, size_multiple=32, min_side=32)
    assert int8.psnr(onnx_gen(images[1]), reference) > 30


def test_reflection_pads_run_in_uint8_with_the_same_result(tmp_path, monkeypatch):
    pytest.importorskip("onnxruntime")
    torch.manual_seed(0)
    gen = ResnetGenerator(base_channels=8, n_blocks=2).eval()
    images = [torch.rand(1, 3, 32, 32) * 2 - 1 for _ in range(2)]
    moved = int8.quantize(gen, images, tmp_path / "moved.onnx", in_channels=3)
    monkeypatch.setattr(int8, "pads_in_uint8", lambda model: 0)
    kept = int8.quantize(gen, images, tmp_path / "kept.onnx", in_channels=3)
    produced_by = {out: n.op_type for n in _nodes(moved) for out in n.output}
    pads = [n for n in _nodes(moved) if n.op_type == "Pad"]
    # 2 blocks x 2 pads + the stem's pad read quantized bytes; the last conv's pad (float conv) does not.
    assert [produced_by.get(p.input[0]) for p in pads].count("QuantizeLinear") == 5 and len(pads) == 6
    kept_producers = {out: n.op_type for n in _nodes(kept) for out in n.output}
    assert "QuantizeLinear" not in [kept_producers.get(p.input[0]) for p in _nodes(kept) if p.op_type == "Pad"]
    x = torch.rand(2, 3, 40, 48) * 2 - 1
    a = int8.OnnxGenerator(moved, size_multiple=4, min_side=8)(x)
    b = int8.OnnxGenerator(kept, size_multiple=4, min_side=8)(x)
    assert torch.equal(a, b)
