"""Speed benchmark: images/s, peak memory, FLOPs and MFU of a training step or of inference.

    python -m translate.bench train --model cycle_gan --netG resnet_9blocks --netD basic \\
        --mixed_precision bf16 --channels_last --iters 5 --warmup 2 --baseline --json
    python -m translate.bench infer --model pix2pix --netG unet_256 --baseline
    python -m translate.bench standard --out bench-results/standard.md
    python -m translate.bench train --model pix2pix --netG vit_siren --netD vit --crop_size 128 \
        --train_args "--vit_noise 64 --latent_optimization"

``train`` times the real ``Trainer.train_step`` (G and D updates, every loss,
the image pools) on a fixed in-memory batch; ``infer`` times gen_ab under
``torch.inference_mode``.  ``--train_args`` passes further train.py flags to the configuration
(not to the classic baseline).  ``--baseline`` also runs the same networks the
classic way (fp32, eager, NCHW, stock instance norm, one image per generator
call, a host sync per step, Adam without foreach/fused) in the same process,
timed in alternating blocks with the configuration, and reports the speedup.
Peak memory on a device is everything the process holds there (both runners);
the growth figure is the measured steps' own.  ``standard`` runs the
standard set, each configuration in a fresh process, and writes a markdown table.
"""
from __future__ import annotations

import dataclasses
import datetime
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

from options import OptionsError
from options.commands import bench_parser
from translate import devices
from translate.bench.measure import (AMP_DTYPES, Spec, build_runner, conv_compute_dtype, count_flops,
                                     default_norm, matmul_peak, measure)
from translate.models import TRAINABLE

MODES = ("train", "infer")
# The standard set: (model, netG, netD) at 256x256, batch 1.
STANDARD_NETS = [("cycle_gan", "resnet_9blocks", "basic"), ("pix2pix", "unet_256", "basic")]
STANDARD_PRECISIONS = [("no", False), ("no", True), ("bf16", True)]
# (warmup, iters) per mode.  On the CPU a 256x256 CycleGAN step takes tens of seconds: the
# CPU counts keep the whole set near 10 minutes on two cores; pass --train_iters etc. for more.
STANDARD_COUNTS = {"cpu": {"train": (1, 2), "infer": (1, 3)}, "cuda": {"train": (5, 20), "infer": (5, 50)}}


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
    except OSError:
        pass
    return f"{cpu} ({torch.get_num_threads()} threads, {torch.backends.cpu.get_cpu_capability()})"


def _load_average() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):
        return None


def native_bf16(device: torch.device) -> bool:
    """Whether bf16 convolutions get fast kernels here (oneDNN bf16 on the CPU; Ampere+ on CUDA)."""
    return devices.native_precision(device, "bf16")


def run_config(spec: Spec, *, iters: int, warmup: int, baseline: bool, rounds: int | None = None,
               peak_seconds: float = 3.0) -> dict:
    """Measure one configuration (and its classic baseline); return the result row."""
    if spec.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA device is available here")
    dtype = AMP_DTYPES[spec.mixed_precision]
    device = torch.device(spec.device if spec.device == "cpu" else "cuda")
    # The matmul peak is measured before and after the steps and the best kept:
    # background load only ever lowers it.
    peak = matmul_peak(device, dtype, budget_s=peak_seconds / 2)
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        runners = {}
        # The classic runner first: Accelerate keeps mixed precision in a process-wide
        # state, and the configuration under test must be the one that set it last.
        if baseline:
            runners["baseline"] = build_runner(spec, classic=True, checkpoints_dir=tmp)
        runners["config"] = build_runner(spec, classic=False, checkpoints_dir=tmp)
        if baseline:
            try:
                runners["config"].copy_weights_from(runners["baseline"])
            except RuntimeError:   # a state-dict mismatch: --train_args changed the networks' shapes
                raise SystemExit(f"python -m translate.bench: error: --train_args {spec.train_args!r} change the "
                                 f"networks, so the classic baseline cannot share their weights: leave out "
                                 f"--baseline (or the flags that shape the networks)") from None
        main = runners["config"]
        # The FLOPs are counted over one eager step, which doubles as a warm-up step of
        # that runner (the classic one if present: it is never compiled).
        counted = "baseline" if baseline else "config"
        flops = count_flops(runners[counted])
        warmups = {name: warmup - (name == counted and not (name == "config" and spec.compile))
                   for name in runners}
        compute_dtype = conv_compute_dtype(main)
        if rounds is None:  # alternate step by step on the CPU; on a GPU, blocks of several steps
            rounds = (iters if device.type == "cpu" else min(iters, 5)) if baseline else 1
        timing = measure(runners, images_per_step=spec.batch_size, iters=iters,
                         warmup={name: max(count, 0) for name, count in warmups.items()}, rounds=rounds)
    peak = max(peak, matmul_peak(device, dtype, budget_s=peak_seconds / 2))
    t = timing["config"]
    row = {**dataclasses.asdict(spec), "device": device.type, "device_name": device_name(device),
           "torch": torch.__version__, "iters": iters, "warmup": warmup, "threads": torch.get_num_threads(),
           "load_avg_1min": _load_average(),
           "images_per_s": t.images_per_s, "step_s_median": t.step_s_median,
           "peak_mem_bytes": t.peak_mem_bytes, "peak_mem_growth_bytes": t.peak_mem_growth_bytes,
           "peak_mem_kind": t.peak_mem_kind, "warmup_s": t.warmup_s,
           "flops_per_image": flops / spec.batch_size, "conv_dtype": compute_dtype,
           "native_bf16": native_bf16(device), "peak_flops": peak, "peak_dtype": str(dtype).replace("torch.", ""),
           "achieved_flops": flops / spec.batch_size * t.images_per_s}
    row["mfu"] = row["achieved_flops"] / peak if peak > 0 else None
    if baseline:
        b = timing["baseline"]
        row.update(baseline_images_per_s=b.images_per_s, baseline_step_s_median=b.step_s_median,
                   baseline_peak_mem_bytes=b.peak_mem_bytes, baseline_peak_mem_growth_bytes=b.peak_mem_growth_bytes,
                   speedup=t.images_per_s / b.images_per_s)
    return row


# ---- output ----------------------------------------------------------------------
def _mib(value) -> str:
    return "-" if value is None else f"{value / 2**20:.0f}"


def format_row(row: dict) -> str:
    text = (f"{row['mode']:5s} {row['model']}/{row['netG']}/{row['netD']} {row['crop_size']}px "
            f"batch {row['batch_size']} {row['mixed_precision']}{' channels_last' if row['channels_last'] else ''}"
            f"{' compile' if row['compile'] else ''} on {row['device']}: {row['images_per_s']:.3f} img/s, "
            f"peak {_mib(row['peak_mem_bytes'])} MiB (+{_mib(row['peak_mem_growth_bytes'])} in the measured steps), "
            f"{row['flops_per_image'] / 1e9:.1f} GFLOP/img, mfu {row['mfu']:.3f} "
            f"of {row['peak_flops'] / 1e9:.1f} GFLOP/s {row['peak_dtype']} matmul, convs in {row['conv_dtype']}")
    if row.get("train_args"):
        text += f", train args {row['train_args']!r}"
    if "speedup" in row:
        text += f"; baseline {row['baseline_images_per_s']:.3f} img/s, speedup {row['speedup']:.2f}x"
    return text


TABLE_COLUMNS = ["mode", "model", "netG/netD", "config", "img/s", "baseline img/s", "speedup",
                 "peak MiB (growth)", "baseline peak MiB (growth)", "GFLOP/img", "mfu", "warmup+iters", "load"]


def table_line(row: dict) -> str:
    head = [row["mode"], row["model"], f"{row['netG']}/{row['netD']}", _precision(row)]
    if row.get("skipped"):
        return "| " + " | ".join(head + [f"skipped: {row['skipped']}"] + [""] * 8) + " |"
    cells = head + [
        f"{row['images_per_s']:.3f}", f"{row.get('baseline_images_per_s', float('nan')):.3f}",
        f"{row['speedup']:.2f}x" if "speedup" in row else "-",
        f"{_mib(row['peak_mem_bytes'])} ({_mib(row['peak_mem_growth_bytes'])})",
        f"{_mib(row.get('baseline_peak_mem_bytes'))} ({_mib(row.get('baseline_peak_mem_growth_bytes'))})",
        f"{row['flops_per_image'] / 1e9:.1f}", f"{row['mfu']:.3f}", f"{row['warmup']}+{row['iters']}",
        "-" if row.get("load_avg_1min") is None else f"{row['load_avg_1min']:.1f}"]
    return "| " + " | ".join(cells) + " |"


def _precision(row: dict) -> str:
    text = {"no": "fp32"}.get(row["mixed_precision"], row["mixed_precision"])
    return text + (" channels_last" if row["channels_last"] else "") + (" compile" if row["compile"] else "")


def markdown_table(rows: list[dict], *, command: str, notes: list[str]) -> str:
    first = next((r for r in rows if not r.get("skipped")), rows[0] if rows else {})
    lines = [
        "# Benchmark: standard set",
        "",
        f"- device: {first.get('device_name', '?')} ({first.get('device', '?')})",
        f"- torch {torch.__version__}, Python {platform.python_version()}",
        f"- date: {datetime.datetime.now().astimezone().isoformat(timespec='seconds')}",
        f"- command: `{command}`",
        "- img/s: a full training step (G and D updates, every loss, the image pools) or one gen_ab",
        "  forward (inference mode, eval mode), batch 1, 256x256, images already in memory.",
        "- baseline: the same networks run the classic way in the same process, timed in alternating",
        "  blocks with the configuration: fp32, eager, NCHW, stock nn.InstanceNorm2d, one image per",
        "  generator call, `.item()` of every loss each step, Adam without foreach/fused; inference",
        "  under no_grad with each result copied to the host.",
        "- peak MiB: CUDA max allocated, or the CPU process's peak RSS (heap trimmed, high-water mark",
        "  reset) over the first measured step(s); (growth): that peak minus the memory in use before.",
        "- mfu: FLOPs of convolutions and matmuls (torch.utils.flop_counter, forward and backward) x",
        "  img/s, over the best dense matmul FLOP/s measured in the same dtype on the same device in",
        "  the same run.  load: the machine's 1-minute load average after the row (a shared machine",
        "  adds noise; compare the speedup column, measured within one process).",
        "",
    ] + [f"- {note}" for note in notes] + ([""] if notes else []) + [
        "| " + " | ".join(TABLE_COLUMNS) + " |",
        "|" + "---|" * len(TABLE_COLUMNS),
    ] + [table_line(r) for r in rows]
    return "\n".join(lines) + "\n"


# ---- the standard set ------------------------------------------------------------
def standard_specs(device: str) -> list[Spec]:
    specs = []
    for mode in MODES:
        for model, netG, netD in STANDARD_NETS:
            for precision, channels_last in STANDARD_PRECISIONS:
                specs.append(Spec(mode=mode, model=model, netG=netG, netD=netD, crop_size=256, batch_size=1,
                                  mixed_precision=precision, channels_last=channels_last, device=device))
    return specs


def spec_argv(spec: Spec) -> list[str]:
    argv = [spec.mode, "--model", spec.model, "--netG", spec.netG, "--netD", spec.netD,
            "--crop_size", str(spec.crop_size), "--batch_size", str(spec.batch_size),
            "--mixed_precision", spec.mixed_precision, "--device", spec.device,
            "--ngf", str(spec.ngf), "--ndf", str(spec.ndf), "--seed", str(spec.seed)]
    argv += ["--norm", spec.norm] if spec.norm else []
    argv += ["--channels_last"] if spec.channels_last else []
    argv += ["--compile"] if spec.compile else []
    argv += ["--train_args", spec.train_args] if spec.train_args else []
    return argv


def run_standard(args) -> int:
    device = torch.device(args.device)
    slow_bf16 = not native_bf16(device) and not args.include_slow
    rows, notes = [], []
    if slow_bf16:
        notes.append(
            "bf16: this device has no native bf16 convolutions (oneDNN reports no bf16 support: no "
            "AVX512-BF16/AMX), so bf16 runs far slower than fp32 here. bf16 training rows are skipped "
            "and bf16 inference runs fewer iterations (`--include_slow` runs them in full). The mfu of "
            "bf16 rows is relative to the bf16 matmul fallback, which is slower still.")
    counts = STANDARD_COUNTS[device.type]
    for spec in standard_specs(args.device):
        iters = getattr(args, f"{spec.mode}_iters") or counts[spec.mode][1]
        warmup = getattr(args, f"{spec.mode}_warmup")
        warmup = counts[spec.mode][0] if warmup is None else warmup
        if spec.mixed_precision == "bf16" and slow_bf16:
            if spec.mode == "train":
                rows.append({**dataclasses.asdict(spec), "skipped": "no native bf16 on this device"})
                continue
            iters, warmup = min(iters, 2), min(warmup, 1)
        cmd = [sys.executable, "-m", "translate.bench"] + spec_argv(spec) + [
            "--iters", str(iters), "--warmup", str(warmup), "--baseline", "--json"]
        cmd += ["--threads", str(args.threads)] if args.threads else []
        print("$", shlex.join(cmd[1:]), flush=True)
        done = subprocess.run(cmd, stdout=subprocess.PIPE, text=True)
        if done.returncode != 0:
            rows.append({**dataclasses.asdict(spec), "skipped": f"failed (exit {done.returncode})"})
            continue
        row = json.loads(done.stdout.strip().splitlines()[-1])
        print(format_row(row), flush=True)
        rows.append(row)
    command = "python -m translate.bench " + shlex.join(sys.argv[1:])
    text = markdown_table(rows, command=command, notes=notes)
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text)
        out.with_suffix(".jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        print(f"wrote {out} and {out.with_suffix('.jsonl')}")
    print(text)
    return 0


# ---- command line ----------------------------------------------------------------
def build_parser():
    norms = ", ".join(f"{model} {default_norm(model)}" for model in TRAINABLE)
    return bench_parser(__doc__.split("\n")[0], modes=MODES, models=sorted(TRAINABLE), precisions=AMP_DTYPES,
                        default_device=devices.default_device(), norm_help=f"default: the model's ({norms})")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.command == "standard":
        return run_standard(args)
    spec = Spec(mode=args.command, model=args.model, netG=args.netG, netD=args.netD, norm=args.norm,
                ngf=args.ngf, ndf=args.ndf, crop_size=args.crop_size, batch_size=args.batch_size,
                mixed_precision=args.mixed_precision, channels_last=args.channels_last,
                compile=args.compile, device=args.device, seed=args.seed, train_args=args.train_args)
    try:
        row = run_config(spec, iters=args.iters, warmup=args.warmup, baseline=args.baseline, rounds=args.rounds,
                         peak_seconds=args.peak_seconds)
    except OptionsError as err:
        raise SystemExit(f"python -m translate.bench: error: {err}") from None
    print(json.dumps(row) if args.json else format_row(row), flush=True)
    return 0

