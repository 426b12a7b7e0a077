"""from translate import load_translator: PIL, numpy and tensor inputs on a tiny trained run."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import train as train_entry
from imaging import make_paired, random_image
from translate import load_translator
from translate.__main__ import main as translate_main
from translate.checkpoint import CheckpointError, save_checkpoint
from translate.networks import build_networks
from options import parse_train_options


@pytest.fixture(scope="module")
def ck(tmp_path_factory) -> Path:
    """A pix2pix run trained 2 epochs (1 iteration each) with EMA, and an untrained cycle_gan run."""
    root = tmp_path_factory.mktemp("api")
    data = make_paired(root / "data", n=1, size=32)
    ck = root / "checkpoints"
    assert train_entry.main([
        "--dataroot", str(data), "--name", "p2p", "--checkpoints_dir", str(ck), "--model", "pix2pix",
        "--netG", "resnet_6blocks", "--norm", "instance", "--ngf", "8", "--ndf", "8", "--load_size", "36",
        "--crop_size", "32", "--display_id", "0", "--num_threads", "0", "--gpu_ids", "-1", "--n_epochs", "1",
        "--n_epochs_decay", "1", "--save_epoch_freq", "1", "--ema_decay", "0.5", "--lr", "0.01"]) == 0
    cfg = parse_train_options(["--name", "cyc", "--checkpoints_dir", str(ck), "--model", "cycle_gan",
                               "--netG", "resnet_6blocks", "--ngf", "4", "--norm", "batch", "--crop_size", "32",
                               "--load_size", "32", "--display_id", "0", "--gpu_ids", "-1"])
    torch.manual_seed(1)
    nets = build_networks("cycle_gan", cfg.net, with_discriminators=False)
    save_checkpoint(ck / "cyc", "latest", dict(nets.items()), cfg.to_dict(), model="cycle_gan")
    return ck


def picture(size=(53, 37), seed=0) -> Image.Image:
    return random_image(max(size), seed).resize(size)


def test_pil_in_pil_out_equals_what_the_folder_tool_writes(ck, tmp_path):
    g = load_translator(ck / "p2p", device="cpu")
    image = picture()
    out = g(image)
    assert isinstance(out, Image.Image) and out.size == image.size and out.mode == "RGB"
    (tmp_path / "in").mkdir()
    image.save(tmp_path / "in" / "x.png")
    assert translate_main([str(tmp_path / "in"), "--name", "p2p", "--checkpoints_dir", str(ck), "--output",
                           str(tmp_path / "out"), "--gpu_ids", "-1", "--num_workers", "0", "--no_progress"]) == 0
    written = np.asarray(Image.open(tmp_path / "out" / "x.png"), np.int16)
    assert np.abs(written - np.asarray(out, np.int16)).max() <= 1


def test_numpy_and_tensor_inputs_agree_with_pil(ck):
    g = load_translator("p2p", checkpoints_dir=str(ck), device="cpu")
    image = picture((31, 45), seed=3)                         # odd sizes both ways
    expected = np.asarray(g(image))
    array = np.asarray(image)
    out = g(array)
    assert out.dtype == np.uint8 and out.shape == array.shape and np.array_equal(out, expected)
    x = torch.from_numpy(array.copy()).permute(2, 0, 1).float() / 127.5 - 1
    y = g(x)                                                  # C x H x W stays C x H x W
    assert y.shape == x.shape and y.dtype == torch.float32 and y.abs().max() <= 1
    as_uint8 = ((y.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(1, 2, 0).numpy()
    assert np.array_equal(as_uint8, expected)
    batch = torch.stack([x, x.flip(-1)]).double()             # N x C x H x W, float64 in -> float64 out
    out_batch = g(batch)
    assert out_batch.shape == batch.shape and out_batch.dtype == torch.float64
    assert torch.allclose(out_batch[0].float(), y, atol=1e-5)


def test_tiles_precision_epoch_ema_and_direction_options(ck):
    x = torch.rand(1, 3, 72, 80) * 2 - 1
    whole = load_translator(ck / "p2p", device="cpu")
    tiled = load_translator(ck / "p2p", device="cpu", tile=32, tile_overlap=8)(x)
    assert tiled.shape == x.shape and torch.isfinite(tiled).all()
    assert not torch.allclose(tiled, whole(x))                # instance norm sees each tile alone
    bf16 = load_translator(ck / "p2p", device="cpu", mixed_precision="bf16")(x)
    assert (bf16 - whole(x)).abs().max() < 0.2
    assert not torch.equal(load_translator(ck / "p2p", device="cpu", epoch="1")(x), whole(x))
    raw = load_translator(ck / "p2p", device="cpu", ema=False)(x)
    assert not torch.allclose(raw, whole(x))                   # EMA weights are the default
    cyc = str(ck / "cyc")
    ab, ba = (load_translator(cyc, device="cpu", direction=d)(x) for d in ("AtoB", "BtoA"))
    assert not torch.allclose(ab, ba)
    with pytest.raises(CheckpointError, match="two-generator model"):
        load_translator(ck / "p2p", direction="BtoA")
    with pytest.raises(ValueError, match="--tile 30 must be a positive multiple of 4"):
        load_translator(ck / "p2p", tile=30)


def test_classic_pth_files_load(ck, tmp_path):
    x = torch.rand(2, 3, 40, 36) * 2 - 1
    expected = load_translator(ck / "cyc", device="cpu")(x)
    inside = load_translator(ck / "cyc" / "latest_net_G_A.pth", device="cpu")   # no train_opt.txt: recognised
    bare = tmp_path / "some_generator.pth"
    shutil.copy(ck / "cyc" / "latest_net_G_A.pth", bare)
    for g in (inside, load_translator(bare, device="cpu")):
        assert "resnet_6blocks (batch norm)" in repr(g)
        assert torch.allclose(g(x), expected, atol=1e-6)
    with pytest.raises(ValueError, match="one generator"):
        load_translator(bare, direction="BtoA")
    (tmp_path / "junk.pth").write_bytes(b"not a pickle")
    with pytest.raises(CheckpointError, match="not a plain weights file"):
        load_translator(tmp_path / "junk.pth")


@pytest.mark.parametrize("bad, error, message", [
    (np.zeros((8, 8, 4), np.uint8), ValueError, "takes 3 channel.*has 4"),
    (np.zeros((8, 8), np.uint8), ValueError, "takes 3 channel.*has 1"),
    (np.zeros((8, 8, 3), np.float32), TypeError, "must be uint8"),
    (np.zeros((2, 8, 8, 3), np.uint8), ValueError, "H x W x C"),
    (torch.zeros(1, 3, 8, 8, dtype=torch.uint8), TypeError, "floating point"),
    (torch.zeros(1, 1, 3, 8, 8), ValueError, "C x H x W or N x C x H x W"),
    (torch.zeros(1, 8, 8, 3), ValueError, "channels-last"),
    (torch.full((3, 8, 8), 200.0), ValueError, r"in \[-1, 1\]"),
    (torch.zeros(3, 0, 8), ValueError, "empty"),
    ([[0, 1]], TypeError, "cannot translate a list"),
])
def test_wrong_inputs_raise_clear_errors(ck, bad, error, message):
    g = load_translator(ck / "p2p", device="cpu")
    with pytest.raises(error, match=message):
        g(bad)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on a machine without a GPU")
def test_asking_for_a_missing_gpu_is_a_clear_error(ck):
    with pytest.raises(ValueError, match="no CUDA GPU"):
        load_translator(ck / "p2p", device="cuda")


def test_missing_source_says_how_to_get_one(tmp_path):
    with pytest.raises(FileNotFoundError, match="translate.pretrained"):
        load_translator("horse2zebra_pretrained", checkpoints_dir=str(tmp_path))


def test_import_translate_stays_cheap():
    code = "import sys, translate; print('torch' in sys.modules, callable(translate.load_translator))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "True"]
