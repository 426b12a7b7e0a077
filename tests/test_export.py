"""python -m translate.export: the ONNX and TorchScript files give PyTorch's results."""
import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from options import parse_train_options
from translate.checkpoint import save_checkpoint
from translate.inference.export import ExportFlagError, export_generator, load_run_generator, main
from translate.nets.generators import GENERATORS, build_generator, smallest_side
from translate.networks import build_networks


@pytest.fixture(scope="module")
def ck(tmp_path_factory) -> Path:
    """A tiny cycle_gan run (two generators) and a pix2pix run, in train.py's checkpoint format."""
    ck = tmp_path_factory.mktemp("checkpoints")
    for name, model, extra in (("cyc", "cycle_gan", []), ("p2p", "pix2pix", ["--dataroot", str(ck)])):
        cfg = parse_train_options(["--name", name, "--checkpoints_dir", str(ck), "--model", model,
                                   "--netG", "resnet_6blocks", "--ngf", "4", "--crop_size", "32",
                                   "--load_size", "32", "--display_id", "0", "--gpu_ids", "-1", *extra])
        nets = build_networks(model, cfg.net, with_discriminators=False)
        save_checkpoint(ck / name, "latest", dict(nets.items()), cfg.to_dict(), model=model)
    return ck


def export(ck, *argv) -> int:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit's deprecation notices
        return main(["--name", argv[0], "--checkpoints_dir", str(ck), *argv[1:]])


def eager(ck, direction=None):
    return load_run_generator(str(ck), "cyc", direction=direction).module


@pytest.mark.slow
def test_onnx_with_dynamic_size_runs_in_onnxruntime_at_other_sizes(ck, tmp_path, capsys):
    import onnx
    import onnxruntime

    path = tmp_path / "g.onnx"
    assert export(ck, "cyc", "--format", "onnx", "--dynamic_size", "--output", str(path)) == 0
    assert "max difference from PyTorch" in capsys.readouterr().out
    meta = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    assert meta["size_multiple"] == "4" and meta["run"] == "cyc"
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    gen = eager(ck)
    for shape in [(1, 3, 32, 32), (2, 3, 48, 20)]:
        x = torch.rand(*shape) * 2 - 1
        got = session.run(None, {name: x.numpy()})[0]
        with torch.no_grad():
            want = gen(x).numpy()
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, atol=1e-4)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.onnx"]  # no temporary files left


@pytest.mark.parametrize("dynamic", [False, True])
def test_torchscript_matches_pytorch(ck, tmp_path, dynamic):
    path = tmp_path / "g.pt"
    flags = ["--dynamic_size"] if dynamic else []
    assert export(ck, "cyc", "--format", "torchscript", "--direction", "BtoA", "--output", str(path), *flags) == 0
    extra = {"translate.json": ""}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        loaded = torch.jit.load(str(path), _extra_files=extra)
    assert json.loads(extra["translate.json"])["generator"].startswith("gen_ba (BtoA)")
    gen = eager(ck, "BtoA")
    shapes = [(1, 3, 32, 32)] + ([(2, 3, 24, 44)] if dynamic else [])
    for shape in shapes:
        x = torch.rand(*shape) * 2 - 1
        with torch.no_grad():
            torch.testing.assert_close(loaded(x), gen(x), atol=1e-4, rtol=0)


def test_default_output_path_and_errors(ck, capsys):
    assert export(ck, "cyc", "--format", "torchscript") == 0
    assert (ck / "cyc" / "generator_AtoB.pt").exists()
    assert export(ck, "p2p", "--format", "torchscript", "--direction", "BtoA") == 1
    assert "needs a two-generator model" in capsys.readouterr().err
    assert export(ck, "cyc", "--format", "torchscript", "--size", "30") == 2
    assert "not a multiple of 4" in capsys.readouterr().err
    assert export(ck, "cyc", "--format", "onnx", "--dynamic_size", "--size", "4") == 2
    assert "smallest input this generator translates (8 px" in capsys.readouterr().err
    assert export(ck, "nothing", "--format", "onnx") == 1
    assert "no run folder" in capsys.readouterr().err


def tiny_generator(name):
    """Each generator of the table at a tiny width (vit_siren also shallow and narrow)."""
    kwargs = dict(in_channels=3, out_channels=3)
    if name == "vit_siren":   # it has no width or norm argument
        kwargs.update(image_size=32, patch_size=8, dim=32, depth=1, heads=2, pixel_channels=4)
    else:
        kwargs.update(base_channels=4, norm="instance")
    torch.manual_seed(0)
    return build_generator(name, **kwargs).eval()


def other_valid_shapes(gen):
    """Two input shapes that the export did not trace (nor check): the promise of --dynamic_size."""
    m, least = gen.size_multiple, smallest_side(gen)
    return [(1, 3, least + m, least), (2, 3, least + 3 * m, least + 2 * m)]


def test_size_below_the_smallest_input_is_refused_before_tracing(tmp_path):
    gen = tiny_generator("resnet_6blocks")
    assert smallest_side(gen) == 8  # reflection padding at 1/4 scale needs 2 px
    with pytest.raises(ExportFlagError, match=r"--size 4 .* smallest input .* \(8 px"):
        export_generator(gen, tmp_path / "g.onnx", "onnx", in_channels=3, size=4, dynamic_size=True)
    assert not list(tmp_path.iterdir())


@pytest.mark.slow  # torch.export + the ONNX translation: 5-20 s per generator on a shared CPU
@pytest.mark.parametrize("name", sorted(GENERATORS))
def test_every_generator_exports_dynamic_size_onnx(name, tmp_path):
    """Issue 11: unet generators failed (torch.export specialized the 1 x 1 bottleneck)."""
    import onnx
    import onnxruntime

    gen = tiny_generator(name)
    path = tmp_path / "g.onnx"
    size = max(gen.size_multiple, 32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        export_generator(gen, path, "onnx", in_channels=3, size=size, dynamic_size=True)
    meta = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    assert meta["size_multiple"] == str(gen.size_multiple) and meta["dynamic_size"] == "True"
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for shape in other_valid_shapes(gen):
        x = torch.rand(*shape) * 2 - 1
        with torch.no_grad():
            want = gen(x).numpy()
        got = session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, atol=1e-4)


@pytest.mark.parametrize("name", sorted(GENERATORS))
def test_every_generator_exports_dynamic_size_torchscript(name, tmp_path):
    gen = tiny_generator(name)
    path = tmp_path / "g.pt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        export_generator(gen, path, "torchscript", in_channels=3, size=max(gen.size_multiple, 32),
                         dynamic_size=True)
        loaded = torch.jit.load(str(path))
    for shape in other_valid_shapes(gen):
        x = torch.rand(*shape) * 2 - 1
        with torch.no_grad():
            torch.testing.assert_close(loaded(x), gen(x), atol=1e-4, rtol=0)
