"""Real 2-process CPU training (gloo) through torchrun: sharding, sync, rank-0 files, resume."""
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from imaging import make_paired

WORKER = Path(__file__).with_name("dist_worker.py")
ARGS = ["--model", "pix2pix", "--netG", "resnet_6blocks", "--norm", "syncbatch", "--ngf", "4", "--ndf", "4",
        "--load_size", "32", "--crop_size", "32", "--display_id", "0", "--num_threads", "0", "--gpu_ids", "-1",
        "--name", "ddp", "--checkpoints_dir", "ck", "--batch_size", "2"]


def _torchrun(tmp_path, out, steps, extra=()):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
           "--master_port", str(port),
           str(WORKER), str(out), str(steps), "--dataroot", str(tmp_path / "data"), *ARGS, *extra]
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stderr[-3000:]
    return [json.loads((out / f"trace{r}.json").read_text()) for r in (0, 1)]


@pytest.mark.slow
def test_two_processes_shard_data_sync_weights_and_only_rank0_writes(tmp_path):
    make_paired(tmp_path / "data", n=12)  # 3 steps per epoch per rank
    first = _torchrun(tmp_path, tmp_path / "run", steps=2)
    assert all(t["world"] == 2 and t["ddp"] == "DistributedDataParallel" for t in first)
    for step in range(2):
        a, b = (t["trace"][step] for t in first)
        assert set(a["paths"]).isdisjoint(b["paths"]), "both ranks trained on the same images"
        assert a["checksum"] == pytest.approx(b["checksum"], rel=1e-6), "weights differ across ranks"
    assert (tmp_path / "run" / "rank0" / "ck" / "ddp" / "ckpt_latest" / "weights.safetensors").exists()
    assert not any((tmp_path / "run" / "rank1").rglob("*")), "rank 1 wrote files"

    # Resume in both processes from rank 0's checkpoint: training continues from step 2.
    (tmp_path / "resume" / "rank1").mkdir(parents=True)
    os.symlink(tmp_path / "run" / "rank0" / "ck", tmp_path / "resume" / "rank1" / "ck")
    (tmp_path / "resume" / "rank0").mkdir()
    os.symlink(tmp_path / "run" / "rank0" / "ck", tmp_path / "resume" / "rank0" / "ck")
    second = _torchrun(tmp_path, tmp_path / "resume", steps=1, extra=["--continue_train"])
    a, b = (t["trace"][0] for t in second)
    assert a["checksum"] == pytest.approx(b["checksum"], rel=1e-6)
    seen_before = {p for t in first for s in t["trace"] for p in s["paths"]}
    assert not (set(a["paths"]) | set(b["paths"])) & seen_before, "resume repeated images of the epoch"


@pytest.mark.slow
def test_train_py_under_accelerate_launch(tmp_path):
    make_paired(tmp_path / "data", n=4)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    # --multi_gpu selects accelerate's torchrun-based launcher; with --gpu_ids -1 the
    # processes train on the CPU over gloo (its --cpu launcher needs MPI for several processes).
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
           "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
           "--main_process_port", str(port), str(WORKER.parent.parent / "train.py"),
           "--dataroot", str(tmp_path / "data"), *ARGS[:-6], "--name", "acc",
           "--checkpoints_dir", str(tmp_path / "ck"), "--max_iters", "2", "--batch_size", "2", "--use_tensorboard"]
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    from translate import checkpoint as ckpt
    state = ckpt.load_training_state(tmp_path / "ck" / "acc" / "ckpt_latest")
    assert state["steps"] == 2 and state["total_iters"] == 2 * 2 * 2  # 2 steps x 2 processes x batch 2
    assert len(list((tmp_path / "ck" / "acc" / "tensorboard").glob("events.*"))) == 1, "not only rank 0 logs"
