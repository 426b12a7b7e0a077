"""One command that measures the CUDA paths on a GPU and prints one markdown table.

    scripts/gpu_check.sh                      # on one H100/H200: under 8 minutes (--budget_s 450)
    scripts/gpu_check.sh --dry_run            # tiny sizes on the CPU: tests the script (about a minute)

Parts, each in its own process with its own time box (a part that fails or runs out of
time is a FAILED row with its last error line; the others still run; the exit status
is 1 when any part failed):

- tests: ``pytest -m cuda`` (the tests that need a GPU; skipped without one);
- bench: ``python -m translate.bench`` rows, cycle_gan resnet_9blocks/basic and pix2pix
  unet_256/basic at 256x256, batch 1 and 8, training and inference, fp32 eager and
  bf16 + channels_last + torch.compile, each with the classic way (``--baseline``) timed
  in the same process, and peak memory.  Fused Adam needs no flag: the Trainer takes
  the fused kernel wherever torch has one (every CUDA device), so both configurations
  use it and only the classic baseline turns it off;
- l1: scripts/check_mixed_precision.py, pix2pix unet_128 on facades, fp32 and bf16 for
  ``--l1_iters`` (200) iterations from the same seed; the val L1 of each final generator.

Nothing here needs the network, and nothing touches the GPU's settings (clocks, MIG,
persistence, resets): the parts only run PyTorch.
"""
from __future__ import annotations

import contextlib
import io
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from options.commands import gpu_check_parser  # noqa: E402

PARTS = ("tests", "bench", "l1")
COLUMNS = ["part", "configuration", "status", "result", "classic way", "speedup", "peak MiB (growth)",
           "classic peak MiB (growth)", "s"]
# (model, netG, netD, crop) on a GPU; --dry_run swaps unet_256 (sides of 256 only) for unet_64.
GPU_NETS = [("cycle_gan", "resnet_9blocks", "basic", 256), ("pix2pix", "unet_256", "basic", 256)]
DRY_NETS = [("cycle_gan", "resnet_9blocks", "basic", 32), ("pix2pix", "unet_64", "basic", 64)]
GPU_BATCHES, DRY_BATCHES = (1, 8), (1, 2)
# (warmup, iters) per mode: enough steps for a stable figure on a GPU, one on the CPU.
GPU_COUNTS, DRY_COUNTS = {"train": (3, 10), "infer": (3, 20)}, {"train": (0, 1), "infer": (0, 1)}
EAGER = ("fp32 eager", ["--mixed_precision", "no"])
FAST = ("bf16 channels_last compile", ["--mixed_precision", "bf16", "--channels_last", "--compile"])
# On the CPU inductor compiles C++ for minutes: the dry run checks the rest of the fast configuration.
DRY_FAST = ("bf16 channels_last", ["--mixed_precision", "bf16", "--channels_last"])


NOTES = """\
- bench: img/s of a full training step (G and D updates, every loss, the image pools) or of one
  generator forward, images already in memory; classic way: the same networks the classic way
  (fp32, eager, NCHW, stock instance norm, one image per generator call, a host sync per step,
  Adam without foreach/fused) timed in alternating blocks in the same process; speedup = img/s over
  the classic way's.  Fused Adam is on in both configurations (the Trainer's choice on CUDA).
- peak MiB: CUDA max allocated over the first measured block, everything the process holds
  (both runners); (growth): over what was allocated before.  On the CPU: peak RSS.
- l1: val L1 of the final generator (fp32 eval) in [-1, 1] units; logged l1: mean of the training
  term over the last 50 iterations; bf16 is FAILED when its val L1 is over 5% from fp32's.
- s: wall seconds of the part (bench: of the row's process, the compilation included; the dry
  run's rows share one process and show its mean).
"""


def log(message: str) -> None:
    print(f"[gpu_check] {message}", file=sys.stderr, flush=True)


class Clock:
    """The total budget: each part gets its own box, cut to what is left."""

    def __init__(self, budget_s: float):
        self.start, self.budget_s = time.monotonic(), budget_s

    def elapsed(self) -> float:
        return time.monotonic() - self.start

    def box(self, seconds: float) -> float:
        return min(seconds, self.budget_s - self.elapsed())


def last_error_line(text: str) -> str:
    """The line that says what went wrong: the last line naming an error, else the last line."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    found = next((line for line in reversed(lines)
                  if re.search(r"error|exception|failed|not found|no such|refused|timed out", line, re.I)),
                 lines[-1] if lines else "no output")
    return found if len(found) <= 300 else found[:297] + "..."


def run_part(cmd: list[str], *, timeout: float, log_file: Path, env: dict | None = None) -> tuple[int | None, str]:
    """Run ``cmd`` in its own process group; (exit status or None on timeout, stdout).  stderr goes to the log."""
    if timeout <= 1:
        return None, ""
    with open(log_file, "w") as err:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=err, text=True,
                                env={**os.environ, **(env or {})}, start_new_session=True)
        try:
            out, _ = proc.communicate(timeout=timeout)
            return proc.returncode, out
        except subprocess.TimeoutExpired:
            return None, _stop(proc)
        except BaseException:  # Ctrl-C or SIGTERM of this script: its own session would outlive it
            _stop(proc)
            raise


def _stop(proc: subprocess.Popen) -> str:
    """End the part's whole process group (pytest's and the data loaders' children too); its stdout."""
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        out, _ = proc.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
    return out or ""


def failure(log_file: Path, code: int | None, timeout: float, stdout: str = "") -> str:
    if timeout <= 1:
        return "FAILED: not started, the total budget (--budget_s) is spent"
    if code is None:
        return f"FAILED: timed out after {timeout:.0f} s"
    text = (log_file.read_text(errors="replace") if log_file.exists() else "") + "\n" + stdout
    return f"FAILED (exit {code}): {last_error_line(text)}"


def row(part: str, configuration: str, status: str, result: str = "-", seconds: float | None = None,
        **cells: str) -> dict:
    return {"part": part, "configuration": configuration, "status": status, "result": result,
            "classic way": cells.get("classic", "-"), "speedup": cells.get("speedup", "-"),
            "peak MiB (growth)": cells.get("peak", "-"), "classic peak MiB (growth)": cells.get("classic_peak", "-"),
            "s": "-" if seconds is None else f"{seconds:.0f}", "device": cells.get("device")}


def _dry_env(args) -> dict | None:
    # Tiny ops on a shared CPU: one thread does not wait on descheduled others.
    return {"OMP_NUM_THREADS": "1"} if args.dry_run else None


# ---- tests ------------------------------------------------------------------------
def tests_part(args, clock: Clock, work: Path) -> list[dict]:
    junit, log_file = work / "cuda_tests.xml", work / "cuda_tests.log"
    timeout = clock.box(args.tests_timeout)
    start = time.monotonic()
    # Only the files that mark tests cuda: collecting the whole suite costs seconds for nothing.
    files = sorted(str(f.relative_to(ROOT)) for f in (ROOT / "tests").glob("test_*.py")
                   if "mark.cuda" in f.read_text(encoding="utf-8"))
    code, out = run_part([sys.executable, "-m", "pytest", "-m", "cuda", "-q", "-p", "no:cacheprovider",
                          f"--junitxml={junit}", *(files or ["tests"])], timeout=timeout, log_file=log_file)
    seconds = time.monotonic() - start
    (work / "cuda_tests.out").write_text(out)
    if code != 0:
        return [row("tests", "pytest -m cuda", failure(log_file, code, timeout, out), _test_counts(junit), seconds)]
    return [row("tests", "pytest -m cuda", "ok", _test_counts(junit), seconds)]


def _test_counts(junit: Path) -> str:
    if not junit.exists():
        return "-"
    suite = re.search(r"<testsuite [^>]*>", junit.read_text())
    attrs = dict(re.findall(r'(\w+)="([^"]*)"', suite.group(0))) if suite else {}
    total, failed = int(attrs.get("tests", 0)), int(attrs.get("failures", 0)) + int(attrs.get("errors", 0))
    skipped = int(attrs.get("skipped", 0))
    return f"{total - failed - skipped} passed, {failed} failed, {skipped} skipped"


# ---- bench ------------------------------------------------------------------------
def bench_rows(dry_run: bool) -> list[tuple[str, list[str], bool]]:
    """(label, python -m translate.bench argv, compiled?) for every row, in the table's order."""
    nets, batches = (DRY_NETS, DRY_BATCHES) if dry_run else (GPU_NETS, GPU_BATCHES)
    counts = DRY_COUNTS if dry_run else GPU_COUNTS
    common = (["--device", "cpu", "--ngf", "8", "--ndf", "8", "--threads", "1", "--peak_seconds", "0.05"]
              if dry_run else ["--device", "cuda", "--peak_seconds", "0.5"])
    rows = []
    for mode in ("train", "infer"):
        for model, netG, netD, crop in nets:
            for batch in batches:
                for name, flags in (EAGER, DRY_FAST if dry_run else FAST):
                    warmup, iters = counts[mode]
                    argv = [mode, "--model", model, "--netG", netG, "--netD", netD, "--crop_size", str(crop),
                            "--batch_size", str(batch), *flags, "--warmup", str(warmup), "--iters", str(iters),
                            "--baseline", "--json", *common]
                    label = f"{mode} {model} {netG}/{netD} {crop}px batch {batch}, {name}"
                    rows.append((label, argv, "--compile" in flags))
    return rows


def bench_worker(rows_json: str) -> int:
    """Run benchmark rows in this process (translate.bench's own main); one ``ROW i json`` line each."""
    from translate.bench.cli import main as bench_main
    for index, argv in enumerate(json.loads(rows_json)):
        captured = io.StringIO()
        try:
            with contextlib.redirect_stdout(captured):
                bench_main(argv)
            result = json.loads(captured.getvalue().strip().splitlines()[-1])
        except SystemExit as stop:  # the bench's own error messages (no GPU, bad sizes)
            result = {"error": str(stop.code)}
        except Exception as err:  # noqa: BLE001 - one row's crash must not hide the others
            result = {"error": f"{type(err).__name__}: {err}".splitlines()[0]}
            print(f"row {index}: {result['error']}", file=sys.stderr, flush=True)
        print(f"ROW {index} {json.dumps(result)}", flush=True)
    return 0


def _mib(value) -> str:
    return "-" if value is None else f"{value / 2**20:.0f}"


def bench_row(label: str, result: dict, seconds: float) -> dict:
    config = f"{result['images_per_s']:.3f} img/s"
    return row("bench", label, "ok", config, seconds, device=f"device: {result['device_name']}, torch {result['torch']}",
               classic=f"{result['baseline_images_per_s']:.3f} img/s", speedup=f"{result['speedup']:.2f}x",
               peak=f"{_mib(result['peak_mem_bytes'])} ({_mib(result['peak_mem_growth_bytes'])})",
               classic_peak=f"{_mib(result['baseline_peak_mem_bytes'])} "
                            f"({_mib(result['baseline_peak_mem_growth_bytes'])})")


def bench_part(args, clock: Clock, work: Path) -> list[dict]:
    rows = [r for r in bench_rows(args.dry_run) if args.rows is None or args.rows.search(r[0])]
    if not rows:
        return [row("bench", f"rows matching {args.rows.pattern!r}", "FAILED: no benchmark row matches --rows")]
    # The cheap rows first, so that a budget cut leaves the figures of most rows: eager ones,
    # then compiled inference, then compiled training (the longest compilations).
    order = sorted(range(len(rows)), key=lambda i: (rows[i][2], rows[i][1][0] == "train"))
    # A GPU row gets a fresh process (its own CUDA memory, compile caches and time box); the dry
    # run puts every row in one process, as importing torch and the networks costs seconds per process.
    groups = [order] if args.dry_run else [[i] for i in order]
    out_rows = {}
    for group in groups:
        timeout = clock.box(sum(args.compile_timeout if rows[i][2] else args.eager_timeout for i in group))
        log_file = work / f"bench_{group[0]}.log"
        start = time.monotonic()
        cmd = [sys.executable, str(Path(__file__).resolve()), "--bench_worker",
               json.dumps([rows[i][1] for i in group])]
        code, out = run_part(cmd, timeout=timeout, log_file=log_file, env=_dry_env(args))
        seconds = (time.monotonic() - start) / len(group)
        results = {int(m.group(1)): json.loads(m.group(2)) for m in re.finditer(r"^ROW (\d+) (.*)$", out, re.M)}
        for position, index in enumerate(group):
            label, _argv, _compiled = rows[index]
            result = results.get(position)
            if result is None and code == 0:
                out_rows[index] = row("bench", label, f"FAILED: no result line; see {log_file.name}")
            elif result is None:  # the process died or ran out of time before this row
                out_rows[index] = row("bench", label, failure(log_file, code, timeout, out))
            elif "error" in result:
                out_rows[index] = row("bench", label, f"FAILED: {result['error'][-300:]}", seconds=seconds)
            else:
                out_rows[index] = bench_row(label, result, seconds)
        log(f"bench {len(group)} row(s) from {rows[group[0]][0]}: {time.monotonic() - start:.0f} s")
    return [out_rows[i] for i in range(len(rows))]


# ---- l1 ---------------------------------------------------------------------------
def default_dataroot() -> Path:
    """shared/datasets/facades inside the checkout (the device machine) or beside it (here)."""
    candidates = [ROOT / "shared" / "datasets" / "facades", ROOT.parent / "shared" / "datasets" / "facades"]
    return next((c for c in candidates if c.is_dir()), candidates[0])


def make_facades_like(root: Path) -> Path:
    """A few A|B side-by-side images in the facades layout (train/, val/), for --dry_run."""
    import numpy as np
    from PIL import Image
    rng = np.random.default_rng(0)
    for split, count in (("train", 3), ("val", 2)):
        (root / split).mkdir(parents=True, exist_ok=True)
        for i in range(count):
            pixels = (rng.random((32, 64, 3)) * 255).astype("uint8")
            Image.fromarray(pixels).save(root / split / f"{i + 1}.jpg")
    return root


def l1_part(args, clock: Clock, work: Path) -> list[dict]:
    net = "pix2pix unet_64 64px ngf 8" if args.dry_run else "pix2pix unet_128 128px"
    iters = args.l1_iters or (2 if args.dry_run else 200)
    labels = {p: f"{net}, facades, {iters} it, {name}" for p, name in (("no", "fp32"), ("bf16", "bf16"))}
    if args.dataroot is None and args.dry_run:
        dataroot = make_facades_like(work / "facades")
    else:
        dataroot = Path(args.dataroot) if args.dataroot else default_dataroot()
    missing = [s for s in ("train", "val") if not (dataroot / s).is_dir()]
    if missing:
        why = (f"FAILED: no facades at {dataroot} (it has no {' or '.join(m + '/' for m in missing)} folder); pass "
               f"--dataroot PATH, or fetch it with python -m datasets.download facades")
        return [row("l1", labels[p], why) for p in labels]
    out_json, log_file = work / "mixed_precision.json", work / "mixed_precision.log"
    out_json.unlink(missing_ok=True)  # a reused --workdir: never report an old run
    cmd = [sys.executable, str(ROOT / "scripts" / "check_mixed_precision.py"), "--dataroot", str(dataroot),
           "--workdir", str(work / "mixed_precision"), "--iters", str(iters), "--precisions", "no", "bf16",
           "--device", "cpu" if args.dry_run else "cuda", "--out", str(out_json)]
    if args.dry_run:
        cmd += ["--netG", "unet_64", "--crop_size", "64", "--ngf", "8", "--ndf", "8"]
    timeout = clock.box(args.l1_timeout)
    code, out = run_part(cmd, timeout=timeout, log_file=log_file, env=_dry_env(args))
    if code not in (0, 1) or not out_json.exists():  # 1: ran, but bf16 is outside the tolerance
        return [row("l1", labels[p], failure(log_file, code, timeout, out)) for p in labels]
    report = json.loads(out_json.read_text())
    rows = []
    for precision, label in labels.items():
        r = report["results"][precision]
        result = f"val L1 {r['val_l1']:.4f}, logged l1 {r['logged_l1_last50']:.4f}"
        status = "ok"
        if precision != "no":
            result += f" ({r['val_l1_rel']:+.1%} vs fp32)"
            if abs(r["val_l1_rel"]) > report["tolerance"]:
                status = f"FAILED: val L1 {r['val_l1_rel']:+.1%} vs fp32, outside {report['tolerance']:.0%}"
        rows.append(row("l1", label, status, result, r["train_seconds"]))
    return rows


# ---- the table ---------------------------------------------------------------------
def markdown(rows: list[dict]) -> str:
    def cell(text: str) -> str:
        return str(text).replace("|", "/").replace("\n", " ")
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(cell(r[c]) for c in COLUMNS) + " |" for r in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = gpu_check_parser(__doc__.split("\n")[0], parts=PARTS).parse_args(argv)
    if args.bench_worker is not None:
        return bench_worker(args.bench_worker)
    # SIGTERM unwinds like Ctrl-C, so that run_part ends the running part's process group.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    clock = Clock(args.budget_s)
    with contextlib.ExitStack() as stack:
        work = args.workdir or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="gpu_check-")))
        work.mkdir(parents=True, exist_ok=True)
        rows = []
        for part, run in (("tests", tests_part), ("l1", l1_part), ("bench", bench_part)):
            if part in args.parts:
                log(f"{part} ...")
                rows += run(args, clock, work)
    failed = [r for r in rows if r["status"] != "ok"]
    where = "dry run: tiny sizes on the CPU, not a measurement" if args.dry_run else "on the GPU"
    device = next((r["device"] for r in rows if r.get("device")), "device: no benchmark row ran")
    text = (f"# GPU check ({where})\n\n{device}\n\n{markdown(rows)}\n\n{NOTES}\n"
            f"total: {clock.elapsed():.0f} s of a {args.budget_s:.0f} s budget; "
            f"{len(failed)} of {len(rows)} rows FAILED\n")
    print(text, end="", flush=True)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
