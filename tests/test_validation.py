"""Validation during training (--val_freq, --val_metrics), --save_best, and test.py --metrics."""
import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from imaging import make_paired, make_unpaired
from script_module import load_script
from tiny_inception import tiny_inception
from options import OptionsError, parse_train_options
from translate import checkpoint as ckpt
from translate.training.trainer import Trainer

ROOT = Path(__file__).resolve().parent.parent


def _args(tmp_path, model="pix2pix", extra=()):
    net = ["--netG", "resnet_6blocks"] if model == "pix2pix" else ["--netG", "resnet_6blocks", "--netD", "pixel"]
    return ["--dataroot", str(tmp_path / "data"), "--model", model, *net, "--ngf", "4", "--ndf", "4",
            "--load_size", "32", "--crop_size", "32", "--display_id", "0", "--num_threads", "0",
            "--gpu_ids", "-1", "--name", "v", "--checkpoints_dir", str(tmp_path / "ck"),
            "--n_epochs", "1", "--n_epochs_decay", "0", "--inception", tiny_inception(tmp_path),
            "--kid_subsets", "10", *extra]


def _metric_records(run_dir):
    lines = (run_dir / "loss_log.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if "metrics" in r]


@pytest.mark.parametrize("argv, message", [
    (["--val_freq", "2", "--val_metrics", "kid,sharpness"], "unknown metric sharpness"),
    (["--val_freq", "2", "--val_metrics", "kid", "--save_best", "psnr"], "--save_best psnr is not computed"),
    (["--save_best", "kid"], "needs validation"),
])
def test_bad_metric_flags_fail_at_start_up(tmp_path, argv, message):
    make_paired(tmp_path / "data", n=2)
    with pytest.raises(OptionsError, match=message):
        parse_train_options(_args(tmp_path, extra=argv))


def test_negative_val_freq_stops_while_parsing(tmp_path, capsys):
    make_paired(tmp_path / "data", n=2)
    with pytest.raises(SystemExit):  # its range is checked by argparse (options/ranges.py)
        parse_train_options(_args(tmp_path, extra=["--val_freq", "-1"]))
    assert "--val_freq: '-1' is not an integer" in capsys.readouterr().err


def test_paired_metrics_refused_on_unpaired_data(tmp_path):
    with pytest.raises(OptionsError, match="need paired data"):
        parse_train_options(_args(tmp_path, "cycle_gan", ["--val_freq", "2", "--val_metrics", "ssim"]))


def test_defaults_follow_the_data():
    paired = parse_train_options(["--model", "pix2pix", "--val_freq", "5"]).metrics.val_metrics
    unpaired = parse_train_options(["--model", "cycle_gan", "--val_freq", "5"]).metrics.val_metrics
    assert paired == ("l1", "psnr", "ssim", "kid") and unpaired == ("kid", "fid")


@pytest.mark.slow
def test_validation_logs_plots_keeps_best_and_resumes_with_it(tmp_path):
    make_paired(tmp_path / "data", n=4, phases=("train", "test", "val"))
    run_dir = tmp_path / "ck" / "v"
    argv = _args(tmp_path, extra=["--n_epochs", "3", "--val_freq", "2", "--save_best", "l1", "--max_iters", "4"])
    trainer = Trainer(parse_train_options(argv))
    assert trainer.validator.data_cfg.phase == "val"   # the dataroot has a val split
    trainer.fit()
    records = _metric_records(run_dir)
    assert [r["total_iters"] for r in records] == [2, 4]
    assert set(records[0]["metrics"]) == {"l1", "psnr", "ssim", "kid"}
    assert "validation l1:" in (run_dir / "loss_log.txt").read_text()
    page = (run_dir / "web" / "index.html").read_text()
    assert "Validation metrics" in page and 'data-loss="ssim"' in page
    assert (run_dir / "ckpt_best" / "weights.safetensors").exists() and (run_dir / "best_net_G.pth").exists()
    best = ckpt.load_training_state(run_dir / "ckpt_latest")["best"]
    assert best["metric"] == "l1" and best["value"] == pytest.approx(min(r["metrics"]["l1"] for r in records))
    assert len(list((run_dir / "metrics_cache").glob("real_B_*.npy"))) == 1   # real features: once

    # --continue_train keeps the best so far: with an unbeatable best on record, ckpt_best stays.
    state_file = run_dir / "ckpt_latest" / "state.pt"
    state = torch.load(state_file, weights_only=True)
    state["best"] = {"metric": "l1", "value": 0.0, "total_iters": 4}
    torch.save(state, state_file)
    ckpt._write_manifest(state_file.parent, state)   # a hand-edited state.pt would otherwise read as damaged
    stamp = (run_dir / "ckpt_best" / "weights.safetensors").stat().st_mtime_ns
    resumed = Trainer(parse_train_options(argv[:-2] + ["--max_iters", "6", "--continue_train"]))
    assert resumed.best["value"] == 0.0
    resumed.fit()
    assert _metric_records(run_dir)[-1]["total_iters"] == 6
    assert (run_dir / "ckpt_best" / "weights.safetensors").stat().st_mtime_ns == stamp
    assert ckpt.load_training_state(run_dir / "ckpt_latest")["best"]["value"] == 0.0
    page = (run_dir / "web" / "index.html").read_text()   # the plot holds both runs' validations
    metric_part = page.split("Validation metrics")[1]   # pix2pix also has a loss named l1 above
    line = re.search(r'data-loss="l1"[^>]*points="([^"]*)"', metric_part).group(1)
    assert len(line.split()) == 3

    # test.py --epoch best --metrics and python -m translate --epoch best use ckpt_best.
    import test as test_py
    results = tmp_path / "results"
    code = test_py.main(["--dataroot", str(tmp_path / "data"), "--model", "pix2pix", "--name", "v",
                         "--checkpoints_dir", str(tmp_path / "ck"), "--epoch", "best", "--metrics",
                         "--gpu_ids", "-1", "--load_size", "32", "--crop_size", "32",
                         "--results_dir", str(results), "--inception", tiny_inception(tmp_path)])
    assert code == 0
    metrics = json.loads((results / "v" / "test_best" / "metrics.json").read_text())
    assert set(metrics) == {"fake_B"} and metrics["fake_B"]["against"] == "real_B"
    assert {"fid", "kid", "l1", "psnr", "ssim"} <= set(metrics["fake_B"])
    page = (results / "v" / "test_best" / "index.html").read_text()
    assert "Metrics" in page and "KID x 1000" in page
    from translate.__main__ import main as translate_main
    assert translate_main([str(tmp_path / "data" / "test"), "--name", "v", "--checkpoints_dir",
                           str(tmp_path / "ck"), "--epoch", "best", "--output", str(tmp_path / "out"),
                           "--gpu_ids", "-1", "--num_workers", "0", "--no_progress"]) == 0
    assert len(list((tmp_path / "out").glob("*.png"))) == 4


def test_unpaired_validation_both_directions_leaves_training_rng_alone(tmp_path):
    make_unpaired(tmp_path / "data", n=3)
    trainer = Trainer(parse_train_options(_args(tmp_path, "cycle_gan", ["--val_freq", "100"])))
    assert trainer.validator.data_cfg.phase == "test"   # no val split here
    before = torch.get_rng_state()
    metrics = trainer.validate()
    assert torch.equal(before, torch.get_rng_state())
    assert {"kid", "fid", "kid_AtoB", "kid_BtoA", "fid_AtoB", "fid_BtoA"} <= set(metrics)
    assert metrics["kid"] == pytest.approx((metrics["kid_AtoB"] + metrics["kid_BtoA"]) / 2)
    assert all(trainer.raw_nets[n].training for n in trainer.gen_names)   # back in training mode


def test_test_py_metrics_on_unpaired_data_and_refusal_without_targets(tmp_path, capsys):
    make_unpaired(tmp_path / "data", n=3)
    Trainer(parse_train_options(_args(tmp_path, "cycle_gan", ["--max_iters", "1"]))).fit()
    import test as test_py
    common = ["--dataroot", str(tmp_path / "data"), "--name", "v", "--checkpoints_dir", str(tmp_path / "ck"),
              "--gpu_ids", "-1", "--load_size", "32", "--crop_size", "32", "--results_dir",
              str(tmp_path / "res"), "--metrics", "--inception", tiny_inception(tmp_path)]
    assert test_py.main(common + ["--model", "cycle_gan"]) == 0
    metrics = json.loads((tmp_path / "res" / "v" / "test_latest" / "metrics.json").read_text())
    assert metrics["fake_B"]["against"] == "real_B" and metrics["fake_A"]["against"] == "real_A"
    assert "l1" not in metrics["fake_B"] and metrics["fake_B"]["kid"] is not None
    capsys.readouterr()
    code = test_py.main(common + ["--model", "test", "--dataset_mode", "single",
                                  "--dataroot", str(tmp_path / "data" / "testA"), "--model_suffix", "_A"])
    err = capsys.readouterr().err
    assert code == 1 and "--metrics needs target images" in err and len(err.strip().splitlines()) == 1


@pytest.mark.slow   # two torchrun processes: ~30 s on the shared 2-core machine
def test_two_processes_validate_without_deadlock(tmp_path):
    make_paired(tmp_path / "data", n=4)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    argv = _args(tmp_path, extra=["--val_freq", "2", "--save_best", "ssim", "--max_iters", "2",
                                  "--batch_size", "1"])
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
           "--master_port", str(port), str(ROOT / "train.py"), *argv]
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    run_dir = tmp_path / "ck" / "v"
    assert [r["total_iters"] for r in _metric_records(run_dir)] == [2, 4]   # 2 processes x 1 image a step
    assert (run_dir / "ckpt_best" / "weights.safetensors").exists()
    assert ckpt.load_training_state(run_dir / "ckpt_latest")["best"]["metric"] == "ssim"


@pytest.mark.slow   # a training run and a test run in subprocesses: ~40 s on the shared machine
def test_quality_table_script_prints_and_appends_a_row(tmp_path):
    make_paired(tmp_path / "data", n=3)
    out = tmp_path / "table.md"
    cmd = [sys.executable, str(ROOT / "scripts" / "quality_table.py"), "--model", "pix2pix", "--dataroot", "data",
           "--budget_minutes", "0.05", "--step_seconds", "1.5", "--common", "--load_size 32 --crop_size 32 --gpu_ids -1 --netG resnet_6blocks "
           "--ngf 4 --ndf 4 --num_threads 0", "--test", f"--inception {tiny_inception(tmp_path)}",
           "--out", str(out)]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=tmp_path,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    table = out.read_text().splitlines()
    assert table[0].startswith("| model | command | budget | minutes | iterations") and len(table) == 3
    cells = [c.strip() for c in table[2].split("|")[1:-1]]
    # 0.05 min at 1.5 s a step: 2 iterations.
    assert cells[0] == "pix2pix" and cells[2] == "0.05 min at 1.500 s/step" and cells[4] == "2"
    assert "--max_iters 2" in cells[1] and cells[5].startswith("fake_B vs real_B (n=3)")
    assert all(cells[i] for i in range(6, 11))   # FID, KID, L1, PSNR, SSIM all filled in


def test_quality_table_budget_in_minutes_becomes_iterations():
    qt = load_script("quality_table")
    args = qt.build_parser().parse_args(["--model", "pix2pix", "--dataroot", "d", "--budget_minutes", "10",
                                         "--step_seconds", "0.513"])
    assert qt.budget_iterations(args) == (1170, "10 min at 0.513 s/step")
    args = qt.build_parser().parse_args(["--model", "pix2pix", "--dataroot", "d", "--iters", "7"])
    assert qt.budget_iterations(args) == (7, "7 iterations")
    with pytest.raises(SystemExit):   # one budget, not both
        qt.build_parser().parse_args(["--model", "pix2pix", "--dataroot", "d", "--iters", "7",
                                      "--budget_minutes", "1"])


@pytest.mark.slow   # builds a Trainer and runs ten training steps: ~10 s on the shared machine
def test_quality_table_measures_the_step_cost_when_not_given(tmp_path, monkeypatch):
    """Without --step_seconds the cost is measured: one thread, CPU seconds of the real train step."""
    monkeypatch.chdir(tmp_path)
    qt = load_script("quality_table")
    args = qt.build_parser().parse_args(["--model", "pix2pix", "--dataroot", "d", "--budget_minutes", "0.5",
                                         "--common", "--netG resnet_6blocks --load_size 32 --crop_size 32",
                                         "--train", "--ngf 4 --ndf 4"])
    iters, budget = qt.budget_iterations(args)
    seconds = float(budget.split(" at ")[1].split(" s/step")[0])
    assert 0 < seconds < 5 and iters == pytest.approx(30 / seconds, rel=0.02), budget
