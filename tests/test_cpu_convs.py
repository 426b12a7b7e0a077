"""The CPU training paths of translate/nets/cpu_convs.py (Winograd 3x3 convs, matmul + fold
transposed convs): exact in float64, close in float32, used only where they are meant to be,
and invisible to checkpoints."""
import pytest
import torch
import torch.nn.functional as F

from translate.nets.generators.resnet import ResnetGenerator
from translate.nets.generators.unet import UnetGenerator
from translate.nets.cpu_convs import (SmallConvTranspose2d, WinogradConv2d, conv_transpose2d_by_fold,
                                      set_fast_convs, winograd_conv3x3)


def _inputs(dtype, n=2, c=5, co=4, h=10, w=14, seed=0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, c, h, w, generator=gen, dtype=dtype, requires_grad=True)
    weight = torch.randn(co, c, 3, 3, generator=gen, dtype=dtype, requires_grad=True)
    bias = torch.randn(co, generator=gen, dtype=dtype, requires_grad=True)
    return x, weight, bias


def test_matches_the_direct_convolution_in_float64():
    x, weight, bias = _inputs(torch.float64)
    out = winograd_conv3x3(x, weight, bias)
    ref = F.conv2d(x, weight, bias)
    assert out.shape == ref.shape == (2, 4, 8, 12)
    assert torch.allclose(out, ref, atol=1e-11, rtol=0)
    grad = torch.randn_like(ref)
    mine = torch.autograd.grad(out, (x, weight, bias), grad)
    theirs = torch.autograd.grad(ref, (x, weight, bias), grad)
    for a, b in zip(mine, theirs):
        assert torch.allclose(a, b, atol=1e-10, rtol=0)


def test_gradcheck():
    x, weight, bias = _inputs(torch.float64, n=1, c=2, co=3, h=6, w=10)
    assert torch.autograd.gradcheck(winograd_conv3x3, (x, weight, bias))
    assert torch.autograd.gradcheck(lambda a, b: winograd_conv3x3(a, b), (x, weight))


def test_float32_error_is_of_the_order_of_the_direct_convolutions():
    # The resnet blocks' shape at a 128-px crop (256 channels, 32 x 32), He-initialised weights.
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(1, 256, 34, 34, generator=gen, requires_grad=True)
    weight = (torch.randn(256, 256, 3, 3, generator=gen) * (2 / (9 * 256)) ** 0.5).requires_grad_()
    grad = torch.randn(1, 256, 32, 32, generator=gen)
    x64, w64 = x.detach().double().requires_grad_(), weight.detach().double().requires_grad_()
    ref = F.conv2d(x64, w64)
    ref_grads = torch.autograd.grad(ref, (x64, w64), grad.double())

    def rel_errors(fn):
        out = fn(x, weight)
        grads = torch.autograd.grad(out, (x, weight), grad)
        return [((a.double() - b).abs().max() / b.abs().max()).item()
                for a, b in zip((out, *grads), (ref, *ref_grads))]

    # Not a ratio to the stock convolution's error: that depends on the backend's summation order
    # (2.8e-7 on one machine, about 3e-6 on another), Winograd's on its transforms (measured
    # 0.7-1.3e-5 here).  A wrong transform gives errors of order 1, a lost bit of precision
    # (half-precision products, a dropped correction) of 1e-3.
    direct, winograd = rel_errors(F.conv2d), rel_errors(winograd_conv3x3)
    assert max(direct) < 1e-5, direct
    assert max(winograd) < 3e-5, (direct, winograd)


def test_bad_shapes_raise_with_what_to_change():
    x, weight, bias = _inputs(torch.float32, h=9)
    with pytest.raises(ValueError, match="multiples of 4"):
        winograd_conv3x3(x, weight, bias)
    with pytest.raises(ValueError, match="3x3 weights"):
        winograd_conv3x3(x, torch.zeros(4, 5, 5, 5))


def _grad_fn_name(conv, x):
    return type(conv(x).grad_fn).__name__


def test_the_layer_takes_the_winograd_path_only_where_it_is_meant_to():
    conv = WinogradConv2d(128, 128, 3)
    x = torch.randn(1, 128, 34, 34)                     # 32 x 32 outputs: the smallest Winograd case
    assert _grad_fn_name(conv, x) == "_Winograd3x3Backward"
    # Too few channels or too small outputs (slower there), sides not multiples of 4, no grad
    # (inference), other strides / paddings, autocast, float64: the stock convolution.
    assert _grad_fn_name(WinogradConv2d(64, 64, 3), torch.randn(1, 64, 34, 34)) == "ConvolutionBackward0"
    assert _grad_fn_name(conv, torch.randn(1, 128, 18, 18)) == "ConvolutionBackward0"
    assert _grad_fn_name(conv, torch.randn(1, 128, 35, 35)) == "ConvolutionBackward0"
    with torch.no_grad():
        assert torch.equal(conv(x), F.conv2d(x, conv.weight, conv.bias))
    assert _grad_fn_name(WinogradConv2d(128, 128, 3, padding=1), x) == "ConvolutionBackward0"
    assert _grad_fn_name(WinogradConv2d(128, 128, 3, stride=2), x) == "ConvolutionBackward0"
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert _grad_fn_name(conv, x) == "ConvolutionBackward0"
    assert _grad_fn_name(conv.double(), x.double()) == "ConvolutionBackward0"
    conv.float()
    set_fast_convs(conv, False)
    assert _grad_fn_name(conv, x) == "ConvolutionBackward0"


def test_resnet_generator_state_dict_is_unchanged_and_its_blocks_use_it():
    net = ResnetGenerator(base_channels=4, n_blocks=2)
    keys = set(net.state_dict())
    assert "model.10.conv_block.1.weight" in keys and "model.10.conv_block.5.weight" in keys
    winograd_layers = [m for m in net.modules() if isinstance(m, WinogradConv2d)]
    assert len(winograd_layers) == 4 and all(isinstance(m, torch.nn.Conv2d) for m in winograd_layers)
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    out = net(x)
    with torch.no_grad():
        assert torch.allclose(out, net(x), atol=1e-5)   # training path vs the inference (stock) path
    set_fast_convs(net, False)
    assert not any(m.fast_path for m in winograd_layers)


def test_train_flag_turns_it_off(tmp_path):
    from options import parse_train_options
    from translate.training.trainer import Trainer
    argv = ["--model", "cycle_gan", "--netG", "resnet_6blocks", "--ngf", "4", "--ndf", "4", "--crop_size", "32",
            "--load_size", "32", "--gpu_ids", "-1", "--display_id", "0", "--no_html", "--num_threads", "0",
            "--checkpoints_dir", str(tmp_path), "--name", "w"]
    on = Trainer(parse_train_options(argv))
    assert all(m.fast_path for m in on.raw_nets.modules() if isinstance(m, WinogradConv2d))
    off = Trainer(parse_train_options(argv + ["--stock_convs", "--start_over"]))
    layers = [m for m in off.raw_nets.modules() if isinstance(m, WinogradConv2d)]
    assert layers and not any(m.fast_path for m in layers)


def test_the_benchmarks_classic_runner_uses_direct_convolutions():
    from translate.bench.measure import stock_layers
    net = stock_layers(ResnetGenerator(base_channels=4, n_blocks=2))
    layers = [m for m in net.modules() if isinstance(m, WinogradConv2d)]
    assert layers and not any(m.fast_path for m in layers)


@pytest.mark.parametrize("stride, padding, kernel", [(2, 1, 4), (1, 0, 3), (2, 0, 3), (3, 2, 5)])
def test_transposed_conv_by_fold_matches_the_stock_one_in_float64(stride, padding, kernel):
    gen = torch.Generator().manual_seed(stride + padding)
    x = torch.randn(2, 6, 3, 5, generator=gen, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(6, 4, kernel, kernel, generator=gen, dtype=torch.float64, requires_grad=True)
    bias = torch.randn(4, generator=gen, dtype=torch.float64, requires_grad=True)
    mine = conv_transpose2d_by_fold(x, weight, bias, (stride, stride), (padding, padding))
    ref = F.conv_transpose2d(x, weight, bias, stride=stride, padding=padding)
    assert mine.shape == ref.shape and torch.allclose(mine, ref, atol=1e-12, rtol=0)
    grad = torch.randn_like(ref)
    inputs = (x, weight, bias)
    for a, b in zip(torch.autograd.grad(mine, inputs, grad), torch.autograd.grad(ref, inputs, grad)):
        assert torch.allclose(a, b, atol=1e-11, rtol=0)


def test_the_transposed_layer_takes_its_path_only_at_small_inputs():
    conv = SmallConvTranspose2d(8, 4, 4, stride=2, padding=1)
    small, large = torch.randn(1, 8, 8, 8), torch.randn(1, 8, 16, 16)
    assert type(conv(small).grad_fn).__name__ == "AddBackward0"          # matmul + fold + bias
    assert type(conv(large).grad_fn).__name__ == "ConvolutionBackward0"
    with torch.no_grad():
        assert torch.equal(conv(small), F.conv_transpose2d(small, conv.weight, conv.bias, stride=2, padding=1))
    assert type(SmallConvTranspose2d(8, 4, 4, stride=2, padding=1, output_padding=1)(small).grad_fn).__name__ \
        == "ConvolutionBackward0"
    set_fast_convs(conv, False)
    assert type(conv(small).grad_fn).__name__ == "ConvolutionBackward0"


def test_unet_keeps_its_state_dict_and_trains_the_same_either_way():
    torch.manual_seed(0)
    net = UnetGenerator(num_downs=5, base_channels=4)   # inner levels at 2x2 .. 8x8 for a 32-px input
    assert any(isinstance(m, SmallConvTranspose2d) for m in net.modules())
    assert all(isinstance(m, torch.nn.ConvTranspose2d) for m in net.modules() if isinstance(m, SmallConvTranspose2d))
    x = torch.rand(2, 3, 32, 32) * 2 - 1

    def loss_and_grads():
        net.zero_grad()
        loss = net(x).square().mean()
        loss.backward()
        return loss.detach(), [p.grad.clone() for p in net.parameters()]

    fast = loss_and_grads()
    set_fast_convs(net, False)
    stock = loss_and_grads()
    assert torch.allclose(fast[0], stock[0], rtol=1e-5)
    for a, b in zip(fast[1], stock[1]):
        assert torch.allclose(a, b, rtol=1e-3, atol=1e-6)


def test_the_layer_benchmark_script_reports_both_paths(capsys):
    from tests.script_module import load_script
    bench = load_script("cpu_convs_bench")
    assert bench.main(["--rounds", "1", "--only", "512->512 at 1x1", "--threads", "1"]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| unet")]
    assert len(rows) == 1
    cells = [c.strip() for c in rows[0].strip("|").split("|")]
    stock_ms, fast_ms, speedup = float(cells[1]), float(cells[2]), float(cells[3].rstrip("x"))
    assert stock_ms > 0 and fast_ms > 0 and abs(speedup - stock_ms / fast_ms) < 0.02 * speedup + 0.01
    assert float(cells[4]) < 1e-4 and float(cells[5]) < 1e-4


def _rss_bytes():
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmRSS:"))


@pytest.mark.skipif(not __import__("sys").platform.startswith("linux"), reason="glibc's mallopt")
def test_freed_blocks_stay_in_the_heap_for_reuse():
    from translate.devices import keep_freed_heap
    assert keep_freed_heap()
    block = torch.ones(16 * 2**20 // 4)     # 16 MiB, touched: above glibc's default mmap threshold
    held = _rss_bytes()
    del block
    assert _rss_bytes() > held - 8 * 2**20  # not handed back to the kernel on free
