"""Exact resume: N iterations + resume + N more == 2N iterations straight, bit for bit."""
import re

import pytest
import torch

import train as train_entry
from imaging import make_paired, make_unpaired
from translate import checkpoint as ckpt

TINY = ["--netG", "resnet_6blocks", "--ngf", "4", "--ndf", "4", "--load_size", "40", "--crop_size", "32",
        "--display_id", "0", "--num_threads", "1", "--print_freq", "1", "--gpu_ids", "-1", "--deterministic",
        "--save_latest_freq", "1000", "--save_epoch_freq", "1000"]


def _train(tmp_path, data, name, model, iters, *extra):
    argv = ["--dataroot", str(data), "--name", name, "--checkpoints_dir", str(tmp_path / "ck"),
            "--model", model, "--max_iters", str(iters), *TINY, *extra]
    assert train_entry.main(argv) == 0
    return ckpt.load_checkpoint(tmp_path / "ck" / name / "ckpt_latest")[0]


@pytest.mark.parametrize("model,extra", [
    # Unpaired: random B partners, random crops and flips, an image pool, two epochs of 3 steps.
    ("cycle_gan", ["--pool_size", "2", "--batch_size", "2"]),
    # Paired with dropout (global torch RNG) and a resume in the middle of an epoch.
    ("pix2pix", ["--norm", "instance"]),
])
def test_resume_is_bit_exact(tmp_path, model, extra):
    data = (make_unpaired if model == "cycle_gan" else make_paired)(tmp_path / "data", n=5)
    straight = _train(tmp_path, data, "straight", model, 4, *extra)
    _train(tmp_path, data, "resumed", model, 2, *extra)
    resumed = _train(tmp_path, data, "resumed", model, 4, *extra, "--continue_train")
    assert straight.keys() == resumed.keys()
    for net in straight:
        for key in straight[net]:
            assert torch.equal(straight[net][key], resumed[net][key]), f"{net}.{key} differs"
    state = ckpt.load_training_state(tmp_path / "ck" / "resumed" / "ckpt_latest")
    assert state["steps"] == 4
    # The resumed run's loss plot goes on from the first part: the same picture as the straight run's.
    plot = lambda name: re.search(r'<div class="plot">.*?</div>',
                                  (tmp_path / "ck" / name / "web" / "index.html").read_text(), re.S).group(0)
    assert plot("resumed") == plot("straight") and plot("straight").count("<polyline") >= 2
