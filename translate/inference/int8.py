"""int8 inference on the CPU: post-training static quantization with ONNX Runtime (``--int8``).

The generator is exported to ONNX (any height and width, export.py), then
``onnxruntime.quantization.quantize_static`` rewrites it:

    Conv                 int8 weights, one scale per output channel; uint8 activations
                         (QOperator format: QLinearConv, ONNX Runtime's int8 kernel)
    ConvTranspose        no int8 kernel in ONNX Runtime's CPU provider: where transposed
                         convolutions carry at least DECONV_SHARE of the generator's
                         multiply-adds (the U-Nets: about two thirds), each is first
                         rewritten as s x s ordinary convolutions and a depth-to-space
                         (phase_deconv.py), which then run in int8; elsewhere (the ResNets'
                         two up-sampling layers, 5%) it stays float32
    output convolutions  float32: the convolutions that write the picture (nothing but
                         element-wise steps between them and the output)
    everything else      float32: instance / batch norm, ReLU, reflection padding,
                         skip concatenations, tanh

Why the output convolutions stay float: they map 64 channels to 3 at full resolution, so
int8 gains nothing on them (a 3-row output is a poor shape for the int8 kernels, and
their 64-channel input must be quantized first) while their rounding lands directly in
the picture.  Measured on a trained horse2zebra resnet_9blocks (README): 36.7 dB ->
42.6 dB against float32, and 4% faster.  Why the ResNets keep their transposed
convolutions float: rewritten and quantized, they cost that generator 5 dB for 3% speed;
on the U-Net the rewrite made int8 1.47x faster at 46 dB.

Activation ranges come from running the float model on ``--calibration N`` images
(min / max of each tensor).  The result is cached next to the checkpoint as
``int8_<epoch>_<direction>_<key>.onnx``, the key a hash of the checkpoint file's
SHA-256, the calibration images (paths, sizes, times), the preprocessing, this
recipe's version and the ONNX Runtime version: a second run with the same settings
loads it in a second, a new checkpoint (training went on) makes a new one.

Why ONNX Runtime and not PyTorch's PT2E quantization: PT2E's x86 path lowers to
int8 kernels only through torch.compile (inductor and a C++ compiler on the
user's machine, a minute per model and size); ONNX Runtime ships prebuilt int8
convolutions (MLAS) and the exported .onnx runs anywhere.  Measured: the same speed
(README).

Generators whose arithmetic int8 does not keep (ViT-SIREN: sine activations of
high frequency, attention) are not quantized: they run in float32 with a
one-line message naming the network.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import torch
from torch import nn

from translate import files
from translate.nets.generators import GENERATORS, size_multiple, smallest_side
from translate.nets.generators.resnet import ResnetGenerator
from translate.nets.generators.unet import UnetGenerator
from translate.inference.phase_deconv import with_phase_deconvs

QUANTIZABLE = (ResnetGenerator, UnetGenerator)   # convolution networks: int8 keeps them
CACHE_VERSION = 2                                 # bump when the recipe below changes
QUANTIZED_OPS = ["Conv"]                          # the rest stays float32 (module docstring)
DECONV_SHARE = 0.2                                # rewrite transposed convs from this share of the work on


class Int8Error(ValueError):
    """The int8 model could not be made as asked; the message says what to change."""


def network_name(generator: nn.Module) -> str:
    """The --netG name(s) of ``generator``'s class, for messages."""
    names = [n for n, entry in GENERATORS.items() if getattr(entry, "func", entry) is type(generator)]
    return "/".join(sorted(names)) or type(generator).__name__


def float_reason(generator: nn.Module) -> str | None:
    """Why ``generator`` is not quantized (None: it is)."""
    if isinstance(generator, QUANTIZABLE):
        return None
    return (f"--int8: {network_name(generator)} has no int8 path (its sine and attention layers lose "
            f"too much in int8); translating in float32")


class OnnxGenerator(nn.Module):
    """An ONNX Runtime session that stands in for the generator in tiling.Runner.

    N x C x H x W float32 in, the same out; H and W multiples of the generator's.
    """

    def __init__(self, path: str | Path, *, size_multiple: int, min_side: int, threads: int | None = None):
        super().__init__()
        import onnxruntime
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads or torch.get_num_threads()
        options.inter_op_num_threads = 1
        # Idle threads sleep instead of spinning: the folder pipeline's decoders and writers share
        # the cores, and spinning took their time (unet_256 folder run: see the README).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name
        self.size_multiple, self.min_side, self.path = size_multiple, min_side, Path(path)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        array = np.ascontiguousarray(x.detach().float().cpu().numpy())
        return torch.from_numpy(self.session.run(None, {self.input_name: array})[0])


class _Calibration:
    """onnxruntime's CalibrationDataReader protocol over a list of N x C x H x W arrays."""

    def __init__(self, name: str, batches: list[np.ndarray]):
        self.name, self.batches = name, iter(batches)

    def get_next(self):
        batch = next(self.batches, None)
        return None if batch is None else {self.name: batch}

    def rewind(self):  # not needed for min/max calibration, part of the protocol
        pass


def quantize(generator: nn.Module, calibration: Iterable[torch.Tensor], output: str | Path, *,
             in_channels: int, progress: Callable[[str], None] | None = None) -> Path:
    """Write the int8 ONNX model of ``generator`` to ``output`` (atomically).

    ``calibration``: N x C x H x W tensors in [-1, 1], H and W multiples of the generator's.
    """
    import onnx
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process
    from translate.inference.export import export_generator
    batches = [np.ascontiguousarray(t.float().numpy()) for t in calibration]
    if not batches:
        raise Int8Error("--int8 needs at least one calibration image (--calibration N, --calibration_dir)")
    size = max(smallest_side(generator), 4 * size_multiple(generator))
    if deconv_share(generator, in_channels, size) >= DECONV_SHARE:
        generator = with_phase_deconvs(generator)[0]
    with tempfile.TemporaryDirectory(prefix="int8-") as tmp:
        fp32, prepared = Path(tmp) / "fp32.onnx", Path(tmp) / "prepared.onnx"
        export_generator(generator, fp32, "onnx", in_channels=in_channels, dynamic_size=True, size=size)
        # Shape inference and graph clean-up first, as onnxruntime's quantization guide asks.
        quant_pre_process(str(fp32), str(prepared), skip_symbolic_shape=True)
        if progress:
            progress(f"calibrating on {len(batches)} image(s)")

        def write(tmp_name: str) -> None:
            quantize_static(str(prepared), tmp_name, _Calibration("image", batches),
                            quant_format=QuantFormat.QOperator, per_channel=True,
                            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                            op_types_to_quantize=QUANTIZED_OPS, nodes_to_exclude=output_convs(prepared))
            model = onnx.load(tmp_name)
            pads_in_uint8(model)
            onnx.save(model, tmp_name)
        return files.write_with(output, write)


def pads_in_uint8(model) -> int:
    """Move each reflection Pad that feeds a QuantizeLinear behind it (in place); returns how many.

    Reflecting (or repeating the edge) only copies values, so it commutes with an elementwise
    quantization: quantize-then-pad gives the same bytes as pad-then-quantize, while the pad
    moves a quarter of the bytes and the quantization skips the border.  The quantizer leaves
    these pads in float (it quantizes a Pad only when its input already is); the ResNets' 20
    pads were 8% of their int8 time.
    """
    nodes = list(model.graph.node)
    consumers: dict[str, int] = {}
    for node in nodes:
        for name in node.input:
            consumers[name] = consumers.get(name, 0) + 1
    by_input = {node.input[0]: node for node in nodes if node.op_type == "QuantizeLinear"}
    outputs = {o.name for o in model.graph.output}
    moved = 0
    for pad in [node for node in nodes if node.op_type == "Pad"]:
        mode = next((a.s for a in pad.attribute if a.name == "mode"), b"constant")
        quant = by_input.get(pad.output[0])
        if mode not in (b"reflect", b"edge") or quant is None:
            continue
        if consumers.get(pad.output[0]) != 1 or pad.output[0] in outputs:   # the float value is used elsewhere
            continue
        unpadded = pad.output[0] + "_unpadded_quantized"
        quant.input[0], quant.output[0], pad.input[0], pad.output[0] = (
            pad.input[0], unpadded, unpadded, quant.output[0])
        i, j = nodes.index(pad), nodes.index(quant)
        nodes[i], nodes[j] = quant, pad          # the quantization now runs first
        moved += 1
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    return moved


def deconv_share(generator: nn.Module, in_channels: int, size: int) -> float:
    """The share of ``generator``'s convolution multiply-adds done by transposed convolutions
    (on one size x size input: the share is the same at any size for these networks)."""
    work = {"conv": 0, "deconv": 0}

    def count(module, inputs, output):
        # Each output value of a conv, or each input value of a transposed conv, costs
        # (the other side's channels / groups) x kernel area multiply-adds.
        kernel = module.weight[0].numel()
        if isinstance(module, nn.ConvTranspose2d):
            work["deconv"] += inputs[0].numel() * kernel
        else:
            work["conv"] += output.numel() * kernel
    hooks = [m.register_forward_hook(count) for m in generator.modules()
             if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    try:
        with torch.no_grad():
            was_training = generator.training
            generator.eval()(torch.zeros(1, in_channels, size, size))
            generator.train(was_training)
    finally:
        for hook in hooks:
            hook.remove()
    total = work["conv"] + work["deconv"]
    return work["deconv"] / total if total else 0.0


def output_convs(model_path: str | Path) -> list[str]:
    """The Conv nodes that write the output: those reached from it through non-Conv nodes only."""
    import onnx
    graph = onnx.load(str(model_path)).graph
    producer = {out: node for node in graph.node for out in node.output}
    found, seen, stack = [], set(), [o.name for o in graph.output]
    while stack:
        node = producer.get(stack.pop())
        # Shape nodes only read a tensor's size (the depth-to-space's reshape): not a data path.
        if node is None or node.name in seen or node.op_type == "Shape":
            continue
        seen.add(node.name)
        if node.op_type == "Conv":
            found.append(node.name)
        else:
            stack.extend(node.input)
    return found


def checkpoint_files(run_dir: Path, epoch: str) -> list[Path]:
    """The weight files of checkpoint ``epoch``: ours (weights.safetensors) or the classic .pth files."""
    from translate.checkpoint import find_checkpoint
    ours = find_checkpoint(run_dir, epoch)
    if ours is not None:
        return [ours / "weights.safetensors"]
    return sorted(run_dir.glob(f"{epoch}_net_*.pth"))


def cache_path(run_dir: Path, epoch: str, direction: str, calibration_paths: list[str], settings: dict) -> Path:
    """Where the int8 model for these weights and calibration settings lives."""
    import onnxruntime
    weights = checkpoint_files(run_dir, epoch)
    if not weights:
        raise Int8Error(f"no checkpoint files for epoch {epoch} in {run_dir}")
    images = []
    for path in calibration_paths:
        stat = os.stat(path)
        images.append([os.path.abspath(path), stat.st_size, stat.st_mtime_ns])
    key = {"version": CACHE_VERSION, "onnxruntime": onnxruntime.__version__, "direction": direction,
           "weights": [files.sha256_of(p) for p in weights], "images": images, **settings}
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    return run_dir / f"int8_{epoch}_{direction}_{digest}.onnx"


def remove_stale(cached: Path) -> None:
    """Delete the int8 files of the same epoch and direction made for other weights or settings."""
    prefix = cached.name.rsplit("_", 1)[0] + "_"
    for old in cached.parent.glob(prefix + "*.onnx"):
        if old != cached and len(old.name) == len(cached.name):
            old.unlink(missing_ok=True)


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    """PSNR in dB of two images in [-1, 1] (peak-to-peak 2)."""
    mse = (a.float() - b.float()).pow(2).mean().item()
    return float("inf") if mse == 0 else 10 * float(np.log10(4.0 / mse))


# ---- the --int8 flag of python -m translate and translate.export ---------------------

def calibration_images(folder: str | Path, count: int) -> list[str]:
    """``count`` image files below ``folder``, spread evenly over its sorted list."""
    from translate.inference.folder import image_io
    found = sorted(os.path.join(d, n) for d, _, names in os.walk(folder, followlinks=True)
                   for n in names if image_io.is_image_file(n))
    if not found:
        raise Int8Error(f"no images below {folder} to calibrate --int8 on; give --calibration_dir")
    if len(found) <= count:
        return found
    return [found[i * len(found) // count] for i in range(count)]


def calibration_batches(paths: list[str], generator: nn.Module, in_channels: int, *,
                        preprocess: str = "none", load_size: int = 256) -> list[torch.Tensor]:
    """The calibration images as the folder pipeline feeds them: decoded, preprocessed, padded."""
    from translate.inference.folder import DecodeDataset
    from translate.inference.tiling import pad_to_multiple
    dataset = DecodeDataset(paths, in_channels, preprocess, load_size)
    batches = []
    for i in range(len(dataset)):
        _, image, error = dataset[i]
        if error is None:   # an undecodable file is the folder run's to report, not calibration's
            batches.append(pad_to_multiple(image[None], size_multiple(generator), smallest_side(generator)))
    if not batches:
        raise Int8Error(f"none of the {len(paths)} calibration image(s) decodes; give --calibration_dir")
    return batches


def int8_generator(generator: nn.Module, *, run_dir: str | Path, epoch: str, direction: str, in_channels: int,
                   calibration_dir: str | Path, calibration: int, preprocess: str = "none",
                   load_size: int = 256, say: Callable[[str], None] = print) -> nn.Module:
    """The int8 stand-in for ``generator`` (built or taken from the cache), or ``generator``
    itself where it has no int8 path (``say`` tells why)."""
    reason = float_reason(generator)
    if reason:
        say(reason)
        return generator
    run_dir = Path(run_dir)
    paths = calibration_images(calibration_dir, calibration)
    cached = cache_path(run_dir, epoch, direction, paths, {"calibration": calibration, "preprocess": preprocess,
                                                           "load_size": load_size, "in_channels": in_channels})
    cached_before = cached.exists()
    if cached_before:
        say(f"--int8: using the cached int8 model {cached}")
    else:
        say(f"--int8: quantizing the {type(generator).__name__} (calibration: {len(paths)} image(s) of "
            f"{calibration_dir}); cached as {cached}")
        batches = calibration_batches(paths, generator, in_channels, preprocess=preprocess, load_size=load_size)
        quantize(generator, batches, cached, in_channels=in_channels)
        remove_stale(cached)
    quantized = OnnxGenerator(cached, size_multiple=size_multiple(generator), min_side=smallest_side(generator))
    if not cached_before:   # how much int8 changes the pictures, said once, when it is made
        with torch.no_grad():
            db = psnr(quantized(batches[0]), generator.eval()(batches[0]))
        say(f"--int8: int8 against float32 outputs on {paths[0]}: {db:.1f} dB PSNR")
    return quantized

