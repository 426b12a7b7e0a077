"""End to end: train 2 iterations of each model, then translate with test.py."""
import json
from pathlib import Path

import pytest
import torch

import test as test_entry
import train as train_entry
from imaging import make_paired, make_unpaired
from translate import checkpoint as ckpt

TINY = ["--netG", "resnet_6blocks", "--ngf", "8", "--ndf", "8", "--load_size", "36", "--crop_size", "32",
        "--display_id", "0", "--num_threads", "0", "--max_iters", "2", "--print_freq", "1", "--gpu_ids", "-1"]


@pytest.mark.parametrize("model,layout,test_model", [
    ("pix2pix", "paired", "pix2pix"),
    ("cycle_gan", "unpaired", "cycle_gan"),
    ("csgan", "paired", "csgan"),
    ("cycle_gan", "unpaired", "test"),
])
def test_train_two_iterations_then_test(tmp_path, model, layout, test_model):
    data = (make_paired if layout == "paired" else make_unpaired)(tmp_path / "data")
    common = ["--dataroot", str(data), "--name", "run", "--checkpoints_dir", str(tmp_path / "ck"), "--model", model]
    extra = ["--norm", "instance"] if model == "pix2pix" else []
    assert train_entry.main(common + TINY + extra) == 0
    run = tmp_path / "ck" / "run"
    weights, config = ckpt.load_checkpoint(run / "ckpt_latest")
    assert config["run"]["model"] == model and "gen_ab" in weights
    state = ckpt.load_training_state(run / "ckpt_latest")
    assert state["steps"] == 2
    log = [json.loads(line) for line in (run / "loss_log.jsonl").read_text().splitlines()]
    assert len(log) == 2 and all(all(v == v for v in e["losses"].values()) for e in log)
    assert "(epoch: 1, iters: 1" in (run / "loss_log.txt").read_text()
    assert "[default:" in (run / "train_opt.txt").read_text()
    assert (run / "web" / "index.html").exists()
    classic = {"pix2pix": ["G", "D"], "cycle_gan": ["G_A", "G_B", "D_A", "D_B"], "csgan": ["G_A", "G_B"]}[model]
    for net in classic:
        assert (run / f"latest_net_{net}.pth").exists()

    test_args = ["--dataroot", str(data / "testA") if test_model == "test" else str(data), "--name", "run",
                 "--checkpoints_dir", str(tmp_path / "ck"), "--results_dir", str(tmp_path / "res"),
                 "--model", test_model, "--num_test", "3", "--gpu_ids", "-1"] + TINY[:10]
    if test_model == "test":
        test_args += ["--model_suffix", "_A"]
    assert test_entry.main(test_args) == 0
    out = tmp_path / "res" / "run" / "test_latest"
    page = (out / "index.html").read_text()
    pngs = sorted((out / "images").glob("*.png"))
    labels = {"pix2pix": 3, "cycle_gan": 6, "csgan": 6, "test": 2}[test_model]
    assert len(pngs) == 3 * labels
    assert "fake" in page and pngs[0].name in page


def test_training_changes_the_weights_and_resume_continues(tmp_path):
    data = make_paired(tmp_path / "data")
    tiny = [a for a in TINY]
    tiny[tiny.index("--max_iters") + 1] = "1"
    argv = ["--dataroot", str(data), "--name", "r", "--checkpoints_dir", str(tmp_path / "ck"),
            "--model", "pix2pix", "--norm", "instance"]
    assert train_entry.main(argv + tiny) == 0
    first, _ = ckpt.load_checkpoint(tmp_path / "ck" / "r" / "ckpt_latest")
    assert train_entry.main(argv + TINY + ["--continue_train"]) == 0
    second, _ = ckpt.load_checkpoint(tmp_path / "ck" / "r" / "ckpt_latest")
    changed = [k for k in first["gen_ab"] if not torch.equal(first["gen_ab"][k], second["gen_ab"][k])]
    assert changed
    state = ckpt.load_training_state(tmp_path / "ck" / "r" / "ckpt_latest")
    assert state["steps"] == 2  # resumed after step 1, ran to --max_iters 2
    log = (tmp_path / "ck" / "r" / "loss_log.jsonl").read_text().splitlines()
    assert [json.loads(line)["iters"] for line in log] == [1, 2]


def test_test_py_reports_a_missing_checkpoint(tmp_path, capsys):
    data = make_unpaired(tmp_path / "data")
    code = test_entry.main(["--dataroot", str(data / "testA"), "--name", "nothing_here",
                            "--checkpoints_dir", str(tmp_path / "ck"), "--gpu_ids", "-1"])
    assert code == 1
    assert "no checkpoint 'latest'" in capsys.readouterr().err
