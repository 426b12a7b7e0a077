"""The benchmark CLI (python -m translate.bench) on tiny networks, and its FLOP counting."""
import contextlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from translate.bench.cli import markdown_table, run_config
from translate.bench.measure import PeakMemory, Spec, count_flops

ROOT = Path(__file__).resolve().parents[1]
# One thread: on a busy shared machine, two OpenMP threads of tiny ops mostly wait for each other.
FAST = ["--device", "cpu", "--threads", "1", "--peak_seconds", "0.3", "--json"]
TINY = ["--netG", "resnet_6blocks", "--ngf", "8", "--ndf", "8", "--crop_size", "32", "--iters", "2",
        "--warmup", "0", "--baseline", *FAST]


def run_bench(*argv: str) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-m", "translate.bench", *argv], cwd=ROOT, capture_output=True,
                          text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_train_json_has_every_figure_and_they_are_positive():
    row = run_bench("train", "--model", "cycle_gan", *TINY)
    for key in ("mode", "model", "netG", "netD", "crop_size", "batch_size", "mixed_precision", "device"):
        assert key in row
    assert (row["mode"], row["model"], row["netG"], row["crop_size"], row["device"]) == \
        ("train", "cycle_gan", "resnet_6blocks", 32, "cpu")
    for key in ("images_per_s", "peak_mem_bytes", "flops_per_image", "mfu", "baseline_images_per_s", "speedup"):
        assert isinstance(row[key], (int, float)) and row[key] > 0, key
    # Two resnet_6blocks generators at ngf 8 on 32x32: a step is well above one forward pass.
    assert row["flops_per_image"] > 6 * 2 * 8 * 3 * 49 * 32 * 32
    assert row["conv_dtype"] == "float32"
    text = markdown_table([row], command="python -m translate.bench train ...", notes=[])
    assert "| train | cycle_gan | resnet_6blocks/basic | fp32 | " in text


@pytest.fixture
def one_thread():
    """Tiny ops on a busy two-core machine: one thread does not wait for a descheduled second one."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.slow
def test_inference_row_in_process(one_thread):
    spec = Spec(mode="infer", model="pix2pix", netG="unet_64", ngf=8, ndf=8, crop_size=64, channels_last=True)
    row = run_config(spec, iters=2, warmup=1, baseline=False, peak_seconds=0.2)
    assert row["mode"] == "infer" and row["channels_last"] is True and row["conv_dtype"] == "float32"
    assert row["images_per_s"] > 0 and row["flops_per_image"] > 0 and row["mfu"] > 0
    assert "speedup" not in row


class OneConv:
    """The smallest runner: one convolution, forward (and optionally backward)."""

    def __init__(self, backward: bool):
        torch.manual_seed(0)
        self.conv = torch.nn.Conv2d(3, 8, 3, padding=1)
        self.x = torch.randn(2, 3, 16, 16)
        self.backward = backward

    def eager(self):
        return contextlib.nullcontext()

    def step(self):
        out = self.conv(self.x)
        if self.backward:
            out.sum().backward()


def test_flop_counter_matches_a_conv_layer_counted_by_hand(one_thread):
    # Each output value is a dot product of length C_in*k*k: one multiply and one add per term.
    n, c_in, c_out, k, h, w = 2, 3, 8, 3, 16, 16
    forward = 2 * n * c_out * h * w * c_in * k * k
    assert count_flops(OneConv(backward=False)) == forward == 221184
    # Backward: the weight gradient costs as much as the forward (the input needs no gradient).
    assert count_flops(OneConv(backward=True)) == 2 * forward


def test_peak_memory_sees_an_allocation_inside_the_section():
    memory = PeakMemory(torch.device("cpu"))
    memory.start()
    block = torch.ones(64 * 2**20 // 4)  # 64 MiB, touched
    peak, growth = memory.stop()
    del block
    assert peak > 64 * 2**20
    if growth is not None:
        assert growth >= 60 * 2**20


@pytest.mark.parametrize("memory_format", [torch.contiguous_format, torch.channels_last])
def test_fast_instance_norm_matches_the_stock_layer(memory_format):
    from translate.nets.layers import InstanceNorm2d
    torch.manual_seed(0)
    x = (torch.randn(2, 6, 9, 7) * 3 + 1).contiguous(memory_format=memory_format)
    grads = []
    outputs = []
    for layer in (torch.nn.InstanceNorm2d(6), InstanceNorm2d(6)):
        inp = x.clone().requires_grad_(True)
        out = torch.relu_(layer(inp) * 1.0)
        (out * torch.linspace(-1, 1, out.numel()).view_as(out)).sum().backward()
        outputs.append(out.detach())
        grads.append(inp.grad)
    torch.testing.assert_close(outputs[1], outputs[0], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(grads[1], grads[0], rtol=1e-4, atol=1e-5)


class OneWinogradConv(OneConv):
    """A runner whose trainer's networks hold a WinogradConv2d (counted as a direct conv)."""

    def __init__(self):
        from types import SimpleNamespace
        from translate.nets.cpu_convs import WinogradConv2d
        super().__init__(backward=True)
        self.conv = WinogradConv2d(128, 128, 3)
        self.x = torch.randn(1, 128, 34, 34)
        self.trainer = SimpleNamespace(raw_nets=torch.nn.ModuleDict({"gen": self.conv}))


def test_flop_counter_counts_winograd_layers_as_direct_convolutions(one_thread):
    runner = OneWinogradConv()
    assert type(runner.conv(runner.x).grad_fn).__name__ == "_Winograd3x3Backward"
    forward = 2 * 1 * 128 * 32 * 32 * 128 * 3 * 3     # as counted by hand for OneConv above
    assert count_flops(runner) == 2 * forward          # forward + weight gradient
    assert runner.conv.fast_path                       # the layer's setting comes back
