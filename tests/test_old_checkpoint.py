"""A checkpoint written by main at 3084cbc, before checkpoints recorded their networks
(tests/data/old_main_pix2pix, see HOW.md there), still loads from its config: with
load_generators, test.py and translate.load_translator, and a training resumes from it."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

import test as test_entry
import train as train_entry
import translate
from options.config import NetworkConfig
from translate import checkpoint as ckpt
from translate.inference.loading import load_generators

FIXTURE = Path(__file__).parent / "data" / "old_main_pix2pix"
EXPECTED = json.loads((FIXTURE / "expected_output.json").read_text())
# The flags it was trained with (HOW.md), for test.py and the resume.
NETS = ["--model", "pix2pix", "--netG", "unet_64", "--crop_size", "64", "--load_size", "64", "--gpu_ids", "-1"]


@pytest.fixture
def run_dir(tmp_path) -> Path:
    run = tmp_path / "ck" / "old_main"
    shutil.copytree(FIXTURE / "ckpt_latest", run / "ckpt_latest")
    return run


def _input() -> torch.Tensor:
    return torch.linspace(-1, 1, 3 * 64 * 64).reshape(1, 3, 64, 64)


def _matches_old_main(y: torch.Tensor) -> None:
    assert y.shape == (1, 3, 64, 64)
    assert [float(v) for v in y.flatten()[:8]] == pytest.approx(EXPECTED["output_first"], abs=1e-6)
    assert float(y.double().sum()) == pytest.approx(EXPECTED["output_sum"], abs=1e-3)


def test_it_has_no_network_records_and_loads_from_its_config(run_dir):
    assert ckpt.load_network_records(run_dir / "ckpt_latest") is None
    loaded = load_generators(run_dir, "latest", model="pix2pix", net=NetworkConfig())  # net: ignored, config used
    gen = loaded.generators["gen_ab"].eval()
    assert loaded.net.netG == "unet_64" and loaded.net.ngf == 2
    with torch.no_grad():
        _matches_old_main(gen(_input()))


def test_load_translator_gives_old_mains_output(run_dir):
    translator = translate.load_translator(run_dir, device="cpu")
    _matches_old_main(translator(_input()))


def test_test_py_translates_with_it(run_dir, tmp_path):
    argv = ["--name", "old_main", "--checkpoints_dir", str(run_dir.parent), "--results_dir", str(tmp_path / "res"),
            "--num_test", "1"] + NETS
    assert test_entry.main(argv) == 0
    assert list((tmp_path / "res").rglob("*.png"))


def test_training_resumes_from_it_and_then_records_its_networks(run_dir):
    argv = ["--name", "old_main", "--checkpoints_dir", str(run_dir.parent), "--ngf", "2", "--ndf", "2",
            "--max_dataset_size", "1", "--n_epochs", "2", "--n_epochs_decay", "0", "--continue_train",
            "--display_id", "0", "--num_threads", "0", "--no_html", "--seed", "0"] + NETS
    before, _ = ckpt.load_checkpoint(run_dir / "ckpt_latest")
    assert train_entry.main(argv) == 0
    latest = run_dir / "ckpt_latest"
    assert ckpt.load_training_state(latest)["total_iters"] == 2   # one more iteration after the old one
    after, _ = ckpt.load_checkpoint(latest)
    assert after["gen_ab"].keys() == before["gen_ab"].keys()
    assert not all(torch.equal(before["gen_ab"][k], after["gen_ab"][k]) for k in before["gen_ab"])
    records = ckpt.load_network_records(latest)
    assert records["gen_ab"]["name"] == "unet_64" and records["gen_ab"]["args"]["base_channels"] == 2
    assert records["disc_b"]["name"] == "basic" and records["disc_b"]["args"]["in_channels"] == 6
