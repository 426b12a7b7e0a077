"""Run folders: one training at a time, stale locks taken over, no run replaced by accident,
nothing rewritten when there is nothing left to train."""
import hashlib
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

import train as train_entry
from imaging import make_paired
from translate import checkpoint as ckpt
from translate.training.run_lock import LOCK_NAME, RunInUse, RunLock

ROOT = Path(__file__).resolve().parent.parent
TINY = ["--model", "pix2pix", "--netG", "resnet_6blocks", "--norm", "instance", "--ngf", "4", "--ndf", "4",
        "--load_size", "32", "--crop_size", "32", "--display_id", "0", "--num_threads", "0", "--gpu_ids", "-1",
        "--print_freq", "1"]


@pytest.fixture
def argv(tmp_path) -> list[str]:
    data = make_paired(tmp_path / "data", n=2)
    return ["--dataroot", str(data), "--name", "run", "--checkpoints_dir", str(tmp_path / "ck"), *TINY]


def _snapshot(folder: Path) -> dict[str, tuple[str, int]]:
    """Every file's hash and modification time."""
    return {p.relative_to(folder).as_posix(): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_a_second_training_on_a_run_in_use_is_refused(argv, tmp_path, capsys):
    run_dir = tmp_path / "ck" / "run"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from translate.training.run_lock import RunLock; "
         "RunLock(sys.argv[1]).acquire(); print('locked', flush=True); time.sleep(120)", str(run_dir)],
        stdout=subprocess.PIPE, text=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        assert holder.stdout.readline().strip() == "locked"
        assert train_entry.main(argv + ["--max_iters", "1"]) == 1
        err = capsys.readouterr().err
        assert "in use by another training" in err and f"PID {holder.pid}" in err, err
        assert sorted(p.name for p in run_dir.iterdir()) == [LOCK_NAME]   # nothing written, lock untouched
        with pytest.raises(RunInUse):
            RunLock(run_dir).acquire()
    finally:
        holder.kill()
        holder.wait()
    # The holder is gone: its lock is stale now and the training takes it over.
    assert train_entry.main(argv + ["--max_iters", "1"]) == 0
    assert "took over the stale lock" in capsys.readouterr().out
    assert not (run_dir / LOCK_NAME).exists()


def test_a_stale_lock_with_a_dead_pid_is_taken_over(argv, tmp_path, capsys):
    run_dir = tmp_path / "ck" / "run"
    run_dir.mkdir(parents=True)
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    (run_dir / LOCK_NAME).write_text(json.dumps({"pid": gone.pid, "host": socket.gethostname(),
                                                 "started": time.time() - 3600, "command": ["train.py"]}))
    assert train_entry.main(argv + ["--max_iters", "1"]) == 0
    out = capsys.readouterr().out
    assert "took over the stale lock" in out and f"PID {gone.pid}" in out
    assert not (run_dir / LOCK_NAME).exists()   # released at exit


def test_a_lock_from_another_host_is_not_taken_over(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / LOCK_NAME).write_text(json.dumps({"pid": 1, "host": "elsewhere.example", "started": time.time()}))
    with pytest.raises(RunInUse, match="another host.*delete"):
        RunLock(run_dir).acquire()


def test_rerun_without_continue_train_refuses_and_start_over_starts_clean(argv, tmp_path, capsys):
    run_dir = tmp_path / "ck" / "run"
    # One epoch of 2 images, saved as ckpt_1 too; then the same command again.
    first = argv + ["--n_epochs", "1", "--n_epochs_decay", "0", "--save_epoch_freq", "1"]
    assert train_entry.main(first) == 0
    before = _snapshot(run_dir)
    assert "ckpt_1/weights.safetensors" in before and "ckpt_latest/weights.safetensors" in before
    capsys.readouterr()
    assert train_entry.main(argv + ["--max_iters", "1"]) == 1
    err = capsys.readouterr().err
    assert "already holds a training run" in err and "--continue_train" in err and "--start_over" in err, err
    assert "epoch 2, iteration 2" in err   # what is there, from ckpt_latest
    assert _snapshot(run_dir) == before   # nothing touched, nothing rewritten
    # --start_over: the old run's checkpoints and logs go; none is left that mismatches the new config.
    assert train_entry.main(argv + ["--max_iters", "1", "--start_over"]) == 0
    assert "--start_over: removed" in capsys.readouterr().out
    assert not (run_dir / "ckpt_1").exists() and not list(run_dir.glob("1_net_*.pth"))
    state = ckpt.load_training_state(run_dir / "ckpt_latest")
    assert state["steps"] == 1
    assert len((run_dir / "loss_log.jsonl").read_text().splitlines()) == 1   # a fresh log


def test_a_classic_run_folder_also_counts_as_a_run(argv, tmp_path, capsys):
    run_dir = tmp_path / "ck" / "run"
    run_dir.mkdir(parents=True)
    (run_dir / "latest_net_G.pth").write_bytes(b"classic weights")
    assert train_entry.main(argv + ["--max_iters", "1"]) == 1
    assert "--continue_train" in capsys.readouterr().err
    assert (run_dir / "latest_net_G.pth").read_bytes() == b"classic weights"


@pytest.mark.parametrize("resume", [
    ["--continue_train"],                                   # the run has finished all its epochs
    ["--continue_train", "--epoch", "1"],                   # an epoch checkpoint past the end
    ["--continue_train", "--n_epochs", "5", "--max_iters", "2"],   # --max_iters already reached
])
def test_nothing_to_train_leaves_every_checkpoint_as_it_is(argv, tmp_path, capsys, resume):
    run_dir = tmp_path / "ck" / "run"
    assert train_entry.main(argv + ["--n_epochs", "1", "--n_epochs_decay", "0", "--save_epoch_freq", "1"]) == 0
    before = _snapshot(run_dir)
    capsys.readouterr()
    extra = [] if "--n_epochs" in resume else ["--n_epochs", "1", "--n_epochs_decay", "0"]
    assert train_entry.main(argv + extra + resume) == 0
    out = capsys.readouterr().out
    assert "nothing to train" in out and "Training done" not in out, out
    assert ("Raise --max_iters" if "--max_iters" in resume else "Raise --n_epochs") in out, out
    assert _snapshot(run_dir) == before


def test_the_lock_is_released_when_training_fails(argv, tmp_path, capsys):
    (tmp_path / "data" / "train" / "zz_broken.png").write_bytes(b"not an image")
    assert train_entry.main(argv + ["--max_iters", "5", "--serial_batches"]) == 1
    assert "zz_broken.png" in capsys.readouterr().err
    assert not (tmp_path / "ck" / "run" / LOCK_NAME).exists()


def test_start_over_and_continue_train_exclude_each_other(argv, capsys):
    assert train_entry.main(argv + ["--continue_train", "--start_over"]) == 2
    assert "give one of them" in capsys.readouterr().err


def test_a_run_folder_that_cannot_be_created_is_a_message(argv, tmp_path, capsys):
    (tmp_path / "ck").write_text("a file where the checkpoints folder should be")
    assert train_entry.main(argv + ["--max_iters", "1"]) in (1, 2)   # a clean error, whichever check sees it
    err = capsys.readouterr().err
    assert str(tmp_path / "ck") in err and "Traceback" not in err, err
