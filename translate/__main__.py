"""``python -m translate DIR --name RUN --output OUTDIR``: translate a folder tree of images.

The run's saved config rebuilds its networks, so no network flag is needed.
See translate/inference/folder.py for the pipeline and translate/inference/tiling.py for
how images of any size (and huge ones, with --tile) go through the generator.
``--benchmark`` times the same folder with a naive loop and with the pipeline.
``--int8`` runs an int8 copy of the generator in ONNX Runtime (translate/inference/int8.py).
"""
from __future__ import annotations

from translate import stop_signals

if __name__ == "__main__":
    stop_signals.exit_during_imports()

import signal
import sys
from pathlib import Path

from PIL import Image

from translate import devices
from translate._checkout import import_from_checkout
from translate.checkpoint import CheckpointError
from translate.inference.loading import load_run_generator
from translate.files import check_writable_folder
from translate.inference.tiling import Runner
from translate.inference.folder import (PREPROCESS, SAVE_FORMATS, FolderError, FolderOptions, Summary,
                                        translate_folder)
from translate.inference.folder_benchmark import benchmark
from translate.inference.int8 import int8_generator

import_from_checkout("options")
from options.commands import translate_parser  # noqa: E402
from options.ranges import FlagParser  # noqa: E402


def format_summary(summary: Summary, opts: FolderOptions) -> str:
    rate = summary.translated / summary.seconds if summary.seconds > 0 else 0.0
    lines = [f"translated {summary.translated}, skipped {len(summary.skipped)}, failed "
             f"{len(summary.failed)} in {summary.seconds:.1f} s ({rate:.2f} images/s) -> {opts.output_dir}"]
    lines += [f"  skipped {p}: {r}" for p, r in summary.skipped if r != "output exists"]
    shown = summary.failed[:10]
    lines += [f"  failed {p}: {r}" for p, r in shown]
    if len(summary.failed) > len(shown):
        lines.append(f"  ... and {len(summary.failed) - len(shown)} more")
    if summary.failed:
        lines.append(f"the full list is in {Path(opts.output_dir) / 'failed.txt'}")
    if summary.interrupted is not None:
        lines.append(f"stopped by {signal.Signals(summary.interrupted).name}: {summary.left} image(s) not "
                     f"translated yet. Run the same command with --skip_existing to translate the rest.")
    return "\n".join(lines)


def build_parser() -> FlagParser:
    return translate_parser(SAVE_FORMATS, PREPROCESS)


def parse_args(argv: list[str] | None = None):
    """The flags, each checked against its range: a bad value exits 2 with a one-line message.

    --tile against the generator's multiple and --tile_overlap against --tile are checked
    (tiling.check_tiling) once the run is loaded, before any image is read.
    """
    return build_parser().parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        check_writable_folder(args.output, "--output")   # before loading or translating anything
        if args.max_megapixels:  # set before the workers fork, so they inherit it
            Image.MAX_IMAGE_PIXELS = int(args.max_megapixels * 1e6)
        run = load_run_generator(args.checkpoints_dir, args.name, args.epoch, args.direction)
        opts = FolderOptions(
            input_dir=args.input_dir, output_dir=args.output, save_format=args.save_format,
            quality=args.quality, batch_size=args.batch_size, num_workers=args.num_workers,
            num_writers=args.num_writers, preprocess=args.preprocess, load_size=args.load_size,
            skip_existing=args.skip_existing, html=args.html, progress=not args.no_progress)
        compute = dict(device=devices.pick_device(args.gpu_ids), mixed_precision=args.mixed_precision,
                       channels_last=args.channels_last, compile=args.compile, tile=args.tile,
                       tile_overlap=args.tile_overlap)
        print(f"translating with {run.description}", file=sys.stderr)
        devices.warn_if_emulated(compute["device"], args.mixed_precision)
        quantized = None
        if args.int8:   # ONNX Runtime on the CPU: the PyTorch compute flags do not apply to it
            quantized = int8_generator(run.module, run_dir=Path(args.checkpoints_dir) / args.name, epoch=args.epoch,
                                       direction=run.direction, in_channels=run.in_channels,
                                       calibration_dir=args.calibration_dir or args.input_dir,
                                       calibration=args.calibration, preprocess=args.preprocess,
                                       load_size=args.load_size, say=lambda m: print(m, file=sys.stderr))
            quantized = None if quantized is run.module else quantized   # None: no int8 path, float
        if args.benchmark:
            result = benchmark(run.module, opts, run.in_channels, int8=quantized, **compute)
            runs = " and ".join(f"{r:.3f}" for r in result["naive_runs"])
            print(f"naive loop: {result['naive_images_per_s']:.3f} images/s ({runs}); pipeline: "
                  f"{result['fast_images_per_s']:.3f} images/s; speed-up {result['speedup']:.2f}x "
                  f"({result['images']} images, {result['device']}, {result['torch_threads']} torch threads)")
            if "int8_images_per_s" in result:
                runs = " and ".join(f"{r:.3f}" for r in result["fast_runs"])
                print(f"int8 pipeline: {result['int8_images_per_s']:.3f} images/s against fp32 pipeline "
                      f"{result['fast_images_per_s']:.3f} ({runs}): {result['int8_speedup']:.2f}x; "
                      f"int8 vs fp32 outputs {result['int8_psnr_db']:.1f} dB PSNR "
                      f"(mean of {result['int8_psnr_images']} images)")
            return 1 if result["failed"] else 0
        if quantized is not None:
            compute = dict(device="cpu", tile=args.tile, tile_overlap=args.tile_overlap)
        summary = translate_folder(Runner(quantized or run.module, **compute), opts, run.in_channels)
    except (CheckpointError, FolderError, ValueError) as err:
        print(f"translate: error: {err}", file=sys.stderr)
        return 2
    print(format_summary(summary, opts))
    if summary.interrupted is not None:   # translate_folder() stopped between batches
        return stop_signals.exit_code(summary.interrupted)
    return 1 if summary.failed else 0


def cli() -> int:
    """The `translate` command: main(), where a signal before the folder is reached (loading
    the run) or after it exits 130 / 143 quietly; during it translate_folder() reports."""
    return stop_signals.script_main(main, "translate", "no half-written image is left; "
                                                       "run again with --skip_existing to go on")


if __name__ == "__main__":
    sys.exit(cli())
