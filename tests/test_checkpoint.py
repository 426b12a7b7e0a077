"""Checkpoint round trip, classic .pth import with its quirks, and refusal of code payloads."""
import os
import pickle

import pytest
import torch

from options import parse_train_options
from translate import checkpoint as ckpt
from translate.inference.loading import load_generators
from translate.networks import build_networks


def _nets(model="cycle_gan"):
    cfg = parse_train_options(["--model", model, "--netG", "resnet_6blocks", "--ngf", "4", "--ndf", "4",
                               "--crop_size", "32", "--load_size", "32"])
    torch.manual_seed(0)
    return cfg, build_networks(model, cfg.net)


def test_round_trip_keeps_every_tensor_and_the_config(tmp_path):
    cfg, nets = _nets()
    ckpt.save_checkpoint(tmp_path, "latest", dict(nets.items()), cfg.to_dict(), {"steps": 3}, model="cycle_gan")
    weights, config = ckpt.load_checkpoint(tmp_path / "ckpt_latest")
    assert config == __import__("json").loads(__import__("json").dumps(cfg.to_dict(), default=str))
    for name, net in nets.items():
        for key, value in net.state_dict().items():
            assert torch.equal(weights[name][key], value)
    assert ckpt.load_training_state(tmp_path / "ckpt_latest") == {"steps": 3}
    # Classic files hold the classic names: D_A judges domain B.
    classic = torch.load(tmp_path / "latest_net_D_A.pth", weights_only=True)
    assert all(torch.equal(classic[k], v) for k, v in nets["disc_b"].state_dict().items())


def test_rebuilds_generators_from_the_saved_config(tmp_path):
    cfg, nets = _nets()
    ckpt.save_checkpoint(tmp_path, "7", dict(nets.items()), cfg.to_dict(), model="cycle_gan")
    other = parse_train_options([]).net  # default resnet_9blocks: must be ignored
    run = load_generators(tmp_path, "7", model="test", net=other, model_suffix="_B")
    g = run.generators["gen_ab"]
    x = torch.randn(1, 3, 32, 32)
    assert torch.equal(g(x), nets["gen_ba"](x))


def test_classic_checkpoint_with_its_quirks_loads(tmp_path):
    cfg, nets = _nets()
    state = nets["gen_ab"].state_dict()
    quirky = {f"module.{k}": v.clone() for k, v in state.items()}
    # Old classic InstanceNorm layers saved running stats that current ones do not have.
    quirky["module.model.2.running_mean"] = torch.zeros(4)
    quirky["module.model.2.running_var"] = torch.ones(4)
    torch.save(quirky, tmp_path / "latest_net_G.pth")
    run = load_generators(tmp_path, "latest", model="test", net=cfg.net)
    x = torch.randn(1, 3, 32, 32)
    assert torch.equal(run.generators["gen_ab"](x), nets["gen_ab"](x))


def test_classic_checkpoint_of_another_architecture_is_a_clear_error(tmp_path):
    cfg, nets = _nets()
    torch.save(nets["disc_a"].state_dict(), tmp_path / "latest_net_G.pth")
    with pytest.raises(ckpt.CheckpointError, match="--netG"):
        load_generators(tmp_path, "latest", model="test", net=cfg.net)


class _Payload:
    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_pickle_with_code_is_refused_and_does_not_run(tmp_path):
    marker = tmp_path / "pwned"
    payload = _Payload()
    payload.marker = marker
    with open(tmp_path / "latest_net_G.pth", "wb") as f:
        pickle.dump({"model.1.weight": payload}, f)
    with pytest.raises(ckpt.CheckpointError, match="not a plain weights file"):
        ckpt.load_classic_state_dict(tmp_path / "latest_net_G.pth")
    assert not marker.exists()


def test_non_finite_weights_are_never_saved_over_good_ones(tmp_path):
    cfg, nets = _nets("pix2pix")
    ckpt.save_checkpoint(tmp_path, "latest", dict(nets.items()), cfg.to_dict(), model="pix2pix")
    good, _ = ckpt.load_checkpoint(tmp_path / "ckpt_latest")
    with torch.no_grad():
        next(nets["gen_ab"].parameters()).fill_(float("nan"))
    with pytest.raises(ckpt.CheckpointError, match="non-finite"):
        ckpt.save_checkpoint(tmp_path, "latest", dict(nets.items()), cfg.to_dict(), model="pix2pix")
    again, _ = ckpt.load_checkpoint(tmp_path / "ckpt_latest")
    assert all(torch.equal(good["gen_ab"][k], again["gen_ab"][k]) for k in good["gen_ab"])


def test_interrupted_swap_leaves_a_loadable_copy(tmp_path):
    cfg, nets = _nets("pix2pix")
    ckpt.save_checkpoint(tmp_path, "latest", dict(nets.items()), cfg.to_dict(), model="pix2pix")
    # A crash between the two renames of _swap_in leaves only the .old folder.
    os.replace(tmp_path / "ckpt_latest", tmp_path / "ckpt_latest.old")
    assert ckpt.find_checkpoint(tmp_path, "latest") == tmp_path / "ckpt_latest.old"
