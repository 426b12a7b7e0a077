"""--use_wandb: real tiny trainings in W&B's offline mode (nothing leaves the machine),
read back from the run's own .wandb file (tests/wandb_records.py)."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

pytest.importorskip("wandb")

import train as train_entry  # noqa: E402
from options import parse_train_options  # noqa: E402
from wandb_records import history, read_finished_run, run_info  # noqa: E402

TINY = ["--ngf", "8", "--ndf", "8", "--netG", "resnet_6blocks", "--crop_size", "32", "--load_size", "32",
        "--num_threads", "0", "--print_freq", "1", "--display_freq", "1", "--gpu_ids", "-1",
        "--save_epoch_freq", "1000", "--use_wandb"]
VISUALS = {"real_A", "fake_B", "rec_A", "idt_B", "real_B", "fake_A", "rec_B", "idt_A"}


@pytest.fixture
def offline(tmp_path, monkeypatch):
    """W&B offline, every file it writes under tmp_path."""
    for key, folder in (("WANDB_DIR", "wandb_dir"), ("WANDB_CONFIG_DIR", "wandb_config"),
                        ("WANDB_CACHE_DIR", "wandb_cache"), ("WANDB_DATA_DIR", "wandb_data")):
        (tmp_path / folder).mkdir()
        monkeypatch.setenv(key, str(tmp_path / folder))
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    return tmp_path / "wandb_dir" / "wandb"


def _train(checkpoints: Path, iters: int, *extra: str) -> Path:
    argv = ["--name", "wb", "--checkpoints_dir", str(checkpoints), "--max_iters", str(iters), *TINY, *extra]
    assert train_entry.main(argv) == 0
    return checkpoints / "wb"


def _offline_runs(wandb_dir: Path) -> list[Path]:
    return sorted(wandb_dir.glob("offline-run-*"))


def _records(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "loss_log.jsonl").read_text().splitlines()]


def test_the_classic_flags_and_default_project():
    assert parse_train_options(["--use_wandb"]).display.use_wandb
    assert parse_train_options([]).display.wandb_project_name == "CycleGAN-and-pix2pix"
    assert not parse_train_options([]).display.use_wandb


@pytest.mark.slow
def test_offline_run_holds_losses_visuals_and_config_with_visdom_off(offline, tmp_path):
    # --display_id 0 turns Visdom off; W&B and TensorBoard stay on (the classic code's #1616).
    run = _train(tmp_path / "ck", 3, "--display_id", "0", "--use_tensorboard",
                 "--wandb_project_name", "tiny-proj", "--lr", "0.0003")
    (wandb_run,) = _offline_runs(offline)
    records = read_finished_run(wandb_run)
    meta, config = run_info(records)
    assert (meta.project, meta.display_name) == ("tiny-proj", "wb")
    assert (run / "wandb_run_id.txt").read_text().strip() == meta.run_id
    # The config is the classic one: every flag with its value.
    assert config["name"] == "wb" and config["lr"] == 3e-4 and config["display_id"] == 0
    assert config["use_wandb"] is True and config["model"] == "cycle_gan"
    rows = history(records)
    logged = _records(run)
    assert sorted(rows) == [r["total_iters"] for r in logged] == [1, 2, 3]
    for record in logged:
        row = rows[record["total_iters"]]
        for name, value in record["losses"].items():
            assert row[f"loss/{name}"] == pytest.approx(value, rel=1e-9)
        assert row["lr/G"] == pytest.approx(3e-4) and row["speed/images_per_s"] == pytest.approx(
            record["images_per_s"])
        pictures = {key.split("/")[1] for key in row if key.startswith("visuals/") and key.endswith("/path")}
        assert pictures == VISUALS
        for label in VISUALS:   # the image files W&B will upload
            assert (wandb_run / "files" / row[f"visuals/{label}/path"]).stat().st_size > 0
            assert (row[f"visuals/{label}/width"], row[f"visuals/{label}/height"]) == (32, 32)
    assert list((run / "tensorboard").glob("events.out.tfevents.*"))


@pytest.mark.slow
def test_continue_train_resumes_the_same_wandb_run(offline, tmp_path):
    run = _train(tmp_path / "ck", 2, "--display_id", "0")
    _train(tmp_path / "ck", 3, "--display_id", "0", "--continue_train")
    first, second = _offline_runs(offline)
    meta_1, _ = run_info(read_finished_run(first))
    meta_2, config_2 = run_info(read_finished_run(second))
    assert meta_1.run_id == meta_2.run_id == (run / "wandb_run_id.txt").read_text().strip()
    assert config_2["continue_train"] is True
    assert sorted(history(read_finished_run(second))) == [3]


def test_without_wandb_installed_training_does_not_start(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "wandb", None)   # what `import wandb` sees when it is absent
    assert train_entry.main(["--checkpoints_dir", str(tmp_path), *TINY]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        'train.py: error: --use_wandb needs the wandb package: pip install -e ".[wandb]" (or pip install wandb)']
    assert not any(tmp_path.iterdir())   # stopped before any work
