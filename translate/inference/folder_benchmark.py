"""``python -m translate --benchmark``: the folder pipeline against a naive loop, on the same files."""
from __future__ import annotations

import copy
import dataclasses
import time
from pathlib import Path

import torch

from translate.inference.folder import FolderError, FolderOptions, encode, image_io, plan_jobs, translate_folder
from translate.inference.tiling import Runner, translate_padded


def benchmark(generator: torch.nn.Module, opts: FolderOptions, in_channels: int, *,
              device: str = "cpu", int8: torch.nn.Module | None = None, **runner_options) -> dict:
    """Images/s of a naive loop and of ``translate_folder`` with ``opts``, on the same files.

    ``runner_options`` are tiling.Runner's (mixed_precision, channels_last, compile, tile, ...).

    Naive: one image at a time, decoded, translated in fp32 and saved in line.
    Both get an untimed warm-up pass (one-time kernel set-up, torch.compile).
    Outputs go to OUTDIR/naive and OUTDIR/fast.

    ``int8`` (an int8.OnnxGenerator): its pipeline (OUTDIR/int8) is timed between two fp32
    pipeline runs, and the PSNR of its outputs against the fp32 ones is reported (the mean
    over up to PSNR_IMAGES of the folder's images, in float, before 8-bit encoding).
    """
    jobs, skipped = plan_jobs(opts)
    if not jobs:
        why = f": {len(skipped)} skipped, e.g. {skipped[0][0]}: {skipped[0][1]}" if skipped else ""
        raise FolderError(f"no images below {opts.input_dir} to benchmark{why}")
    out = Path(opts.output_dir)
    naive_net = copy.deepcopy(generator).eval().to(device)
    probe = Runner(naive_net, device=device)
    multiple, min_side = probe.multiple, probe.min_side

    def naive_one(job) -> None:
        x = image_io.to_tensor(image_io.load_image(str(job.source)), in_channels).mul(2).sub(1)
        with torch.inference_mode():
            y = translate_padded(naive_net, x[None].to(device), multiple, min_side)
        encode(y[0].cpu(), out / "naive" / job.target.relative_to(out), opts.quality)

    def naive_rate() -> float:
        start = time.perf_counter()
        for job in jobs:
            naive_one(job)
        return len(jobs) / (time.perf_counter() - start)

    naive_one(jobs[0])
    before = naive_rate()
    fast_opts = dataclasses.replace(opts, output_dir=str(out / "fast"), skip_existing=False, html=False)
    runner = Runner(generator, device=device, **runner_options)
    first = image_io.to_tensor(image_io.load_image(str(jobs[0].source)), in_channels).mul(2).sub(1)
    runner(first[None].expand(opts.batch_size, -1, -1, -1))
    summary = translate_folder(runner, fast_opts, in_channels)
    fast = summary.translated / summary.seconds
    extra = {}
    if int8 is not None:
        extra = _int8_rates(int8, runner, opts, fast_opts, in_channels, first, jobs)
        fast = 2 / (1 / fast + 1 / extra["fast_runs"][1])
        extra["fast_runs"] = (summary.translated / summary.seconds, extra["fast_runs"][1])
        extra["int8_speedup"] = extra["int8_images_per_s"] / fast
    # The naive loop runs before and after the pipeline, so that a shared machine's
    # load drifting during the run shows as a spread instead of skewing the ratio.
    after = naive_rate()
    naive = 2 / (1 / before + 1 / after)  # per-image times averaged
    return {"images": len(jobs), "naive_images_per_s": naive, "naive_runs": (before, after),
            "fast_images_per_s": fast, "speedup": fast / naive, "failed": len(summary.failed),
            "torch_threads": torch.get_num_threads(), "device": device, **extra}


PSNR_IMAGES = 16   # images whose int8 vs fp32 PSNR is averaged (one image can be 1-2 dB off the mean)


def _mean_psnr(runner: Runner, int8_runner: Runner, jobs, in_channels: int) -> tuple[float, int]:
    from translate.inference.int8 import psnr
    values = []
    for job in jobs[:PSNR_IMAGES]:
        x = image_io.to_tensor(image_io.load_image(str(job.source)), in_channels).mul(2).sub(1)[None]
        values.append(psnr(runner(x), int8_runner(x)))
    return sum(values) / len(values), len(values)


def _int8_rates(int8, runner, opts, fast_opts, in_channels, first, jobs) -> dict:
    """The int8 pipeline's images/s, then the fp32 pipeline's again (drift), and the outputs' PSNR."""
    int8_runner = Runner(int8, tile=runner.tile, tile_overlap=runner.tile_overlap)
    int8_runner(first[None].expand(opts.batch_size, -1, -1, -1))   # warm-up
    int8_opts = dataclasses.replace(fast_opts, output_dir=str(Path(opts.output_dir) / "int8"))
    summary = translate_folder(int8_runner, int8_opts, in_channels)
    again = translate_folder(runner, fast_opts, in_channels)
    db, count = _mean_psnr(runner, int8_runner, jobs, in_channels)
    return {"int8_images_per_s": summary.translated / summary.seconds, "int8_psnr_db": db, "int8_psnr_images": count,
            "fast_runs": (None, again.translated / again.seconds), "failed_int8": len(summary.failed)}
