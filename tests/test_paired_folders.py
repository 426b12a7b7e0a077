"""--dataset_mode paired_folders (DIR/trainA + DIR/trainB matched by name) and datasets.combine."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # datasets/ lives in the checkout

import test as test_entry  # noqa: E402
import train as train_entry  # noqa: E402
from datasets import DataError, build_dataset  # noqa: E402
from datasets.combine import main as combine_main  # noqa: E402
from options import OptionsError, parse_train_options  # noqa: E402
from options.config import DataConfig  # noqa: E402


def cfg(root, **kw) -> DataConfig:
    kw.setdefault("num_threads", 0)
    kw.setdefault("preprocess", "none")
    return DataConfig(dataroot=str(root), dataset_mode="paired_folders", **kw)


def noise(h, w, seed) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def save(path: Path, array: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)
    return path


def make_pairs(root: Path, names=("0", "1", "sub/2"), size=(16, 20), phase="train") -> Path:
    """A is noise, B is its colour-inverted twin (so a wrong partner or side shows)."""
    for i, name in enumerate(names):
        a = noise(*size, seed=i)
        save(root / f"{phase}A" / f"{name}.png", a)
        save(root / f"{phase}B" / f"{name}.jpg" if i % 2 else root / f"{phase}B" / f"{name}.png", 255 - a)
    return root


def test_files_are_matched_by_relative_path_without_extension(tmp_path):
    make_pairs(tmp_path)
    ds = build_dataset(cfg(tmp_path), is_train=False)
    assert ds.paired and len(ds) == 3
    for item in (ds[i] for i in range(3)):
        a_rel = Path(item["A_paths"]).relative_to(tmp_path / "trainA")
        b_rel = Path(item["B_paths"]).relative_to(tmp_path / "trainB")
        assert a_rel.with_suffix("") == b_rel.with_suffix("")
        if item["B_paths"].endswith(".png"):  # lossless partner: exactly the inverse of A
            assert torch.allclose(item["A"], -item["B"], atol=1e-6)
    assert ds[2]["A_paths"].endswith("sub/2.png")


def test_direction_btoa_swaps_the_folders(tmp_path):
    make_pairs(tmp_path, names=("0",))
    ab = build_dataset(cfg(tmp_path), is_train=False)[0]
    ba = build_dataset(cfg(tmp_path, direction="BtoA"), is_train=False)[0]
    assert torch.equal(ab["A"], ba["B"]) and torch.equal(ab["B"], ba["A"])
    assert "trainB" in ba["A_paths"] and "trainA" in ba["B_paths"]


def test_unmatched_files_are_listed_in_one_error(tmp_path):
    make_pairs(tmp_path)
    save(tmp_path / "trainA" / "lonely_a.png", noise(8, 8, 9))
    save(tmp_path / "trainB" / "deep" / "lonely_b.jpg", noise(8, 8, 9))
    with pytest.raises(DataError) as err:
        build_dataset(cfg(tmp_path), is_train=True)
    message = str(err.value)
    assert "2 file(s) have no partner" in message and "--skip_unmatched" in message
    assert "lonely_a.png (no partner in B)" in message and "lonely_b.jpg (no partner in A)" in message


def test_skip_unmatched_counts_what_it_leaves_out(tmp_path, capsys):
    make_pairs(tmp_path)
    save(tmp_path / "trainA" / "lonely_a.png", noise(8, 8, 9))
    save(tmp_path / "trainB" / "x.png", noise(8, 8, 9))
    save(tmp_path / "trainB" / "y.png", noise(8, 8, 9))
    ds = build_dataset(cfg(tmp_path, skip_unmatched=True), is_train=True)
    assert len(ds) == 3
    assert "left out 3 file(s) without a partner (1 in A, 2 in B); 3 pairs remain" in capsys.readouterr().err


def test_ambiguous_names_are_an_error(tmp_path):
    make_pairs(tmp_path, names=("0",))
    save(tmp_path / "trainA" / "0.jpg", noise(16, 20, 3))
    with pytest.raises(DataError, match="share a name but for the extension"):
        build_dataset(cfg(tmp_path), is_train=True)


@pytest.mark.parametrize("preprocess", ["resize_and_crop", "crop", "scale_width", "scale_width_and_crop", "none"])
def test_same_random_crop_and_flip_on_both_images(tmp_path, preprocess):
    picture = noise(30, 26, seed=5)
    save(tmp_path / "trainA" / "p.png", picture)
    save(tmp_path / "trainB" / "p.png", picture)          # identical: every difference is a bug
    ds = build_dataset(cfg(tmp_path, preprocess=preprocess, load_size=24, crop_size=16, seed=3),
                       is_train=True)
    seen = set()
    for epoch in range(8):
        item = ds[(0, epoch)]                              # the trainer's per-(seed, epoch, index) key
        assert torch.equal(item["A"], item["B"])
        seen.add(item["A"].sum().item())
        assert torch.equal(ds[(0, epoch)]["A"], item["A"])  # the same key draws the same crop
    if preprocess != "none" and preprocess != "scale_width":
        assert len(seen) > 1, "crop/flip should vary between epochs when training"


def test_pairs_of_different_sizes_are_resized_to_a(tmp_path, capsys):
    save(tmp_path / "trainA" / "p.png", noise(16, 24, 1))
    save(tmp_path / "trainB" / "p.png", noise(32, 48, 2))
    save(tmp_path / "trainA" / "q.png", noise(16, 24, 3))
    save(tmp_path / "trainB" / "q.png", noise(16, 24, 4))
    ds = build_dataset(cfg(tmp_path), is_train=False)
    assert "1 pair(s) have A and B images of different sizes (first: p)" in capsys.readouterr().err
    item = ds[0]
    assert item["A"].shape == item["B"].shape == (3, 16, 24)


def test_options_accept_paired_folders_for_paired_models(tmp_path):
    for model in ("pix2pix", "csgan"):
        c = parse_train_options(["--model", model, "--dataset_mode", "paired_folders", "--dataroot",
                                 str(tmp_path), "--skip_unmatched"])
        assert c.data.dataset_mode == "paired_folders" and c.data.skip_unmatched
    with pytest.raises(OptionsError, match="needs --dataroot"):
        parse_train_options(["--model", "pix2pix", "--dataset_mode", "paired_folders"])


def test_combine_writes_the_classic_layout_that_aligned_reads_identically(tmp_path, capsys):
    src = make_pairs(tmp_path / "src")
    make_pairs(tmp_path / "src", names=("t0",), phase="test")
    save(tmp_path / "src" / "trainA" / "alone.png", noise(8, 8, 7))
    (tmp_path / "src" / "valA").mkdir()                   # no valB: not a phase
    assert combine_main([str(src), str(tmp_path / "out"), "--no_progress"]) == 0
    captured = capsys.readouterr()
    assert "train: 3 pairs" in captured.out and "test: 1 pairs" in captured.out
    assert "skipped 1 file(s)" in captured.err and "alone.png" in captured.err
    written = sorted(p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out").rglob("*.png"))
    assert written == ["test/t0.png", "train/0.png", "train/1.png", "train/sub/2.png"]
    assert Image.open(tmp_path / "out" / "train" / "0.png").size == (40, 16)
    folders = build_dataset(cfg(src, skip_unmatched=True), is_train=False)
    aligned = build_dataset(DataConfig(dataroot=str(tmp_path / "out"), dataset_mode="aligned",
                                       num_threads=0, preprocess="none"), is_train=False)
    assert len(folders) == len(aligned) == 3
    for i in range(3):
        assert torch.equal(folders[i]["A"], aligned[i]["A"]) and torch.equal(folders[i]["B"], aligned[i]["B"])


def test_combine_without_phases_is_a_clear_error(tmp_path, capsys):
    (tmp_path / "trainA").mkdir()
    with pytest.raises(SystemExit) as exit_info:
        combine_main([str(tmp_path), str(tmp_path / "out")])
    assert exit_info.value.code == 2 and "no phase folders" in capsys.readouterr().err


@pytest.mark.slow
def test_combine_command_line(tmp_path):
    make_pairs(tmp_path / "src", names=("0",))
    out = subprocess.run([sys.executable, "-m", "datasets.combine", str(tmp_path / "src"), str(tmp_path / "out")],
                         capture_output=True, text=True, timeout=120, cwd=Path(__file__).resolve().parents[1])
    assert out.returncode == 0 and "train: 1 pairs" in out.stdout and "Warning" not in out.stderr
    assert (tmp_path / "out" / "train" / "0.png").exists()


@pytest.mark.parametrize("model", ["pix2pix", "csgan"])
def test_paired_models_train_two_iterations_on_paired_folders(tmp_path, model):
    make_pairs(tmp_path / "data", names=("0", "1", "2"), size=(32, 32))
    make_pairs(tmp_path / "data", names=("t0", "t1"), size=(32, 32), phase="test")
    argv = ["--dataroot", str(tmp_path / "data"), "--dataset_mode", "paired_folders", "--model", model,
            "--name", "pf", "--checkpoints_dir", str(tmp_path / "ck"), "--netG", "resnet_6blocks",
            "--norm", "instance", "--ngf", "8", "--ndf", "8", "--load_size", "36", "--crop_size", "32",
            "--display_id", "0", "--num_threads", "0", "--max_iters", "2", "--gpu_ids", "-1",
            "--direction", "BtoA"]
    assert train_entry.main(argv) == 0
    assert (tmp_path / "ck" / "pf" / "ckpt_latest" / "weights.safetensors").exists()
    assert test_entry.main(["--dataroot", str(tmp_path / "data"), "--dataset_mode", "paired_folders",
                            "--model", model, "--name", "pf", "--checkpoints_dir", str(tmp_path / "ck"),
                            "--results_dir", str(tmp_path / "res"), "--load_size", "32", "--crop_size", "32",
                            "--direction", "BtoA", "--gpu_ids", "-1", "--netG", "resnet_6blocks", "--ngf", "8",
                            "--norm", "instance"] + (["--no_dropout"] if model == "csgan" else [])) == 0
    assert sorted(p.name for p in (tmp_path / "res").rglob("*_real_B.png")) == ["t0_real_B.png", "t1_real_B.png"]
