"""The measuring half of ``python -m translate.bench``: runners, timing, memory, FLOPs, peak.

A runner does one unit of work per ``step()``: a full training step through the
real ``Trainer.train_step`` (G and D updates, every loss, the image pools) on a
fixed in-memory batch, or one generator forward in inference mode.  The
*classic* runner of the same networks reproduces how the classic code runs:
fp32, eager, contiguous NCHW, the stock ``nn.InstanceNorm2d`` and convolution layers, one
generator call per image (no batching of the identity call), ``.item()`` of every loss
each step, and Adam without foreach/fused kernels; classic inference runs under
``no_grad`` and copies each result to the host.
"""
from __future__ import annotations

import contextlib
import ctypes
import gc
import re
import shlex
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from options import parse_train_options
from translate import devices
from translate.nets.layers import InstanceNorm2d
from translate.nets.cpu_convs import set_fast_convs, stock_convs_while
from translate.checkpoint import save_checkpoint
from translate.inference.loading import load_generators
from translate.networks import build_networks

AMP_DTYPES = {"no": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass(frozen=True)
class Spec:
    """One benchmark configuration (the CLI flags)."""
    mode: str = "train"               # train | infer
    model: str = "cycle_gan"
    netG: str = "resnet_9blocks"
    netD: str = "basic"
    norm: str | None = None           # None: the model's default (default_norm)
    ngf: int = 64
    ndf: int = 64
    crop_size: int = 256
    batch_size: int = 1
    mixed_precision: str = "no"
    channels_last: bool = False
    compile: bool = False
    device: str = "cpu"
    seed: int = 0
    train_args: str = ""              # extra train.py flags for the configuration (not the classic run)


def default_norm(model: str) -> str:
    """The --norm that train.py gives ``model`` when none is set: the model table's default, else the flag's."""
    from options.flags import build_parser
    return build_parser(True, model).get_default("norm")


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def train_argv(spec: Spec, *, classic: bool, checkpoints_dir: str) -> list[str]:
    """train.py flags for ``spec``; ``classic`` drops every speed option."""
    argv = ["--model", spec.model, "--netG", spec.netG, "--netD", spec.netD,
            "--crop_size", str(spec.crop_size), "--load_size", str(spec.crop_size),
            "--batch_size", str(spec.batch_size), "--num_threads", "0", "--display_id", "0", "--no_html", "--name", "bench",
            "--checkpoints_dir", checkpoints_dir, "--seed", str(spec.seed),
            "--gpu_ids", "0" if spec.device == "cuda" else "-1"]
    if spec.norm:
        argv += ["--norm", spec.norm]
    # Widths only where not the defaults: given, they are errors for networks without them (vit).
    argv += ["--ngf", str(spec.ngf)] if spec.ngf != Spec.ngf else []
    argv += ["--ndf", str(spec.ndf)] if spec.ndf != Spec.ndf else []
    if not classic:
        argv += ["--mixed_precision", spec.mixed_precision]
        argv += ["--channels_last"] if spec.channels_last else []
        argv += ["--compile"] if spec.compile else []
        argv += shlex.split(spec.train_args)   # last: they may override the flags above
    return argv


def make_batch(spec: Spec, in_channels: int, out_channels: int, *, pin: bool) -> dict:
    """A fixed batch in [-1, 1] as the data loader would deliver it (on the host)."""
    gen = torch.Generator().manual_seed(spec.seed)
    size, n = spec.crop_size, spec.batch_size
    a = torch.rand(n, in_channels, size, size, generator=gen) * 2 - 1
    b = torch.rand(n, out_channels, size, size, generator=gen) * 2 - 1
    if pin:
        a, b = a.pin_memory(), b.pin_memory()
    return {"A": a, "B": b, "A_paths": [f"a{i}.png" for i in range(n)],
            "B_paths": [f"b{i}.png" for i in range(n)]}


def _eager(module: torch.nn.Module) -> torch.nn.Module:
    return getattr(module, "_orig_mod", module)


def stock_layers(net: torch.nn.Module) -> torch.nn.Module:
    """Put back the stock torch layers where ours are faster versions (classic runs)."""
    set_fast_convs(net, False)   # the layers of translate/nets/cpu_convs.py then run the stock forward
    for module in list(net.modules()):
        for name, child in list(module.named_children()):
            if isinstance(child, InstanceNorm2d):
                setattr(module, name, torch.nn.InstanceNorm2d(
                    child.num_features, eps=child.eps, momentum=child.momentum, affine=child.affine,
                    track_running_stats=child.track_running_stats))
    return net


class TrainRunner:
    """``step()``: one ``Trainer.train_step`` on a fixed batch."""

    def __init__(self, spec: Spec, *, classic: bool, checkpoints_dir: str):
        from translate.training.trainer import Trainer  # imports accelerate: only when training is measured
        self.spec, self.classic = spec, classic
        self.trainer = Trainer(parse_train_options(train_argv(spec, classic=classic,
                                                              checkpoints_dir=checkpoints_dir)))
        t = self.trainer
        self.device = t.device
        if classic:
            stock_layers(t.raw_nets)
            t.objective.batchable = {name: False for name in t.objective.batchable}
            for opt in (t.opt_g, t.opt_d):
                for group in opt.param_groups:
                    group["foreach"], group["fused"] = False, False
        net = t.cfg.net
        self.batch = make_batch(spec, net.input_nc, net.output_nc, pin=self.device.type == "cuda")

    def step(self) -> None:
        logs, _ = self.trainer.train_step(self.batch)
        if self.classic:  # the classic loop reads every loss back to the host each step
            for value in logs.values():
                value.item()

    def copy_weights_from(self, other: "TrainRunner") -> None:
        self.trainer.raw_nets.load_state_dict(other.trainer.raw_nets.state_dict())

    @contextlib.contextmanager
    def eager(self):
        """Run the step without torch.compile (the FLOP counter sees eager ops only)."""
        nets = self.trainer.objective.nets
        compiled = {name: nets[name] for name in nets if nets[name] is not _eager(nets[name])}
        for name, module in compiled.items():
            nets[name] = _eager(module)
        try:
            yield
        finally:
            for name, module in compiled.items():
                nets[name] = module

    def first_generator(self) -> tuple[torch.nn.Module, contextlib.AbstractContextManager, torch.Tensor]:
        t = self.trainer
        x = t._to_device(self.batch)["A"]
        return t.raw_nets["gen_ab"], t.accelerator.autocast(), x


class InferRunner:
    """``step()``: gen_ab on a fixed batch, as a translation loop runs it."""

    def __init__(self, spec: Spec, *, classic: bool, checkpoints_dir: str):
        self.spec, self.classic = spec, classic
        cfg = parse_train_options(train_argv(spec, classic=classic, checkpoints_dir=checkpoints_dir))
        self.device = torch.device("cuda" if spec.device == "cuda" else "cpu")
        torch.manual_seed(spec.seed)
        net = _saved_and_loaded(cfg, Path(checkpoints_dir) / f"infer_{'classic' if classic else 'config'}")
        net = net.to(self.device).eval()
        if classic:
            stock_layers(net)
        self.batch = make_batch(spec, cfg.net.input_nc, cfg.net.output_nc, pin=self.device.type == "cuda")["A"]
        self.channels_last = spec.channels_last and not classic
        if self.channels_last:
            net = net.to(memory_format=torch.channels_last)
        self.net = net
        self.module = torch.compile(net) if spec.compile and not classic else net
        mp = "no" if classic else spec.mixed_precision
        self.amp = lambda: devices.autocast(self.device, mp)
        self.out = None

    def _input(self) -> torch.Tensor:
        x = self.batch.to(self.device, non_blocking=True)
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    def step(self) -> None:
        if self.classic:  # classic test loop: no_grad, and each result goes back to the host
            with torch.no_grad():
                self.net(self.batch.to(self.device)).cpu()
            return
        with torch.inference_mode(), self.amp():
            self.out = self.module(self._input())

    def copy_weights_from(self, other: "InferRunner") -> None:
        self.net.load_state_dict(other.net.state_dict())

    @contextlib.contextmanager
    def eager(self):
        module, self.module = self.module, self.net
        try:
            yield
        finally:
            self.module = module

    def first_generator(self):
        return self.net, self.amp(), self._input()


def _saved_and_loaded(cfg, run_dir: Path) -> torch.nn.Module:
    """gen_ab as inference gets it: freshly initialised, saved as a checkpoint and loaded back by
    translate/inference/loading.py, the loader of test.py, ``python -m translate`` and export."""
    nets = build_networks(cfg.run.model, cfg.net, with_discriminators=False)
    save_checkpoint(run_dir, "latest", dict(nets.items()), cfg.to_dict())
    return load_generators(run_dir, "latest", model=None, net=None).generators["gen_ab"]


def build_runner(spec: Spec, *, classic: bool, checkpoints_dir: str):
    cls = TrainRunner if spec.mode == "train" else InferRunner
    return cls(spec, classic=classic, checkpoints_dir=checkpoints_dir)


# ---- what the step computes ---------------------------------------------------
def count_flops(runner) -> int:
    """FLOPs of one eager step (convolutions and matmuls, forward and backward).

    Every convolution counts as a direct one, also where a WinogradConv2d does ~4x fewer
    multiplications: the figure is the model's arithmetic, so the share of peak derived from it
    is an effective one (and can pass 1 with Winograd).
    """
    trainer = getattr(runner, "trainer", None)   # inference runners have no Winograd path to undo
    stock = stock_convs_while(trainer.raw_nets) if trainer else contextlib.nullcontext()
    with runner.eager(), stock, FlopCounterMode(display=False) as counter:
        runner.step()
    return int(counter.get_total_flops())


def conv_compute_dtype(runner) -> str:
    """The dtype the generator's first convolution really produces under the runner's autocast."""
    net, amp, x = runner.first_generator()
    conv = next(m for m in net.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d)))
    seen = []
    handle = conv.register_forward_hook(lambda _m, _i, out: seen.append(out.dtype))
    try:
        with torch.inference_mode(), amp:
            conv(x if conv.in_channels == x.shape[1] else torch.zeros(
                x.shape[0], conv.in_channels, 8, 8, device=x.device))
    finally:
        handle.remove()
    return str(seen[0]).replace("torch.", "")


# ---- peak memory ---------------------------------------------------------------
def _proc_status_kib(field: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            match = re.search(rf"^{field}:\s+(\d+) kB", f.read(), re.M)
    except OSError:
        return None
    return int(match.group(1)) if match else None


class PeakMemory:
    """Peak memory of a measured section.

    CUDA: max allocated bytes after ``reset_peak_memory_stats``.  CPU (Linux):
    the process's peak resident set size.  Free heap memory is first handed back
    to the system (``malloc_trim``) and the high-water mark reset to the current
    RSS (``/proc/self/clear_refs``), so the peak and its growth belong to the
    section alone, even after other work in the process.  Without that reset the
    peak is ``ru_maxrss`` over the whole process and no growth is reported.
    """

    def __init__(self, device: torch.device):
        self.device = device
        self.kind = "cuda_max_allocated" if device.type == "cuda" else "rss_peak"
        self.start_bytes = 0
        self.section_reset = True

    def start(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self.start_bytes = torch.cuda.memory_allocated(self.device)
            return
        _release_free_memory()
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")
            self.start_bytes = (_proc_status_kib("VmRSS") or 0) * 1024
        except OSError:
            self.section_reset, self.kind = False, "ru_maxrss_process"

    def stop(self) -> tuple[int, int | None]:
        """(peak bytes, growth over the section's start in bytes, or None)."""
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            peak = torch.cuda.max_memory_allocated(self.device)
            return peak, peak - self.start_bytes
        hwm = _proc_status_kib("VmHWM") if self.section_reset else None
        if hwm is None:
            import resource
            return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, None
        return hwm * 1024, hwm * 1024 - self.start_bytes


def _release_free_memory() -> None:
    """Return freed heap memory to the system, so that RSS growth shows a section's own needs."""
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


# ---- the device's dense matmul peak -------------------------------------------
def matmul_peak(device: torch.device, dtype: torch.dtype, *, budget_s: float = 3.0) -> float:
    """Best FLOP/s of square matmuls of growing size in ``dtype`` (the MFU denominator).

    fp32 on CUDA is measured with TF32 allowed when cuDNN convolutions may use it,
    so the peak matches what the convolutions can reach.
    """
    tf32 = (contextlib.nullcontext() if device.type != "cuda" or dtype != torch.float32
            else _allow_tf32(torch.backends.cudnn.allow_tf32))
    best, n, max_n = 0.0, 256, (8192 if device.type == "cuda" else 2048)
    deadline = time.perf_counter() + budget_s
    gen = torch.Generator(device=device).manual_seed(0)
    with tf32:
        while n <= max_n and time.perf_counter() < deadline:
            a = torch.randn(n, n, device=device, generator=gen).to(dtype)
            b = torch.randn(n, n, device=device, generator=gen).to(dtype)
            a @ b
            sync(device)
            for _ in range(3):
                start = time.perf_counter()
                a @ b
                sync(device)
                elapsed = time.perf_counter() - start
                best = max(best, 2 * n ** 3 / elapsed)
            if elapsed > budget_s / 8:
                break
            n *= 2
    return best


@contextlib.contextmanager
def _allow_tf32(flag: bool):
    old = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = flag
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32 = old


# ---- timing --------------------------------------------------------------------
@dataclass
class Timing:
    images_per_s: float
    step_s_median: float
    peak_mem_bytes: int
    peak_mem_growth_bytes: int | None
    peak_mem_kind: str
    warmup_s: float


def measure(runners: dict, *, images_per_step: int, iters: int, warmup: int | dict[str, int],
            rounds: int) -> dict[str, Timing]:
    """Warm each runner up (``warmup`` steps, or a count per runner), then time them in alternating blocks.

    Alternating blocks (A B, B A, A B ...) expose every runner to the same
    background load, so ratios stay meaningful on a shared, noisy machine.
    Each block ends with a device sync; a runner's images/s is its images over
    the sum of its block times.  Peak memory is measured over each runner's
    first block (on the CPU that block starts from trimmed heap memory, so its
    first step pays page faults that a long run would not).
    """
    warm = {}
    for name, runner in runners.items():
        start = time.perf_counter()
        for _ in range(warmup[name] if isinstance(warmup, dict) else warmup):
            runner.step()
        sync(runner.device)
        warm[name] = time.perf_counter() - start
    rounds = max(1, min(rounds, iters))
    blocks = [iters // rounds + (1 if i < iters % rounds else 0) for i in range(rounds)]
    times = {name: [] for name in runners}
    steps = {name: [] for name in runners}
    memory = {name: PeakMemory(runner.device) for name, runner in runners.items()}
    peaks = {}
    order = list(runners)
    for index, block in enumerate(blocks):
        for name in (order if index % 2 == 0 else order[::-1]):
            runner = runners[name]
            sync(runner.device)
            if index == 0:
                memory[name].start()
            start = time.perf_counter()
            for _ in range(block):
                runner.step()
            sync(runner.device)
            elapsed = time.perf_counter() - start
            if index == 0:
                peaks[name] = memory[name].stop()
            times[name].append(elapsed)
            steps[name].append(elapsed / block)
    return {name: Timing(images_per_s=images_per_step * iters / sum(times[name]),
                         step_s_median=statistics.median(steps[name]),
                         peak_mem_bytes=peaks[name][0], peak_mem_growth_bytes=peaks[name][1],
                         peak_mem_kind=memory[name].kind, warmup_s=warm[name])
            for name in runners}
