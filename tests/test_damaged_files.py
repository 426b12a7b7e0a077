"""Damaged checkpoints: every loader names the file and the damage; latest falls back to an intact one.

A real small run (three checkpoints: iter_2, iter_4 = latest) is trained once;
each test damages a copy of it as a disk, a full file system or a half-finished
copy would (zero bytes, truncated, one flipped bit) and runs the real entry
points on it.
"""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from imaging import make_paired
from options import parse_train_options
from translate import checkpoint as ckpt
from translate.inference.loading import load_generators
from translate.networks import build_networks

ROOT = Path(__file__).resolve().parent.parent
NET = ["--model", "pix2pix", "--netG", "resnet_6blocks", "--ngf", "8", "--ndf", "8",
       "--load_size", "32", "--crop_size", "32", "--num_threads", "0", "--gpu_ids", "-1"]


def _run(*argv, timeout=180):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    done = subprocess.run([sys.executable, *map(str, argv)], cwd=ROOT, capture_output=True, text=True,
                          env=env, timeout=timeout)
    return done.returncode, done.stdout + done.stderr


def _train(data, ck, *extra):
    return _run(ROOT / "train.py", "--dataroot", data, "--name", "run", "--checkpoints_dir", ck, *NET,
                "--display_id", "0", "--save_latest_freq", "2", "--save_by_iter", "--n_epochs", "2",
                "--n_epochs_decay", "0", *extra)


def _test(data, ck, results, *extra):
    return _run(ROOT / "test.py", "--dataroot", data, "--name", "run", "--checkpoints_dir", ck, *NET,
                "--results_dir", results, *extra)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    base = tmp_path_factory.mktemp("damaged")
    data = make_paired(base / "data", n=4)
    rc, out = _train(data, base / "ck", "--max_iters", "4")
    assert rc == 0, out
    return data, base / "ck"


@pytest.fixture
def run(trained, tmp_path):
    """A fresh copy of the trained run: (data, checkpoints_dir, run folder)."""
    data, ck = trained
    shutil.copytree(ck, tmp_path / "ck")
    return data, tmp_path / "ck", tmp_path / "ck" / "run"


def damage(path: Path, how: str) -> None:
    size = path.stat().st_size
    if how == "empty":
        path.write_bytes(b"")
    elif how == "truncated":
        os.truncate(path, size // 2)
    elif how == "bitflip":  # one bit in the data, far from any header
        with open(path, "r+b") as f:
            f.seek(size - 200)
            byte = f.read(1)
            f.seek(size - 200)
            f.write(bytes([byte[0] ^ 0x10]))
    else:
        raise ValueError(how)


DAMAGES = ("empty", "truncated", "bitflip")


@pytest.mark.slow
def test_a_run_records_a_checksum_of_every_checkpoint_file(run):
    _, _, run_dir = run
    for folder in ("ckpt_latest", "ckpt_iter_2", "ckpt_iter_4"):
        manifest = json.loads((run_dir / folder / "checksums.json").read_text())
        assert set(manifest["files"]) == {"weights.safetensors", "state.pt"}
        for name, entry in manifest["files"].items():
            assert entry["bytes"] == (run_dir / folder / name).stat().st_size
    assert json.loads((run_dir / "ckpt_iter_2" / "checksums.json").read_text())["progress"]["total_iters"] == 2


@pytest.mark.parametrize("how", DAMAGES)
@pytest.mark.slow
def test_test_py_falls_back_from_damaged_latest_weights(run, tmp_path, how):
    data, ck, run_dir = run
    shutil.rmtree(run_dir / "ckpt_iter_4")   # the fallback must be iter_2, not a twin of latest
    damage(run_dir / "ckpt_latest" / "weights.safetensors", how)
    rc, out = _test(data, ck, tmp_path / "results")
    assert rc == 0, out
    assert "Traceback" not in out
    assert "warning:" in out and str(run_dir / "ckpt_latest" / "weights.safetensors") in out
    assert f"Translated 4 images with {run_dir / 'ckpt_iter_2'}" in out
    assert (tmp_path / "results" / "run" / "test_latest" / "index.html").exists()


@pytest.mark.parametrize("how", DAMAGES)
@pytest.mark.slow
def test_continue_train_falls_back_from_damaged_latest_state(run, how):
    data, ck, run_dir = run
    shutil.rmtree(run_dir / "ckpt_iter_4")
    damage(run_dir / "ckpt_latest" / "state.pt", how)
    rc, out = _train(data, ck, "--max_iters", "5", "--continue_train")
    assert rc == 0, out
    assert "Traceback" not in out
    assert str(run_dir / "ckpt_latest" / "state.pt") in out and "warning:" in out
    assert f"Resumed from {run_dir / 'ckpt_iter_2'}: epoch 1, iteration 2" in out
    assert ckpt.load_training_state(run_dir / "ckpt_latest")["total_iters"] == 5   # a new, intact latest


@pytest.mark.slow
def test_continue_train_falls_back_from_damaged_latest_weights(run):
    data, ck, run_dir = run
    damage(run_dir / "ckpt_latest" / "weights.safetensors", "bitflip")
    rc, out = _train(data, ck, "--max_iters", "5", "--continue_train")
    assert rc == 0 and "Traceback" not in out, out
    assert "checksum" in out and f"Resumed from {run_dir / 'ckpt_iter_4'}" in out


@pytest.mark.slow
def test_a_damaged_explicit_epoch_is_an_error_listing_the_intact_ones(run, tmp_path):
    data, ck, run_dir = run
    damage(run_dir / "ckpt_iter_4" / "weights.safetensors", "truncated")
    rc, out = _test(data, ck, tmp_path / "results", "--epoch", "iter_4")
    assert rc == 1 and "Traceback" not in out, out
    assert "ckpt_iter_4/weights.safetensors is damaged: it is truncated" in out
    assert "iter_2" in out and "latest" in out and "--epoch" in out


@pytest.mark.slow
def test_no_intact_checkpoint_is_a_clear_error_everywhere(run, tmp_path):
    data, ck, run_dir = run
    for folder in ckpt.list_checkpoints(run_dir):
        damage(folder / "weights.safetensors", "empty")
    rc, out = _test(data, ck, tmp_path / "results")
    assert rc == 1 and "Traceback" not in out, out
    assert "it is empty (0 bytes)" in out and "no other checkpoint" in out
    rc, out = _run("-m", "translate", data / "test", "--name", "run", "--checkpoints_dir", ck,
                   "--output", tmp_path / "out", "--num_workers", "0")
    assert rc == 2 and "Traceback" not in out and "no other checkpoint" in out, out
    rc, out = _train(data, ck, "--max_iters", "5", "--continue_train")
    assert rc == 1 and "Traceback" not in out and "no other checkpoint" in out, out


# ---- the loaders one by one, in process ------------------------------------------------

def _save(tmp_path, label="latest", state=None):
    cfg = parse_train_options(["--model", "pix2pix", "--netG", "resnet_6blocks", "--ngf", "4", "--ndf", "4",
                               "--crop_size", "32", "--load_size", "32"])
    nets = build_networks("pix2pix", cfg.net)
    return cfg, ckpt.save_checkpoint(tmp_path, label, dict(nets.items()), cfg.to_dict(),
                                     state if state is not None else {"steps": 1, "w": torch.ones(1000)},
                                     model="pix2pix")


@pytest.mark.parametrize("how", DAMAGES)
@pytest.mark.parametrize("name", ["weights.safetensors", "state.pt"])
def test_every_loader_names_the_damaged_file(tmp_path, how, name):
    _, folder = _save(tmp_path)
    damage(folder / name, how)
    load = ckpt.load_checkpoint if name == "weights.safetensors" else ckpt.load_training_state
    with pytest.raises(ckpt.DamagedCheckpointError) as err:
        load(folder)
    assert str(folder / name) in str(err.value)
    assert {"empty": "empty (0 bytes)", "truncated": "truncated", "bitflip": "checksum"}[how] in str(err.value)


@pytest.mark.parametrize("how", DAMAGES)
def test_checkpoints_written_before_checksums_still_load_and_damage_is_still_found(tmp_path, how):
    cfg, folder = _save(tmp_path)
    (folder / "checksums.json").unlink()   # what today's runs have on disk
    weights, config = ckpt.load_checkpoint(folder)
    assert "gen_ab" in weights and config["run"]["model"] == "pix2pix"
    assert ckpt.load_training_state(folder)["steps"] == 1
    assert load_generators(tmp_path, "latest", model="pix2pix", net=cfg.net).source == str(folder)
    damage(folder / "state.pt", how)   # torch.save's zip CRCs catch even one flipped bit
    with pytest.raises(ckpt.DamagedCheckpointError, match="state.pt is damaged"):
        ckpt.load_training_state(folder)
    if how != "bitflip":   # without a checksum a flipped bit in tensor data cannot be seen
        damage(folder / "weights.safetensors", how)
        with pytest.raises(ckpt.DamagedCheckpointError, match="weights.safetensors is damaged"):
            ckpt.load_checkpoint(folder)


@pytest.mark.parametrize("how", ["empty", "truncated"])
def test_damaged_classic_pth_is_named(tmp_path, how):
    cfg, _ = _save(tmp_path)
    shutil.rmtree(tmp_path / "ckpt_latest")
    damage(tmp_path / "latest_net_G.pth", how)
    with pytest.raises(ckpt.DamagedCheckpointError, match="latest_net_G.pth is damaged"):
        load_generators(tmp_path, "latest", model="test", net=cfg.net)


def test_not_a_safetensors_file_is_named(tmp_path):
    _, folder = _save(tmp_path)
    (folder / "checksums.json").unlink()
    (folder / "weights.safetensors").write_bytes(b"<html>404 Not Found</html>" * 10)
    with pytest.raises(ckpt.DamagedCheckpointError, match="not a safetensors file"):
        ckpt.load_checkpoint(folder)


def test_fallback_picks_the_newest_intact_by_recorded_iterations(tmp_path):
    for label, iters in (("iter_30", 30), ("5", 50), ("iter_40", 40), ("latest", 60)):
        _save(tmp_path, label, {"total_iters": iters, "steps": iters})
    os.utime(tmp_path / "ckpt_iter_30" / "weights.safetensors")  # newest file, but fewer iterations
    damage(tmp_path / "ckpt_latest" / "weights.safetensors", "truncated")
    warnings = []
    assert ckpt.find_intact_checkpoint(tmp_path, "latest", warn=warnings.append) == tmp_path / "ckpt_5"
    assert "ckpt_latest/weights.safetensors" in warnings[0]
    assert ckpt.find_intact_checkpoint(tmp_path, "iter_40") == tmp_path / "ckpt_iter_40"
    damage(tmp_path / "ckpt_5" / "state.pt", "empty")   # fine for inference, not for resuming
    assert ckpt.find_intact_checkpoint(tmp_path, "latest", warn=warnings.append) == tmp_path / "ckpt_5"
    assert ckpt.find_intact_checkpoint(tmp_path, "latest", with_state=True,
                                       warn=warnings.append) == tmp_path / "ckpt_iter_40"
