"""Tests for datasets/: layouts, preprocessing, decoding, errors, the built-in dataset.

Every test makes its own tiny images in tmp_path.
"""
from __future__ import annotations

import copy
import filecmp
import os
import pickle
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # datasets/ lives in the checkout

from datasets import (DataError, build_dataloader, build_dataset, collate,  # noqa: E402
                      ensure_builtin_dataset, synthetic)
from datasets.errors import ItemFailure  # noqa: E402
from datasets.image_io import load_image, to_tensor  # noqa: E402
from options.config import DataConfig  # noqa: E402


def cfg(root, mode="single", **kw) -> DataConfig:
    kw.setdefault("num_threads", 0)
    kw.setdefault("preprocess", "none")
    return DataConfig(dataroot=str(root), dataset_mode=mode, **kw)


def save(path, array, **kw) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(array)).save(path, **kw)
    return path


def noise(h, w, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


# ---- preprocessing ----------------------------------------------------------------

@pytest.mark.parametrize("preprocess, size, expected", [
    ("resize_and_crop", (40, 48), (32, 32)),
    ("crop", (40, 48), (32, 32)),
    ("scale_width", (40, 48), (32, 36)),        # width 36; height max(36*40/48, 32)
    ("scale_width_and_crop", (40, 48), (32, 32)),
    ("none", (37, 51), (36, 52)),               # rounded to multiples of 4
    ("crop", (20, 24), (32, 32)),               # too small: scaled up, never short
])
@pytest.mark.parametrize("is_train", [True, False])
def test_preprocess_output_size(tmp_path, preprocess, size, expected, is_train):
    save(tmp_path / "x.png", noise(*size))
    ds = build_dataset(cfg(tmp_path, preprocess=preprocess, load_size=36, crop_size=32),
                       is_train=is_train)
    x = ds[0]["A"]
    assert x.shape == (3, *expected) and x.dtype == torch.float32
    assert x.min() >= -1 and x.max() <= 1


def test_unknown_preprocess_is_rejected(tmp_path):
    save(tmp_path / "x.png", noise(8, 8))
    with pytest.raises(ValueError, match="scale_width_and_crop"):
        build_dataset(cfg(tmp_path, preprocess="zoom"), is_train=True)


# ---- aligned -------------------------------------------------------------------------

def red_blue(tmp_path, width=32):
    img = np.zeros((16, width, 3), np.uint8)
    img[:, : width // 2, 0] = 255      # left (A) red
    img[:, width // 2:, 2] = 255       # right (B) blue
    return save(tmp_path / "train" / "ab.png", img)


@pytest.mark.parametrize("direction, a_channel, b_channel", [("AtoB", 0, 2), ("BtoA", 2, 0)])
def test_aligned_split_and_direction(tmp_path, direction, a_channel, b_channel):
    path = red_blue(tmp_path)
    ds = build_dataset(cfg(tmp_path, "aligned", direction=direction), is_train=False)
    item = ds[0]
    assert ds.paired and len(ds) == 1
    assert item["A"].shape == item["B"].shape == (3, 16, 16)
    assert item["A_paths"] == item["B_paths"] == str(path)
    assert torch.allclose(item["A"][a_channel], torch.ones(16, 16))
    assert torch.allclose(item["B"][b_channel], torch.ones(16, 16))


def test_aligned_odd_width_gives_equal_halves(tmp_path):
    red_blue(tmp_path, width=33)
    item = build_dataset(cfg(tmp_path, "aligned"), is_train=False)[0]
    assert item["A"].shape == item["B"].shape == (3, 16, 16)


@pytest.mark.parametrize("preprocess", ["resize_and_crop", "crop", "scale_width_and_crop"])
def test_aligned_same_crop_and_flip_for_both_halves(tmp_path, preprocess):
    half = noise(24, 20)
    save(tmp_path / "train" / "ab.png", np.concatenate([half, half], axis=1))
    ds = build_dataset(cfg(tmp_path, "aligned", preprocess=preprocess, load_size=24,
                           crop_size=16), is_train=True)
    torch.manual_seed(0)
    seen = set()
    for _ in range(8):
        item = ds[0]
        assert item["A"].shape == (3, 16, 16)
        assert torch.equal(item["A"], item["B"])
        seen.add(item["A"].sum().item())
    assert len(seen) > 1, "crop/flip should vary between draws when training"


def test_aligned_narrow_image_is_data_error(tmp_path):
    path = save(tmp_path / "train" / "thin.png", noise(8, 1))
    with pytest.raises(DataError, match="thin.png"):
        build_dataset(cfg(tmp_path, "aligned"), is_train=True)
    assert path.exists()


# ---- unaligned and single ------------------------------------------------------------

def make_unaligned(root, n_a=3, n_b=5):
    for i in range(n_a):
        save(root / "trainA" / f"a{i}.png", noise(8, 8, i))
    for i in range(n_b):
        save(root / "trainB" / f"b{i}.png", noise(8, 8, 10 + i))


def test_unaligned_length_and_serial_pairs(tmp_path):
    make_unaligned(tmp_path)
    ds = build_dataset(cfg(tmp_path, "unaligned", serial_batches=True), is_train=True)
    assert len(ds) == 5 and not ds.paired
    for i in range(5):
        item = ds[i]
        assert Path(item["A_paths"]).name == f"a{i % 3}.png"
        assert Path(item["B_paths"]).name == f"b{i}.png"


def test_unaligned_random_b_and_direction(tmp_path):
    make_unaligned(tmp_path)
    ds = build_dataset(cfg(tmp_path, "unaligned", direction="BtoA"), is_train=True)
    torch.manual_seed(0)
    b_names = {Path(ds[0]["B_paths"]).name for _ in range(20)}
    assert {Path(ds[i]["A_paths"]).parent.name for i in range(5)} == {"trainB"}
    assert len(b_names) > 1 and all(n.startswith("a") for n in b_names)


def test_single_recursive_sorted_and_capped(tmp_path):
    for rel in ["b.png", "sub/a.png", "sub/deeper/c.jpg"]:
        save(tmp_path / rel, noise(8, 8))
    (tmp_path / "notes.txt").write_text("not an image")
    ds = build_dataset(cfg(tmp_path), is_train=False)
    assert [Path(p).relative_to(tmp_path).as_posix() for p in ds.paths] == \
        ["b.png", "sub/a.png", "sub/deeper/c.jpg"]
    assert set(ds[0]) == {"A", "A_paths"} and not ds.paired
    assert len(build_dataset(cfg(tmp_path, max_dataset_size=2), is_train=False)) == 2


@pytest.mark.parametrize("direction, channels", [("AtoB", 1), ("BtoA", 3)])
def test_single_channels_follow_direction(tmp_path, direction, channels):
    save(tmp_path / "x.png", noise(8, 8))
    ds = build_dataset(cfg(tmp_path, direction=direction, input_nc=1, output_nc=3),
                       is_train=False)
    assert ds[0]["A"].shape[0] == channels


# ---- decoding --------------------------------------------------------------------------

def test_16bit_png_is_scaled_not_clipped(tmp_path):
    values = np.array([[0, 1000, 30000, 65535]] * 4, np.uint16)
    save(tmp_path / "deep.png", values)
    x = build_dataset(cfg(tmp_path, input_nc=1), is_train=False)[0]["A"]
    expected = torch.from_numpy(values / 65535.0 * 2 - 1).float()
    assert x.shape == (1, 4, 4)
    assert torch.allclose(x[0], expected, atol=1e-5)
    assert torch.allclose(to_tensor(load_image(str(tmp_path / "deep.png")), 3)[2],
                          torch.from_numpy(values / 65535.0).float(), atol=1e-6)


def test_exif_orientation_is_applied(tmp_path):
    exif = Image.Exif()
    exif[0x0112] = 6                                  # "rotate 90 degrees clockwise"
    save(tmp_path / "phone.jpg", noise(20, 40), exif=exif)
    assert build_dataset(cfg(tmp_path), is_train=False)[0]["A"].shape == (3, 40, 20)


@pytest.mark.parametrize("mode", ["L", "LA", "RGBA", "P", "CMYK", "1", "RGB"])
@pytest.mark.parametrize("channels", [1, 3])
def test_modes_convert_to_requested_channels(tmp_path, mode, channels):
    img = Image.fromarray(noise(8, 8)).convert(mode)
    path = tmp_path / ("x.tif" if mode == "CMYK" else "x.png")
    img.save(path)
    x = to_tensor(load_image(str(path)), channels)
    assert x.shape == (channels, 8, 8) and 0 <= x.min() and x.max() <= 1


@pytest.mark.parametrize("ext", ["jpg", "png", "bmp", "tif", "webp"])
def test_formats_decode(tmp_path, ext):
    save(tmp_path / f"x.{ext}", np.full((8, 8, 3), 200, np.uint8))
    x = build_dataset(cfg(tmp_path), is_train=False)[0]["A"]
    assert torch.allclose(x, torch.full_like(x, 200 / 255 * 2 - 1), atol=0.05)


def test_decompression_bomb_is_refused(tmp_path, monkeypatch):
    save(tmp_path / "big.png", noise(12, 12))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)   # 144 pixels: over the limit
    with pytest.raises(DataError, match="big.png.*MAX_IMAGE_PIXELS"):
        build_dataset(cfg(tmp_path), is_train=False)


# ---- errors ------------------------------------------------------------------------------

def test_missing_folder_names_expected_layout(tmp_path):
    (tmp_path / "trainA").mkdir()
    save(tmp_path / "trainA" / "a.png", noise(8, 8))
    with pytest.raises(DataError) as err:
        build_dataset(cfg(tmp_path, "unaligned"), is_train=True)
    message = str(err.value)
    assert str(tmp_path / "trainB") in message and "--dataset_mode unaligned" in message


def test_empty_folder_is_data_error(tmp_path):
    (tmp_path / "train").mkdir()
    (tmp_path / "train" / "readme.txt").write_text("x")
    with pytest.raises(DataError, match=f"no images in {tmp_path / 'train'}"):
        build_dataset(cfg(tmp_path, "aligned"), is_train=True)


def test_unreadable_files_are_all_listed(tmp_path):
    save(tmp_path / "good.png", noise(8, 8))
    (tmp_path / "bad1.png").write_bytes(b"not a png")
    (tmp_path / "bad2.jpg").write_bytes(b"")
    with pytest.raises(DataError) as err:
        build_dataset(cfg(tmp_path), is_train=False)
    message = str(err.value)
    assert "bad1.png" in message and "bad2.jpg" in message and "good.png" not in message


def truncated_dataset(tmp_path):
    """A dataset whose third file is cut short after the header check passed."""
    for i in range(4):
        save(tmp_path / f"img{i}.png", noise(32, 32, i))
    ds = build_dataset(cfg(tmp_path), is_train=False)
    bad = tmp_path / "img2.png"
    bad.write_bytes(bad.read_bytes()[:200])
    return ds


def assert_clean(err, name="img2.png"):
    message = str(err.value)
    assert type(err.value) is DataError
    assert name in message and "truncated" in message
    assert "Traceback" not in message and 'File "' not in message


def test_truncated_file_gives_clean_error_from_workers(tmp_path):
    ds = truncated_dataset(tmp_path)
    loader = build_dataloader(ds, cfg(tmp_path, num_threads=2), is_train=False)
    with pytest.raises(DataError) as err:
        for _ in loader:
            pass
    assert_clean(err)
    with pytest.raises(DataError) as err:   # without workers the dataset raises directly
        ds[2]
    assert_clean(err)


def test_truncated_file_under_accelerate(tmp_path):
    # Accelerate re-creates the DataLoader (keeping collate_fn, not our class):
    # the first read of the failed batch must still raise the clean error.
    data_loader = pytest.importorskip("accelerate.data_loader")
    ds = truncated_dataset(tmp_path)
    loader = data_loader.prepare_data_loader(
        build_dataloader(ds, cfg(tmp_path, num_threads=2), is_train=False),
        device=torch.device("cpu"), num_processes=1, process_index=0, put_on_device=True)
    with pytest.raises(DataError) as err:
        for batch in loader:
            batch["A"]
    assert_clean(err)
    # The traceback holds this frame: freed by refcount now, the loader stops its workers
    # at once; left to the cycle collector, their shutdown stalls for 5 s per worker.
    del err, loader


def test_failed_batch_survives_rebuilding():
    batch = collate([ItemFailure("cannot decode x.png"), ItemFailure("y.png")])
    rebuilt = type(batch)(dict(batch.items()))          # how Accelerate moves mappings
    for b in (batch, rebuilt, copy.copy(batch), pickle.loads(pickle.dumps(batch))):
        with pytest.raises(DataError, match="x.png"):
            b["A"]


def test_dataloader_settings(tmp_path):
    for i in range(3):
        save(tmp_path / f"{i}.png", noise(8, 8, i))
    c = cfg(tmp_path, batch_size=2)
    ds = build_dataset(c, is_train=True)
    train = build_dataloader(ds, c, is_train=True)
    assert isinstance(train.sampler, torch.utils.data.RandomSampler) and not train.drop_last
    assert isinstance(build_dataloader(ds, c, is_train=False).sampler,
                      torch.utils.data.SequentialSampler)
    sampler = torch.utils.data.SequentialSampler(ds)
    assert build_dataloader(ds, c, is_train=True, sampler=sampler).sampler is sampler
    batches = list(build_dataloader(ds, c, is_train=False))
    assert [b["A"].shape[0] for b in batches] == [2, 1] and len(batches[0]["A_paths"]) == 2


# ---- built-in dataset ----------------------------------------------------------------------

def test_synthetic_paired_is_deterministic_with_right_counts(tmp_path):
    one = ensure_builtin_dataset("paired", str(tmp_path / "one"))
    for split, count in [("train", 200), ("test", 30)]:
        assert len(os.listdir(Path(one) / split)) == count
    # Image i is seeded on its own, so a short second run must repeat the first files.
    few = {"train": 4, "test": 2}
    synthetic.write_dataset("paired", str(tmp_path / "two"), counts=few)
    names = [f"{split}/{i + 1:04d}.png" for split, n in few.items() for i in range(n)]
    match, mismatch, errors = filecmp.cmpfiles(one, tmp_path / "two", names, shallow=False)
    assert match == names and not mismatch and not errors
    with Image.open(Path(one) / "train" / "0001.png") as img:
        assert img.size == (256, 128)
        labels = np.asarray(img)[:, :128].reshape(-1, 3)
    assert {tuple(c) for c in labels} <= {tuple(c) for c in synthetic.LABEL_COLOURS}
    mtime = os.path.getmtime(Path(one) / synthetic.MARKER)
    assert ensure_builtin_dataset("paired", one) == one            # second call: no rewrite
    assert os.path.getmtime(Path(one) / synthetic.MARKER) == mtime
    ds = build_dataset(cfg(one, "synthetic_paired", preprocess="resize_and_crop",
                           load_size=72, crop_size=64), is_train=True)
    assert ds.paired and len(ds) == 200 and ds[0]["B"].shape == (3, 64, 64)


def test_synthetic_unpaired_layout(tmp_path, monkeypatch):
    monkeypatch.setattr(synthetic, "COUNTS", {"train": 5, "test": 3})   # keep the test quick
    assert synthetic.main(["--kind", "unpaired", "--out", str(tmp_path / "u")]) == 0
    root = tmp_path / "u"
    counts = {d: len(os.listdir(root / d)) for d in ["trainA", "trainB", "testA", "testB"]}
    assert counts == {"trainA": 5, "trainB": 5, "testA": 3, "testB": 3}
    assert not filecmp.cmp(root / "trainA" / "0001.png", root / "trainB" / "0001.png")
    ds = build_dataset(cfg(root, "synthetic_unpaired", phase="test"), is_train=False)
    assert not ds.paired and len(ds) == 3 and ds[0]["A"].shape == (3, 128, 128)


def test_no_dataroot_uses_builtin_dataset(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(synthetic, "COUNTS", {"train": 3, "test": 2})
    monkeypatch.setattr(synthetic, "default_root", lambda kind: str(tmp_path / f"toy_{kind}"))
    paired = build_dataset(DataConfig(dataroot=None, dataset_mode="aligned"), is_train=True)
    assert paired.paired and len(paired) == 3
    assert Path(paired.paths[0]).parent == tmp_path / "toy_paired" / "train"
    assert "built-in paired" in capsys.readouterr().err
    single = build_dataset(DataConfig(dataroot=None, dataset_mode="single", phase="test",
                                      direction="BtoA"), is_train=False)
    assert Path(single.paths[0]).parent == tmp_path / "toy_unpaired" / "testB"


def test_builtin_refuses_foreign_folder(tmp_path):
    save(tmp_path / "mine.png", noise(8, 8))
    with pytest.raises(DataError, match="not the built-in paired dataset"):
        ensure_builtin_dataset("paired", str(tmp_path))
