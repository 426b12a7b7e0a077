"""Does each CPU training path of translate/nets/cpu_convs.py pay on this machine?

For the layer shapes of resnet_9blocks and unet_256 at 256x256, times forward + backward of the
stock layer and of its fast path alternately (median of --rounds), and reports the error of both
against a float64 reference.  The training step itself is measured by ``python -m translate.bench``.

    python scripts/cpu_convs_bench.py [--threads 2] [--rounds 9]
"""
from __future__ import annotations

import copy
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from translate.devices import keep_freed_heap  # noqa: E402
from translate.nets.cpu_convs import SmallConvTranspose2d, WinogradConv2d, set_fast_convs  # noqa: E402

# (label, layer, input shape): the resnet blocks' conv, and the U-Net's up-convs around the threshold.
CASES = [
    ("resnet block 3x3 conv, 256 ch, 64x64", lambda: WinogradConv2d(256, 256, 3), (1, 256, 66, 66)),
    ("resnet block 3x3 conv, 256 ch, 64x64, batch 2", lambda: WinogradConv2d(256, 256, 3), (2, 256, 66, 66)),
    ("unet up-conv 512->512 at 1x1", lambda: SmallConvTranspose2d(512, 512, 4, 2, 1), (1, 512, 1, 1)),
    ("unet up-conv 1024->512 at 2x2", lambda: SmallConvTranspose2d(1024, 512, 4, 2, 1), (1, 1024, 2, 2)),
    ("unet up-conv 1024->512 at 4x4", lambda: SmallConvTranspose2d(1024, 512, 4, 2, 1), (1, 1024, 4, 4)),
    ("unet up-conv 1024->512 at 8x8", lambda: SmallConvTranspose2d(1024, 512, 4, 2, 1), (1, 1024, 8, 8)),
]


def fwd_bwd(layer: torch.nn.Module, x: torch.Tensor, grad: torch.Tensor) -> list[torch.Tensor]:
    out = layer(x)
    return [out, *torch.autograd.grad(out, (x, layer.weight), grad)]


def relative_error(results: list[torch.Tensor], reference: list[torch.Tensor]) -> float:
    return max(((a.double() - b).abs().max() / b.abs().max()).item() for a, b in zip(results, reference))


def measure(label: str, make, shape, rounds: int) -> str:
    torch.manual_seed(0)
    layer = make()
    x = torch.randn(shape, requires_grad=True)
    grad = torch.randn_like(layer(x))
    reference = fwd_bwd(_double_copy(layer), x.detach().double().requires_grad_(), grad.double())
    errors, times = {}, {"stock": [], "fast": []}
    for name, enabled in (("stock", False), ("fast", True)):
        set_fast_convs(layer, enabled)
        errors[name] = relative_error(fwd_bwd(layer, x, grad), reference)
    for i in range(rounds + 2):          # the first two rounds warm up (allocator, thread pool)
        for name, enabled in (("stock", False), ("fast", True)):
            set_fast_convs(layer, enabled)
            start = time.perf_counter()
            fwd_bwd(layer, x, grad)
            if i >= 2:
                times[name].append(time.perf_counter() - start)
    stock, fast = (statistics.median(times[k]) * 1e3 for k in ("stock", "fast"))
    return (f"| {label} | {stock:.1f} | {fast:.1f} | {stock / fast:.2f}x | "
            f"{errors['stock']:.1e} | {errors['fast']:.1e} |")


def _double_copy(layer: torch.nn.Module) -> torch.nn.Module:
    twin = copy.deepcopy(layer).double()
    set_fast_convs(twin, False)   # the reference: the stock layer in float64
    return twin


def main(argv=None) -> int:
    from options.commands import cpu_convs_bench_parser
    args = cpu_convs_bench_parser(__doc__.splitlines()[0]).parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    keep_freed_heap()   # as train.py does on the CPU: without it, page faults hide much of the gain
    print(f"{torch.get_num_threads()} threads, torch {torch.__version__}, fwd + bwd, median of {args.rounds}\n")
    print("| layer | stock ms | fast path ms | speed-up | stock error vs fp64 | fast error vs fp64 |")
    print("|---|---|---|---|---|---|")
    for label, make, shape in CASES:
        if args.only in label:
            print(measure(label, make, shape, args.rounds), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
