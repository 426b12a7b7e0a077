"""Kill training hard at varied points: the newest checkpoint always loads and resuming goes on.

Also SIGTERM: a checkpoint is saved and the process says how to resume.
"""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from imaging import make_paired
from translate import checkpoint as ckpt

ROOT = Path(__file__).resolve().parent.parent


def _start(tmp_path, max_iters, *extra):
    argv = [sys.executable, str(ROOT / "train.py"), "--dataroot", str(tmp_path / "data"), "--name", "crash",
            "--checkpoints_dir", str(tmp_path / "ck"), "--model", "pix2pix", "--netG", "resnet_6blocks",
            "--norm", "instance", "--ngf", "4", "--ndf", "4", "--load_size", "32", "--crop_size", "32",
            "--display_id", "0", "--num_threads", "0", "--gpu_ids", "-1", "--save_latest_freq", "1",
            "--print_freq", "1", "--max_iters", str(max_iters), *extra]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)


def _wait_for_step(run: Path, at_least: int, proc, timeout=120) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None:
        found = ckpt.find_checkpoint(run, "latest")
        try:
            if found and ckpt.load_training_state(found)["steps"] >= at_least:
                return
        except Exception:  # a reader may race the writer's rename; try again
            pass
        time.sleep(0.05)
    raise AssertionError(f"training did not reach step {at_least}: {proc.stdout.read() if proc.poll() is not None else ''}")


@pytest.mark.slow
def test_sigkill_at_varied_points_never_breaks_the_newest_checkpoint(tmp_path):
    make_paired(tmp_path / "data", n=6)
    run = tmp_path / "ck" / "crash"
    steps_seen = []
    for attempt, delay in enumerate((0.0, 0.13, 0.29)):
        extra = ["--continue_train"] if attempt else []
        proc = _start(tmp_path, 10_000, *extra)
        _wait_for_step(run, (steps_seen[-1] if steps_seen else 0) + 1, proc)
        time.sleep(delay)  # land at different points of the save / step cycle
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        found = ckpt.find_checkpoint(run, "latest")
        weights, config = ckpt.load_checkpoint(found)
        state = ckpt.load_training_state(found)
        assert "gen_ab" in weights and config["run"]["model"] == "pix2pix"
        assert not steps_seen or state["steps"] > steps_seen[-1], "resume did not go on"
        steps_seen.append(state["steps"])
    final = _start(tmp_path, steps_seen[-1] + 2, "--continue_train")
    out, _ = final.communicate(timeout=180)
    assert final.returncode == 0, out
    assert ckpt.load_training_state(ckpt.find_checkpoint(run, "latest"))["steps"] == steps_seen[-1] + 2
    leftovers = [p.name for p in run.iterdir() if p.name.startswith(".") or p.name.endswith(".old")]
    assert not leftovers, leftovers  # the next saves cleared what the killed ones left


@pytest.mark.slow
def test_sigterm_saves_and_explains_how_to_resume(tmp_path):
    make_paired(tmp_path / "data", n=6)
    run = tmp_path / "ck" / "crash"
    proc = _start(tmp_path, 10_000, "--save_latest_freq", "100000")
    deadline = time.time() + 120
    while not (run / "loss_log.jsonl").exists() and time.time() < deadline:
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 143, out   # 128 + SIGTERM, as a shell reports it
    assert "--continue_train" in out
    assert ckpt.load_training_state(ckpt.find_checkpoint(run, "latest"))["steps"] >= 1
