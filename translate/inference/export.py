"""Export a run's generator: ``python -m translate.export --name RUN --format onnx|torchscript``.

The file holds the bare generator.  Input: float32 N x C x H x W in [-1, 1]
with H and W multiples of the generator's size multiple (4 for ResNets,
2**num_downs for U-Nets, the patch size for ViT-SIREN); output: N x C' x H x W
in [-1, 1].  The padding that ``python -m translate`` adds for other sizes is
not part of it.  Without ``--dynamic_size`` the height and width are fixed to
``--size`` (default: the run's crop size); with it, any multiple from the
smallest side the generator translates (metadata ``min_size``: 8 for ResNets,
whose reflection padding needs two pixels at 1/4 scale) works.  The batch size
is free in both cases.  Every generator of the table exports both ways.

ONNX goes through torch.export (``torch.onnx.export(dynamo=True)``), the
exporter PyTorch maintains; TorchScript through ``torch.jit.trace``.  After
writing, the file is loaded back and its output compared with PyTorch's (with
``--dynamic_size`` at the smallest size and at a larger, non-square one); a
size the generator cannot take is refused before tracing.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import torch
from torch import nn

from translate import stop_signals
from translate._checkout import import_from_checkout

import_from_checkout("options")
from options.commands import export_parser  # noqa: E402  (needs the checkout on sys.path)
from translate.checkpoint import CheckpointError  # noqa: E402
from translate.files import OutputError, check_writable_file  # noqa: E402
from translate.nets.generators import size_multiple, smallest_side  # noqa: E402
from translate.inference.int8 import Int8Error  # noqa: E402
from translate.inference.loading import RunGenerator, load_run_generator  # noqa: E402,F401  (re-exported)

class ExportError(RuntimeError):
    """The generator could not be exported as asked; the message says what to change."""


class ExportFlagError(ExportError):
    """A flag asks for something this generator cannot take (checked before tracing)."""


def _export_onnx(gen: nn.Module, example: torch.Tensor, path: str, dynamic_size: bool, meta: dict) -> None:
    import onnx
    from torch.export import Dim
    multiple, least = meta["size_multiple"], meta["min_size"] // meta["size_multiple"]
    dims = {0: Dim("batch", min=1)}
    if dynamic_size:  # H and W: any multiple of what the generator needs, from the smallest on
        dims.update({2: multiple * Dim("height_blocks", min=least), 3: multiple * Dim("width_blocks", min=least)})
    program = torch.onnx.export(gen, (example,), dynamo=True, dynamic_shapes=(dims,),
                                input_names=["image"], output_names=["translated"], verbose=False)
    model = program.model_proto  # weights inline: generators are far below ONNX's 2 GB limit
    for key, value in meta.items():
        model.metadata_props.add(key=key, value=str(value))
    onnx.save_model(model, path)


def _run_onnx(path: str, x: torch.Tensor) -> torch.Tensor:
    import onnxruntime
    session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    return torch.from_numpy(session.run(None, {session.get_inputs()[0].name: x.numpy()})[0])


def _example(in_channels: int, size: int, multiple: int, dynamic_size: bool) -> torch.Tensor:
    """The input the exporter traces.  Batch 2: a batch of 1 would be baked in.

    With --dynamic_size, at least two multiples per side and height != width: torch.export
    specializes a dimension that is 1 in the example (a U-Net's bottleneck at one multiple,
    the failure of issue 11), and equal sides could be tied together.
    """
    if not dynamic_size:
        return torch.rand(2, in_channels, size, size) * 2 - 1
    height = max(size, 2 * multiple)
    return torch.rand(2, in_channels, height, height + multiple) * 2 - 1


def _check_inputs(in_channels: int, size: int, multiple: int, smallest: int,
                  dynamic_size: bool) -> list[torch.Tensor]:
    """Inputs the written file must translate as PyTorch does: the promised sizes and batches."""
    if not dynamic_size:
        return [torch.rand(1, in_channels, size, size) * 2 - 1]
    # The smallest size (a U-Net's 1 x 1 bottleneck) and a larger one, wider than high.
    return [torch.rand(1, in_channels, smallest, smallest + multiple) * 2 - 1,
            torch.rand(3, in_channels, size + 2 * multiple, size + multiple) * 2 - 1]


def export_generator(gen: nn.Module, output: str | Path, fmt: str, *, in_channels: int, size: int,
                     dynamic_size: bool = False, meta: dict | None = None) -> float:
    """Write ``gen`` to ``output`` (atomically); return the largest difference from eager PyTorch."""
    gen = gen.eval().cpu()
    multiple = size_multiple(gen)
    if size % multiple:
        raise ExportFlagError(f"--size {size} is not a multiple of {multiple} (what this generator needs)")
    smallest = smallest_side(gen)
    if size < smallest:
        raise ExportFlagError(f"--size {size} is below the smallest input this generator translates "
                              f"({smallest} px a side); use --size {smallest} or more")
    meta = {"size_multiple": multiple, "min_size": smallest, "in_channels": in_channels,
            "value_range": "[-1, 1]", "dynamic_size": dynamic_size, **(meta or {})}
    if fmt not in ("onnx", "torchscript"):
        raise ExportFlagError(f"unknown --format {fmt!r}; use onnx or torchscript")
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = str(output.with_name(f".{output.name}.tmp"))
    example = _example(in_channels, size, multiple, dynamic_size)
    checks = _check_inputs(in_channels, size, multiple, smallest, dynamic_size)
    # Signals wait while torch exports: one landing inside torch.export's lazy imports would
    # leave a half-imported module and surface as an export error instead of a clean stop.
    with stop_signals.deferred("stopping once this export step returns; no file will be kept",
                               "already stopping") as stop:
        return _export_checked(gen, output, tmp, fmt, example, checks, dynamic_size, meta, stop)


def _export_checked(gen, output: Path, tmp: str, fmt: str, example, checks, dynamic_size: bool, meta: dict,
                    stop: stop_signals.StopRequest) -> float:
    try:
        with torch.no_grad():
            if fmt == "onnx":
                _export_onnx(gen, example, tmp, dynamic_size, meta)
                run = lambda x: _run_onnx(tmp, x)  # noqa: E731
            else:
                traced = torch.jit.trace(gen, example, check_trace=False)
                torch.jit.save(traced, tmp, _extra_files={"translate.json": json.dumps(meta)})
                run = torch.jit.load(tmp)
            diff = max((run(x) - gen(x)).abs().max().item() for x in checks)
        if stop.signum:   # asked to stop during the export: keep nothing
            raise stop_signals.Interrupted(stop.signum)
        if dynamic_size and not diff < 1e-3:
            raise ExportError(f"the {fmt} file gives different results at other sizes (max difference "
                              f"{diff:.3g}); this generator does not export with --dynamic_size")
        os.replace(tmp, output)
    except ExportError:
        raise
    except Exception as err:  # torch.export / tracing failures: say what to try
        if stop.signum:
            raise stop_signals.Interrupted(stop.signum) from None
        hint = " Try without --dynamic_size." if dynamic_size else ""
        raise ExportError(f"exporting as {fmt} failed: {type(err).__name__}: {err}.{hint}") from err
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return diff


def build_parser():
    return export_parser(__doc__.split("\n")[0])


def export_int8(args, run) -> tuple[Path, float]:
    """``--int8``: the cached int8 model (int8.py; made first if needed) copied to the output.

    Returns the file and the PSNR of its output against PyTorch's fp32 on a calibration image.
    """
    from translate import files
    from translate.inference import int8
    if args.format != "onnx":
        raise ExportFlagError("--int8 writes ONNX only: use --format onnx")
    if not args.calibration_dir:
        raise ExportFlagError("--int8 needs --calibration_dir: a folder of images like the ones to translate")
    output = Path(args.output or Path(args.checkpoints_dir) / args.name / f"generator_{run.direction}_int8.onnx")
    check_writable_file(output, "--output")
    quantized = int8.int8_generator(run.module, run_dir=Path(args.checkpoints_dir) / args.name, epoch=args.epoch,
                                    direction=run.direction, in_channels=run.in_channels,
                                    calibration_dir=args.calibration_dir, calibration=args.calibration,
                                    say=lambda m: print(m, file=sys.stderr))
    if quantized is run.module:
        raise ExportFlagError(f"{int8.network_name(run.module)} has no int8 path; export it without --int8")
    files.write_bytes(output, quantized.path.read_bytes())
    sample = int8.calibration_batches(int8.calibration_images(args.calibration_dir, 1), run.module,
                                      run.in_channels)[0]
    check = int8.OnnxGenerator(output, size_multiple=quantized.size_multiple, min_side=quantized.min_side)
    with torch.no_grad():
        return output, int8.psnr(check(sample), run.module.eval()(sample))


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.int8:
            if args.output:
                check_writable_file(args.output, "--output")
            run = load_run_generator(args.checkpoints_dir, args.name, args.epoch, args.direction)
            output, db = export_int8(args, run)
            print(f"wrote {output}: int8 {run.description}, input N x {run.in_channels} x H x W in [-1, 1] "
                  f"(H, W multiples of {size_multiple(run.module)}); {db:.1f} dB PSNR against PyTorch fp32")
            return 0
        if args.output:  # before loading: the file must be writable
            check_writable_file(args.output, "--output")
        run = load_run_generator(args.checkpoints_dir, args.name, args.epoch, args.direction)
        size = args.size or run.size
        suffix = ".onnx" if args.format == "onnx" else ".pt"
        output = args.output or Path(args.checkpoints_dir) / args.name / f"generator_{run.direction}{suffix}"
        check_writable_file(output, "--output")
        diff = export_generator(run.module, output, args.format, in_channels=run.in_channels, size=size,
                                dynamic_size=args.dynamic_size,
                                meta={"run": args.name, "epoch": args.epoch, "generator": run.description})
    except (CheckpointError, ExportError, OutputError, Int8Error) as err:
        print(f"translate.inference.export: error: {err}", file=sys.stderr)
        return 2 if isinstance(err, (ExportFlagError, OutputError, Int8Error)) else 1
    multiple = size_multiple(run.module)
    shape = (f"H x W multiples of {multiple}, from {smallest_side(run.module)} px"
             if args.dynamic_size else f"{size} x {size}")
    print(f"wrote {output}: {run.description}, input N x {run.in_channels} x {shape} in [-1, 1]; "
          f"max difference from PyTorch {diff:.2g}")
    return 0

