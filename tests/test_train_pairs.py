"""Every generator and every discriminator trains, paired and unpaired; the pairs with their own wiring run end to end.

Why these pairs cover the wiring.  A generator and a discriminator meet only through the
image tensor: the trainer hands D the generator's N x C x H x W output at the crop size
(with the input A concatenated when D is conditional, pix2pix), and every D output is
either a Tensor or a tuple/list of Tensors whose GAN losses the objective sums.  So what can
break lies in each network's own side of that contract, both ways:

- each generator with one discriminator (``basic``), in pix2pix (paired: one generator
  A->B, a conditional D on input_nc + output_nc channels) and in cycle_gan (unpaired: gen_ba
  too, with the channels reversed, and plain Ds on each domain); each generator at the
  side it needs (unet_256: 256 px, unet_128: 128 px, the rest 64 px);
- each discriminator with one generator (``unet_64``), paired and unpaired alike;
- the pairs that flags tie together, in test_stabilizers_train_save_ema_and_translate, each
  trained with every stabilizer (DiffAugment, R1, bCR, the adaptive GAN weight, EMA,
  n_critic, ``--spectral_norm``), saved, and run by test.py: the ViT D beside the ViT-SIREN
  generator (both read the ``--vit_*`` flags; DiffAugment and bCR feed it augmented images,
  and its own improved spectral norm must survive the generic one), the U-Net D with CutMix
  (``--lambda_cutmix`` needs its per-pixel map; options refuse it for other Ds) in cycle_gan,
  and the multi-scale D (a list of maps at halved sizes, each regularized);
  test_cutmix_terms_only_for_the_unet_discriminator checks the CutMix wiring itself.

Both lists are read from GENERATORS and DISCRIMINATORS, so a newly registered network is
trained here by being registered.
"""
from __future__ import annotations

import pytest
import torch

import test as test_entry
import train as train_entry
from imaging import make_paired, make_unpaired
from options import OptionsError, parse_train_options
from options.config import LossConfig, NetworkConfig
from translate import checkpoint as ckpt
from translate.nets.discriminators import DISCRIMINATORS
from translate.nets.generators import GENERATORS
from translate.networks import build_networks, flags_without_effect
from translate.training.objective import Objective
from translate.training.trainer import Trainer

PARTNER_D = "basic"      # the classic 70x70 PatchGAN trains every generator
PARTNER_G = "unet_64"    # the smallest generator at 64 px trains every discriminator
PAIRS = sorted({(g, PARTNER_D) for g in GENERATORS} | {(PARTNER_G, d) for d in DISCRIMINATORS})
SIDE = {"unet_256": 256, "unet_128": 128}       # the rest train at 64 px
TINY_NETS = ["--ngf", "4", "--ndf", "4", "--norm", "instance", "--vit_patch_size", "8", "--vit_dim", "16",
             "--vit_depth", "1", "--vit_heads", "2", "--num_D", "2", "--n_layers_D", "3"]
QUIET = ["--display_id", "0", "--num_threads", "0", "--gpu_ids", "-1", "--print_freq", "1"]


def tiny_nets(netG: str, netD: str) -> list[str]:
    """TINY_NETS less the flags neither network takes (given, those are errors)."""
    net = NetworkConfig(netG=netG, netD=netD)
    pairs = list(zip(TINY_NETS[::2], TINY_NETS[1::2]))
    return [part for flag, value in pairs
            if not flags_without_effect(net, [flag[2:]], ("generator", "discriminator")) for part in (flag, value)]




@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("pairs")
    return {"paired": make_paired(root / "paired", n=2, size=256, phases=("train",)),
            "unpaired": make_unpaired(root / "unpaired", n=2, size=256)}


def test_the_partners_are_registered():
    assert PARTNER_D in DISCRIMINATORS and PARTNER_G in GENERATORS


# Paired in the fast set (each network once); unpaired, the second way, with the slow tests.
@pytest.mark.parametrize("layout", ["paired", pytest.param("unpaired", marks=pytest.mark.slow)])
@pytest.mark.parametrize("netG,netD", PAIRS)
def test_pair_trains_two_steps(tmp_path, data, netG, netD, layout):
    side = str(SIDE.get(netG, 64))
    model = "pix2pix" if layout == "paired" else "cycle_gan"
    cfg = parse_train_options(["--dataroot", str(data[layout]), "--model", model, "--netG", netG, "--netD", netD,
                               "--load_size", side, "--crop_size", side, "--checkpoints_dir", str(tmp_path)]
                              + tiny_nets(netG, netD) + QUIET)
    torch.manual_seed(0)
    trainer = Trainer(cfg)
    before = {f"{n}.{k}": p.detach().clone() for n, net in trainer.raw_nets.items()
              for k, p in net.named_parameters()}
    batches = iter(trainer.loader)
    for _ in range(2):
        logs, _ = trainer.train_step(next(batches))
        assert logs and all(torch.isfinite(v) for v in logs.values()), logs
    after = {f"{n}.{k}": p for n, net in trainer.raw_nets.items() for k, p in net.named_parameters()}
    unchanged = [k for k, p in before.items() if torch.equal(p, after[k])]
    assert not unchanged, unchanged


STABILIZERS = ["--diffaugment", "color,translation,cutout", "--lambda_r1", "1", "--lambda_bcr_real", "1",
               "--lambda_bcr_fake", "1", "--adaptive_gan_weight", "--ema_decay", "0.9",
               "--n_critic", "2", "--spectral_norm"]


@pytest.mark.parametrize("netG,netD,model", [("vit_siren", "vit", "pix2pix"), ("resnet_6blocks", "unet", "cycle_gan"),
                                             ("unet_64", "multiscale", "pix2pix")])
def test_stabilizers_train_save_ema_and_translate(tmp_path, netG, netD, model):
    paired = model == "pix2pix"
    root = (make_paired if paired else make_unpaired)(tmp_path / "data", n=2, size=64)
    common = ["--dataroot", str(root), "--name", "run", "--checkpoints_dir", str(tmp_path / "ck"),
              "--model", model, "--netG", netG, "--load_size", "64", "--crop_size", "64"] + tiny_nets(netG, netD)
    cutmix = ["--lambda_cutmix", "1"] if netD == "unet" else []
    argv = common + ["--netD", netD, "--max_iters", "2", "--disc_start", "1"] + STABILIZERS + cutmix + QUIET
    assert train_entry.main(argv) == 0
    weights, _ = ckpt.load_checkpoint(tmp_path / "ck" / "run" / "ckpt_latest")
    assert "ema_gen_ab" in weights and weights["ema_gen_ab"].keys() == weights["gen_ab"].keys()
    test_argv = common + ["--results_dir", str(tmp_path / "res"), "--num_test", "1", "--gpu_ids", "-1"]
    if not paired:
        test_argv += ["--dataroot", str(root / "testA"), "--model", "test", "--model_suffix", "_A"]
    assert test_entry.main(test_argv) == 0


@pytest.mark.parametrize("netD", ["unet", "multiscale"])
def test_cutmix_terms_only_for_the_unet_discriminator(netD):
    argv = ["--model", "pix2pix", "--netG", "unet_64", "--netD", netD, "--crop_size", "64"] + tiny_nets("unet_64", netD) + QUIET
    if netD != "unet":                            # the flag is refused; the objective must still cope
        with pytest.raises(OptionsError, match="--netD unet"):
            parse_train_options(argv + ["--lambda_cutmix", "1"])
    nets = build_networks("pix2pix", parse_train_options(argv).net)
    loss = LossConfig(gan_mode="vanilla", lambda_l1=100.0, lambda_cutmix=1.0)
    objective = Objective("pix2pix", nets, loss)
    images = objective.generate({"A": torch.randn(2, 3, 64, 64), "B": torch.randn(2, 3, 64, 64)})
    torch.manual_seed(0)
    for _ in range(20):                           # a CutMix step happens with probability 1/2 after warm-up
        total, logs = objective.discriminator_loss(images, step=10**6)
        if "cutmix_b" in logs:
            break
    assert ("cutmix_b" in logs) == (netD == "unet") and torch.isfinite(total)
    total.backward()
    assert all(p.grad is not None for p in nets["disc_b"].parameters())


def test_ema_survives_resume(tmp_path):
    root = make_paired(tmp_path / "data", n=2, size=32)
    argv = ["--dataroot", str(root), "--name", "run", "--checkpoints_dir", str(tmp_path / "ck"), "--model", "pix2pix",
            "--netG", "resnet_6blocks", "--load_size", "32", "--crop_size", "32", "--ema_decay", "0.5"] + tiny_nets("resnet_6blocks", "basic") + QUIET
    assert train_entry.main(argv + ["--max_iters", "1"]) == 0
    first, _ = ckpt.load_checkpoint(tmp_path / "ck" / "run" / "ckpt_latest")
    assert train_entry.main(argv + ["--max_iters", "2", "--continue_train"]) == 0
    second, _ = ckpt.load_checkpoint(tmp_path / "ck" / "run" / "ckpt_latest")
    key = "model.1.weight"
    # After resuming, the shadow continued from the saved one: ema2 = 0.5 ema1 + 0.5 gen2.
    expected = 0.5 * first["ema_gen_ab"][key] + 0.5 * second["gen_ab"][key]
    assert torch.allclose(second["ema_gen_ab"][key], expected, atol=1e-6)
