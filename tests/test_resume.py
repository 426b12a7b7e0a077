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


def test_resume_refuses_options_that_build_another_network(tmp_path, capsys):
    # vit_siren's decode overlap changes no weight shape: without the check its weights would load
    # into a network that decodes differently, and the run would silently go on as another one.
    data = make_paired(tmp_path / "data", n=3)
    run = ["--dataroot", str(data), "--name", "vit", "--checkpoints_dir", str(tmp_path / "ck"), "--model", "pix2pix",
           "--netG", "vit_siren", "--netD", "vit", "--vit_depth", "1", "--vit_patch_size", "8", "--vit_pixel_skip", "4",
           "--load_size", "40", "--crop_size", "32", "--display_id", "0", "--num_threads", "1", "--gpu_ids", "-1"]
    trained = ["--vit_dim", "32", "--vit_heads", "2", "--vit_decode_overlap", "0"]
    assert train_entry.main([*run, *trained, "--max_iters", "1"]) == 0
    again = [*run, "--max_iters", "2", "--continue_train"]
    capsys.readouterr()
    assert train_entry.main([*again, "--vit_dim", "32", "--vit_heads", "2"]) == 1   # the overlap left out
    assert "it was trained with --vit_decode_overlap 0. Give those settings" in capsys.readouterr().err
    assert train_entry.main([*again, "--vit_dim", "64", "--vit_heads", "4", "--vit_decode_overlap", "0"]) == 1
    # G and D both take the width and heads: each network is named, each flag said once.
    assert "holds gen_ab, disc_b built with other settings" in (err := capsys.readouterr().err)
    assert "it was trained with --vit_dim 32, --vit_heads 2." in err
    assert train_entry.main([*again, *trained]) == 0
    assert ckpt.load_training_state(tmp_path / "ck" / "vit" / "ckpt_latest")["steps"] == 2
