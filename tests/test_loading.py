"""translate/inference/loading.py: classic run folders, read with train.py's own parser."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from options.config import NetworkConfig
from translate.checkpoint import CheckpointError
from translate.inference.loading import classic_settings, load_run_generator, load_source
from translate.networks import make_generator


def _train_opt(folder: Path, **flags) -> None:
    """A train_opt.txt as the classic code prints it (``key: value  [default: ...]``)."""
    lines = ["----------------- Options ---------------"]
    lines += [f"{key:>25}: {str(value):<30}\t[default: x]" for key, value in flags.items()]
    lines += ["----------------- End -------------------"]
    (folder / "train_opt.txt").write_text("\n".join(lines) + "\n")


def _classic_file(path: Path, net: NetworkConfig, in_nc: int, out_nc: int) -> torch.nn.Module:
    g = make_generator(net, in_nc, out_nc)
    torch.save(g.state_dict(), path)
    return g


def test_a_classic_pix2pix_run_loads_with_its_train_opt(tmp_path):
    run = tmp_path / "facades"
    run.mkdir()
    net = NetworkConfig(netG="resnet_6blocks", ngf=8, norm="batch", use_dropout=False, input_nc=1, output_nc=3)
    saved = _classic_file(run / "latest_net_G.pth", net, 1, 3)
    _train_opt(run, model="pix2pix", netG="resnet_6blocks", ngf=8, norm="batch", no_dropout=True, input_nc=1,
               output_nc=3, crop_size=64, direction="BtoA", gpu_ids="0", isTrain=True, lambda_L1=100.0)
    loaded = load_run_generator(str(tmp_path), "facades")
    assert (loaded.in_channels, loaded.out_channels, loaded.size, loaded.direction) == (1, 3, 64, "BtoA")
    assert "--model pix2pix" in loaded.description
    x = torch.rand(1, 1, 32, 32) * 2 - 1
    with torch.no_grad():
        assert torch.equal(loaded.module(x), saved.eval()(x))
    with pytest.raises(CheckpointError, match="needs a two-generator model"):
        load_run_generator(str(tmp_path), "facades", direction="AtoB")


def test_without_train_opt_the_parser_gives_the_classic_model_defaults(tmp_path):
    (tmp_path / "latest_net_G.pth").touch()
    model, net, direction = classic_settings(tmp_path, "latest")
    assert (model.name, net.netG, net.norm, net.use_dropout, net.crop_size, direction) == \
        ("pix2pix", "unet_256", "batch", True, 256, "AtoB")
    (tmp_path / "latest_net_G_A.pth").touch()
    (tmp_path / "latest_net_G_B.pth").touch()
    model, net, _ = classic_settings(tmp_path, "latest")
    assert (model.name, net.netG, net.norm, net.use_dropout) == ("cycle_gan", "resnet_9blocks", "instance", False)


def test_values_the_parser_refuses_keep_their_defaults_and_files_decide_the_model(tmp_path):
    (tmp_path / "latest_net_G.pth").touch()
    # A published CycleGAN generator: one G file, though its train_opt.txt says cycle_gan.
    _train_opt(tmp_path, model="cycle_gan", ngf="abc", norm="fancy", netG="resnet_9blocks", no_dropout=True,
               input_nc=0, direction="sideways")
    model, net, direction = classic_settings(tmp_path, "latest")
    assert model.name == "pix2pix"
    assert (net.ngf, net.norm, net.input_nc, direction) == (64, "batch", 3, "AtoB")   # refused: defaults
    assert (net.netG, net.use_dropout) == ("resnet_9blocks", False)                   # accepted


def test_a_two_file_classic_run_translates_both_ways(tmp_path):
    run = tmp_path / "h2z"
    run.mkdir()
    net = NetworkConfig(netG="resnet_6blocks", ngf=8, input_nc=3, output_nc=1)
    _classic_file(run / "5_net_G_A.pth", net, 3, 1)
    back = _classic_file(run / "5_net_G_B.pth", net, 1, 3)
    _train_opt(run, netG="resnet_6blocks", ngf=8, no_dropout=True, output_nc=1)
    loaded = load_run_generator(str(tmp_path), "h2z", "5", direction="BtoA")
    assert (loaded.in_channels, loaded.out_channels, loaded.direction) == (1, 3, "BtoA")
    assert loaded.description.startswith("gen_ba")
    x = torch.rand(1, 1, 32, 32) * 2 - 1
    with torch.no_grad():
        assert torch.equal(loaded.module(x), back.eval()(x))


def test_a_bare_classic_file_is_recognised_from_its_tensors(tmp_path):
    net = NetworkConfig(netG="resnet_9blocks", ngf=64, norm="instance")
    _classic_file(tmp_path / "model.pth", net, 3, 3)
    loaded = load_source(tmp_path / "model.pth")
    assert (loaded.in_channels, loaded.out_channels) == (3, 3)
    assert loaded.description.startswith("classic resnet_9blocks")
    with pytest.raises(FileNotFoundError, match="no run folder, .pth file or run name"):
        load_source("nothing_here", checkpoints_dir=str(tmp_path))


def test_a_switch_written_false_beats_the_models_default_in_both_readers(tmp_path):
    # cycle_gan's classic default is no_dropout=True; a run trained with dropout says False.
    # test.py's defaults (options.classic_run_defaults) and the loader read the file one way.
    from options import classic_run_defaults
    run = tmp_path / "h2z"
    run.mkdir()
    _train_opt(run, model="cycle_gan", netG="resnet_6blocks", ngf=8, no_dropout=False, direction="BtoA",
               norm="not_a_norm")
    for name in ("G_A", "G_B"):   # the files say which model the run is
        (run / f"latest_net_{name}.pth").touch()
    defaults = classic_run_defaults(run)
    assert defaults == {"netG": "resnet_6blocks", "ngf": 8, "no_dropout": False, "direction": "BtoA"}
    _, net, direction = classic_settings(run, "latest")
    assert (net.netG, net.ngf, net.use_dropout, net.norm, direction) == ("resnet_6blocks", 8, True, "instance", "BtoA")
