"""python -m translate.export: the ONNX and TorchScript files give PyTorch's results."""
import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from options import parse_train_options
from translate.checkpoint import save_checkpoint
from translate.export import load_run_generator, main
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
    assert export(ck, "cyc", "--format", "torchscript", "--size", "30") == 1
    assert "not a multiple of 4" in capsys.readouterr().err
    assert export(ck, "nothing", "--format", "onnx") == 1
    assert "no run folder" in capsys.readouterr().err
