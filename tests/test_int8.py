"""--int8: ONNX Runtime static quantization of the generator (translate/inference/int8.py)."""
import re
import warnings
from pathlib import Path

import numpy as np

import pytest
import torch
from PIL import Image

from imaging import random_image
from options import parse_train_options
from translate.__main__ import main
from translate.checkpoint import save_checkpoint
from translate.inference import int8
from translate.inference.export import load_run_generator, main as export_main
from translate.networks import build_networks

pytest.importorskip("onnxruntime")

# Between what the intact quantization of these tiny untrained nets gives (28-36 dB) and what a
# broken one gives (calibrated on a flat grey picture: 11-18 dB).
MIN_PSNR_DB = 24.0


def make_run(ck: Path, name: str, *extra: str, seed: int = 0) -> None:
    """An untrained run with the classic N(0, 0.02) start and instance norm: its outputs vary
    (std ~0.3 in [-1, 1]); under batch norm they would be ~1e-5, a flat picture any quantization matches."""
    torch.manual_seed(seed)
    width = [] if "vit_siren" in extra else ["--ngf", "8"]
    cfg = parse_train_options(["--name", name, "--checkpoints_dir", str(ck), "--model", "pix2pix", *width,
                               "--crop_size", "32", "--load_size", "32", "--display_id", "0",
                               "--gpu_ids", "-1", "--dataroot", str(ck), "--norm", "instance",
                               "--init_type", "normal", "--init_gain", "0.02", *extra])
    nets = build_networks("pix2pix", cfg.net, with_discriminators=False)
    save_checkpoint(ck / name, "latest", dict(nets.items()), cfg.to_dict(), model="pix2pix")


def smooth_image(path: Path, seed: int, size=(40, 32)) -> Path:
    """A photo-like picture: smooth colour gradients plus a little noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size[1], 0:size[0]] / max(size)
    channels = [np.sin(rng.uniform(1, 6) * x + rng.uniform(1, 6) * y + rng.uniform(0, 6)) for _ in range(3)]
    array = (np.stack(channels, -1) * 100 + 128 + rng.normal(0, 8, (size[1], size[0], 3))).clip(0, 255)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array.astype(np.uint8)).save(path)
    return path


@pytest.fixture(scope="module")
def ck(tmp_path_factory) -> Path:
    ck = tmp_path_factory.mktemp("checkpoints")
    make_run(ck, "res", "--netG", "resnet_6blocks")
    return ck


@pytest.fixture
def folder(tmp_path) -> Path:
    for i in range(5):
        smooth_image(tmp_path / "in" / ("sub" if i % 2 else "") / f"{i}.png", seed=i)
    return tmp_path / "in"


def translate(ck, src, out, *extra, name="res") -> int:
    return main([str(src), "--name", name, "--checkpoints_dir", str(ck), "--output", str(out), "--gpu_ids", "-1",
                 "--no_progress", "--num_workers", "0", "--int8", "--calibration", "3", *extra])


def read(path: Path) -> torch.Tensor:
    return torch.from_numpy(np.asarray(Image.open(path), np.float32) / 127.5 - 1)


def folder_psnr(a: Path, b: Path) -> float:
    names = sorted(p.relative_to(a) for p in a.rglob("*.png"))
    return float(np.mean([int8.psnr(read(a / n), read(b / n)) for n in names]))


def cached(ck: Path, name="res") -> list[Path]:
    return sorted((ck / name).glob("int8_*.onnx"))


@pytest.mark.slow   # three quantizations, ~12 s on 2 cores
def test_int8_translates_every_image_close_to_fp32_and_reuses_its_cache(ck, folder, tmp_path, capsys):
    assert translate(ck, folder, tmp_path / "int8") == 0
    err = capsys.readouterr().err
    assert "quantizing the ResnetGenerator" in err and "dB PSNR" in err
    assert main([str(folder), "--name", "res", "--checkpoints_dir", str(ck), "--output", str(tmp_path / "fp32"),
                 "--gpu_ids", "-1", "--no_progress", "--num_workers", "0"]) == 0
    outs = sorted(p.relative_to(tmp_path / "int8").as_posix() for p in (tmp_path / "int8").rglob("*.png"))
    assert outs == ["0.png", "2.png", "4.png", "sub/1.png", "sub/3.png"]
    assert folder_psnr(tmp_path / "int8", tmp_path / "fp32") > MIN_PSNR_DB
    first = cached(ck)
    assert len(first) == 1
    stamp = first[0].stat().st_mtime_ns
    assert translate(ck, folder, tmp_path / "again") == 0
    assert "using the cached int8 model" in capsys.readouterr().err
    assert cached(ck) == first and first[0].stat().st_mtime_ns == stamp
    # Other calibration settings: another file.
    assert translate(ck, folder, tmp_path / "more", "--calibration", "4") == 0
    assert len(cached(ck)) == 1 and cached(ck) != first   # the stale one is removed


@pytest.mark.slow   # three quantizations, ~12 s on 2 cores
def test_a_new_checkpoint_rebuilds_the_int8_model(tmp_path, folder, capsys):
    ck = tmp_path / "ck"
    make_run(ck, "res", "--netG", "resnet_6blocks")
    assert translate(ck, folder, tmp_path / "a") == 0
    before = cached(ck)
    make_run(ck, "res", "--netG", "resnet_6blocks", seed=1)   # training went on: new weights, same name
    capsys.readouterr()
    assert translate(ck, folder, tmp_path / "b") == 0
    assert "quantizing" in capsys.readouterr().err
    assert len(cached(ck)) == 1 and cached(ck) != before


def quantized_psnr(gen, calibration, images) -> float:
    """PSNR of the int8 model of ``gen`` (calibrated on ``calibration``) against fp32 on ``images``."""
    with torch.no_grad():
        reference = [gen(x) for x in images]
    path = Path(int8.tempfile.mkdtemp()) / "q.onnx"
    int8.quantize(gen, calibration, path, in_channels=3)
    onnx_gen = int8.OnnxGenerator(path, size_multiple=4, min_side=8)
    return float(np.mean([int8.psnr(onnx_gen(x), y) for x, y in zip(images, reference)]))


@pytest.mark.slow   # three quantizations, ~12 s on 2 cores
def test_the_psnr_threshold_catches_a_broken_calibration(ck, folder):
    gen = load_run_generator(str(ck), "res").module
    paths = int8.calibration_images(folder, 5)
    images = int8.calibration_batches(paths, gen, 3)
    good = quantized_psnr(gen, images[:3], images[3:])
    # Calibrated on a flat grey picture, the activation ranges are far too narrow: clipped.
    broken = quantized_psnr(gen, [torch.zeros_like(images[0])], images[3:])
    print(f'calibrated {good:.1f} dB, on a grey picture {broken:.1f} dB')
    assert good > MIN_PSNR_DB > broken, (good, broken)


def test_vit_siren_falls_back_to_float_with_a_message(tmp_path, folder, capsys):
    ck = tmp_path / "ck"
    make_run(ck, "vit", "--netG", "vit_siren", "--vit_patch_size", "8", "--vit_dim", "16", "--vit_heads", "2",
             "--vit_depth", "1", "--vit_pixel_skip", "0")
    assert translate(ck, folder, tmp_path / "out", name="vit") == 0
    err = capsys.readouterr().err
    line = [m for m in err.splitlines() if m.startswith("--int8")]
    assert line == ["--int8: vit_siren has no int8 path (its sine and attention layers lose too much in int8); "
                    "translating in float32"]
    assert len(list((tmp_path / "out").rglob("*.png"))) == 5 and not cached(ck, "vit")


@pytest.mark.slow   # an export and a quantization, ~9 s
def test_export_int8_loads_in_onnxruntime_and_matches_fp32(ck, folder, tmp_path, capsys):
    import onnxruntime
    out = tmp_path / "g.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert export_main(["--name", "res", "--checkpoints_dir", str(ck), "--format", "onnx", "--int8",
                            "--calibration_dir", str(folder), "--calibration", "3", "--output", str(out)]) == 0
    assert "PSNR against PyTorch fp32" in capsys.readouterr().out
    session = onnxruntime.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    assert any(n.op_type == "QLinearConv" for n in __import__("onnx").load(str(out)).graph.node)
    gen = load_run_generator(str(ck), "res").module
    x = int8.calibration_batches([str(folder / "0.png")], gen, 3)[0]
    y = torch.from_numpy(session.run(None, {"image": x.numpy()})[0])
    with torch.no_grad():
        assert int8.psnr(y, gen(x)) > MIN_PSNR_DB


@pytest.mark.parametrize("argv, message", [
    (["--calibration", "0"], "argument --calibration: '0' is not an integer in [1, 100000]"),
    (["--calibration", "many"], "argument --calibration: 'many' is not an integer in [1, 100000]"),
])
def test_bad_calibration_values_are_refused_in_one_line(ck, folder, tmp_path, capsys, argv, message):
    with pytest.raises(SystemExit) as stop:
        translate(ck, folder, tmp_path / "out", *argv)
    err = capsys.readouterr().err
    assert stop.value.code == 2 and message in err and err.count("\n") == 1


def test_export_int8_without_a_calibration_folder_says_what_to_give(ck, capsys):
    assert export_main(["--name", "res", "--checkpoints_dir", str(ck), "--format", "onnx", "--int8"]) == 2
    err = capsys.readouterr().err
    assert "--int8 needs --calibration_dir" in err and err.count("\n") == 1


@pytest.mark.slow   # a quantization and four timed passes
def test_benchmark_reports_int8_against_fp32_on_the_same_files(ck, folder, tmp_path, capsys):
    assert translate(ck, folder, tmp_path / "out", "--benchmark", "--batch_size", "2") == 0
    lines = capsys.readouterr().out.splitlines()
    int8_line = [line for line in lines if line.startswith("int8 pipeline:")]
    assert len(int8_line) == 1 and "against fp32 pipeline" in int8_line[0]
    reported = float(re.search(r"outputs ([\d.]+) dB PSNR \(mean of 5 images\)", int8_line[0]).group(1))
    for kind in ("naive", "fast", "int8"):
        assert len(list((tmp_path / "out" / kind).rglob("*.png"))) == 5
    written = folder_psnr(tmp_path / "out" / "int8", tmp_path / "out" / "fast")
    # The report is the mean before 8-bit encoding; the written files' mean is close to it.
    assert written > MIN_PSNR_DB and abs(reported - written) < 1.5, (reported, written)
