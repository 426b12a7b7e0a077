"""End to end: train 2 iterations of each model, then translate with test.py.

Parametrized over the model table (translate/models.py): a new --model is tested here by being
registered.  A test-only model (--model test) translates with a run of an unpaired one.
"""
import json
from pathlib import Path

import pytest
import torch

import test as test_entry
import train as train_entry
from imaging import make_paired, make_unpaired
from translate import checkpoint as ckpt
from translate.models import MODELS, TRAINABLE

TINY = ["--netG", "resnet_6blocks", "--ngf", "8", "--ndf", "8", "--load_size", "36", "--crop_size", "32",
        "--display_id", "0", "--num_threads", "0", "--max_iters", "2", "--print_freq", "1", "--gpu_ids", "-1"]


# (model trained, model tested): each trainable model with itself; each test-only model (one folder
# of A images) with a run of the first unpaired trainable model, whose data has a testA folder.
UNPAIRED = next(m for m in TRAINABLE if not MODELS[m].paired)
CASES = [(m, m) for m in TRAINABLE] + [(UNPAIRED, m) for m in MODELS if not MODELS[m].trainable]


@pytest.mark.parametrize("model,test_model", CASES)
def test_train_two_iterations_then_test(tmp_path, model, test_model):
    spec, shown = MODELS[model], MODELS[test_model]
    data = (make_paired if spec.paired else make_unpaired)(tmp_path / "data")
    common = ["--dataroot", str(data), "--name", "run", "--checkpoints_dir", str(tmp_path / "ck"), "--model", model]
    extra = ["--norm", "instance"]   # batch norm (a model default) on 2 images of 32 px says little
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
    assert set(weights) == set(spec.generators) | set(spec.discriminators)
    for net in spec.classic_names.values():
        assert (run / f"latest_net_{net}.pth").exists()

    one_folder = not shown.trainable   # a test-only model reads one folder of A images
    test_args = ["--dataroot", str(data / "testA") if one_folder else str(data), "--name", "run",
                 "--checkpoints_dir", str(tmp_path / "ck"), "--results_dir", str(tmp_path / "res"),
                 "--model", test_model, "--num_test", "3", "--gpu_ids", "-1"] + TINY[:10]
    if one_folder:   # load gen_ab's classic file by its suffix: G_A -> "_A", G -> ""
        test_args += ["--model_suffix", spec.classic_names["gen_ab"][1:]]
    assert test_entry.main(test_args) == 0
    out = tmp_path / "res" / "run" / "test_latest"
    page = (out / "index.html").read_text()
    pngs = sorted((out / "images").glob("*.png"))
    rows = MODELS[test_model if one_folder else model].rows
    assert len(pngs) == 3 * len(rows)
    assert all(sum(p.name.endswith(f"_{label}.png") for p in pngs) == 3 for label in rows)
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
