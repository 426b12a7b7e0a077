"""LOGAN's latent optimisation (--latent_optimization, translate/training/latent_optimization.py):
the natural-gradient step against a hand computation, its effect on D's verdict on a fixed batch,
what the pass leaves behind (no parameter gradients, buffers as before), the start-up errors,
bit-exact resume with it on, and the benchmark's --train_args that measures its cost."""
from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

import train as train_entry
from imaging import make_paired, make_unpaired
from options import OptionsError, parse_train_options
from options.config import LossConfig
from translate import checkpoint as ckpt
from translate.nets.generators.vit_siren import VitSirenGenerator
from translate.networks import build_networks
from translate.training.latent_optimization import LatentOptimizer, natural_gradient_step
from translate.training.objective import Objective

TINY_VIT = ["--netG", "vit_siren", "--vit_dim", "32", "--vit_depth", "1", "--vit_heads", "2",
            "--vit_patch_size", "8", "--vit_pixel_skip", "4", "--vit_noise", "8"]


# ---- the step, by hand ------------------------------------------------------------

def test_natural_gradient_step_is_alpha_g_over_beta_plus_squared_norm_per_sample():
    z = torch.tensor([[0.5, -1.0], [2.9, 0.0]])
    g = torch.tensor([[3.0, 4.0], [1.0, 0.0]])           # |g|^2 = 25 and 1
    out = natural_gradient_step(z, g, alpha=0.9, beta=5.0, clip=3.0)
    expected = torch.tensor([[0.5 + 0.9 * 3 / 30, -1.0 + 0.9 * 4 / 30],
                             [min(2.9 + 0.9 / 6, 3.0), 0.0]])  # the second sample is clipped at 3
    assert torch.allclose(out, expected)
    assert natural_gradient_step(z, g, alpha=0.9, beta=5.0, clip=float("inf"))[1, 0] == pytest.approx(2.9 + 0.15)


class ShiftGenerator(nn.Module):
    """G(x, z) = x + z (z per channel, broadcast over the pixels): dG/dz is known."""
    latent_dim = 3

    def forward(self, x, z=None):
        return x + (z if z is not None else torch.randn(x.shape[0], 3)).view(-1, 3, 1, 1)


def _toy_pix2pix(gan_mode: str):
    torch.manual_seed(0)
    disc = nn.Conv2d(6, 1, 1, bias=False)                 # conditional D: sees real_a and fake_b
    nets = nn.ModuleDict({"gen_ab": ShiftGenerator(), "disc_b": disc})
    objective = Objective("pix2pix", nets, LossConfig(gan_mode=gan_mode, lambda_l1=0.0))
    return objective, nets, disc.weight.detach().view(6)


@pytest.mark.parametrize("gan_mode", ["hinge", "lsgan"])
def test_latent_step_matches_a_hand_computation_on_a_toy_score(gan_mode):
    objective, nets, w = _toy_pix2pix(gan_mode)
    a = torch.rand(2, 3, 4, 4) * 2 - 1
    torch.manual_seed(1)
    z = torch.randn(2, 3)
    torch.manual_seed(1)                                   # the optimiser draws the same z
    z_opt = LatentOptimizer(objective, nets, alpha=0.9, beta=5.0, clip=10.0).latents({"A": a, "B": a}, 0)["fake_b"]
    # D's logit per pixel: w_a . a + w_b . (a + z); f_i = the sample's score (mean over its pixels).
    w_a, w_b = w[:3], w[3:]
    logits = torch.einsum("c,nchw->nhw", w_a, a) + torch.einsum("c,nchw->nhw", w_b, a) + (z @ w_b)[:, None, None]
    if gan_mode == "hinge":             # f = mean(D): df/dz = w_b for every sample
        g = w_b.expand(2, 3)
    else:                               # f = -mean((D - 1)^2): df/dz = -2 mean(D - 1) w_b
        g = -2 * (logits - 1).mean((1, 2))[:, None] * w_b
    expected = z + 0.9 * g / (5.0 + g.pow(2).sum(1, keepdim=True))
    assert torch.allclose(z_opt, expected, atol=1e-6)


# ---- on a real tiny network -----------------------------------------------------------

def _tiny_vit_pix2pix(norm: str = "batch", diffaugment: tuple[str, ...] = ()):
    cfg = parse_train_options(["--model", "pix2pix", *TINY_VIT, "--netD", "basic", "--ndf", "8", "--norm", norm,
                               "--crop_size", "32", "--load_size", "32", "--gpu_ids", "-1", "--latent_optimization"])
    torch.manual_seed(0)
    nets = build_networks("pix2pix", cfg.net)
    objective = Objective("pix2pix", nets, LossConfig(gan_mode="lsgan", lambda_l1=0.0, diffaugment=diffaugment))
    objective.train()
    g = torch.Generator().manual_seed(5)
    batch = {"A": torch.rand(4, 3, 32, 32, generator=g) * 2 - 1, "B": torch.rand(4, 3, 32, 32, generator=g) * 2 - 1}
    return objective, nets, batch


def _lsgan_generator_loss(objective, nets, batch, z):
    """G's LSGAN loss mean((D(A, G(A, z)) - 1)^2), in the networks' dtype (the objective's losses are fp32)."""
    fake = objective.generate(batch, {"fake_b": z})["fake_b"]
    return (nets["disc_b"](torch.cat([batch["A"], fake], 1)) - 1).pow(2).mean()


def test_the_optimised_latent_lowers_the_generators_adversarial_loss_on_a_fixed_batch():
    """At initialisation z moves G's output little (SLN's small modulation weights), so the loss
    changes by ~1e-10: the networks run in float64 to resolve it, and the change must match
    the first-order prediction g . dz, which is what a correct step of the right sign gives."""
    objective, nets, batch = _tiny_vit_pix2pix(norm="instance")
    nets.double()
    batch = {k: v.double() for k, v in batch.items()}
    lo = LatentOptimizer(objective, nets)
    for seed in range(3):
        torch.manual_seed(seed)
        z = torch.randn(4, 8).double().requires_grad_(True)   # as the optimiser draws it
        torch.manual_seed(seed)
        z_opt = lo.latents(batch, 0)["fake_b"].double()
        before = _lsgan_generator_loss(objective, nets, batch, z)
        (grad,) = torch.autograd.grad(before, z)
        after = _lsgan_generator_loss(objective, nets, batch, z_opt)
        drop, predicted = (before - after).item(), -(grad * (z_opt - z)).sum().item()
        assert drop > 0, f"seed {seed}: G's adversarial loss rose by {-drop:.3g} with z'"
        assert predicted > 0 and abs(drop / predicted - 1) < 0.1, (drop, predicted)


def test_the_pass_leaves_no_parameter_gradient_and_every_buffer_as_it_was():
    objective, nets, batch = _tiny_vit_pix2pix(norm="batch", diffaugment=("translation",))
    buffers = {k: v.clone() for k, v in nets.state_dict().items() if "running" in k or "num_batches" in k}
    assert buffers, "the D of this test has batch norm: its running statistics are what could change"
    LatentOptimizer(objective, nets, steps=2).latents(batch, 0)
    assert all(p.grad is None for p in nets.parameters())
    after = nets.state_dict()
    assert all(torch.equal(value, after[key]) for key, value in buffers.items())
    objective.generate(batch)                                  # a forward does move them: the check can fail
    nets["disc_b"](torch.cat([batch["A"], batch["B"]], 1))
    assert not all(torch.equal(value, nets.state_dict()[key]) for key, value in buffers.items())


def test_no_latent_before_disc_start_and_none_keeps_the_generators_own_draws():
    objective, nets, batch = _tiny_vit_pix2pix()
    lo = LatentOptimizer(objective, nets)
    objective.cfg = LossConfig(gan_mode="lsgan", lambda_l1=1.0, disc_start=5)
    assert lo.latents(batch, 4) is None and lo.latents(batch, 5) is not None
    gen = nets["gen_ab"]
    torch.manual_seed(3)
    own = gen(batch["A"])
    torch.manual_seed(3)
    assert torch.equal(own, gen(batch["A"], z=torch.randn(4, 8)))   # None draws exactly that z


def test_a_generator_given_a_latent_of_the_wrong_size_says_so():
    gen = VitSirenGenerator(image_size=32, patch_size=8, dim=32, depth=1, heads=2, noise_dim=8)
    with pytest.raises(ValueError, match="noise_dim 8 takes a latent of shape"):
        gen(torch.zeros(2, 3, 32, 32), z=torch.zeros(2, 4))


# ---- start-up ------------------------------------------------------------------------

BASE = ["--model", "pix2pix", "--crop_size", "32", "--load_size", "32", "--gpu_ids", "-1", "--latent_optimization"]


@pytest.mark.parametrize("extra, names", [
    (["--netG", "resnet_6blocks"], ["--latent_optimization", "--netG", "--vit_noise"]),
    ([*TINY_VIT[:-2], "--vit_noise", "0"], ["--latent_optimization", "--vit_noise"]),
])
def test_latent_optimization_without_a_latent_is_a_one_line_start_up_error(extra, names):
    with pytest.raises(OptionsError) as err:
        parse_train_options(BASE + extra)
    assert all(name in str(err.value) for name in names) and "\n" not in str(err.value)
    out = io.StringIO()
    with contextlib.redirect_stderr(out), contextlib.redirect_stdout(out):
        assert train_entry.main(BASE + extra + ["--name", "x", "--display_id", "0"]) != 0
    assert "--latent_optimization" in out.getvalue() and "Traceback" not in out.getvalue()


def test_the_flags_arrive_in_the_config():
    cfg = parse_train_options(BASE + TINY_VIT + ["--lo_steps", "2", "--lo_alpha", "0.5", "--lo_beta", "1",
                                                 "--lo_clip", "inf"])
    o = cfg.optim
    assert (o.latent_optimization, o.lo_steps, o.lo_alpha, o.lo_beta, o.lo_clip) == (True, 2, 0.5, 1.0, float("inf"))
    defaults = parse_train_options(BASE + TINY_VIT).optim
    assert (defaults.lo_steps, defaults.lo_alpha, defaults.lo_beta, defaults.lo_clip) == (1, 0.9, 5.0, 3.0)


# ---- training with it ----------------------------------------------------------------

RESUME = [*TINY_VIT, "--netD", "basic", "--ndf", "4", "--load_size", "40", "--crop_size", "32", "--display_id", "0",
          "--num_threads", "1", "--print_freq", "1", "--gpu_ids", "-1", "--deterministic", "--save_latest_freq",
          "1000", "--save_epoch_freq", "1000", "--latent_optimization"]


def _train(tmp_path, data, name, model, iters, *extra):
    argv = ["--dataroot", str(data), "--name", name, "--checkpoints_dir", str(tmp_path / "ck"), "--model", model,
            "--max_iters", str(iters), *RESUME, *extra]
    assert train_entry.main(argv) == 0
    return ckpt.load_checkpoint(tmp_path / "ck" / name / "ckpt_latest")[0]


@pytest.mark.parametrize("model, extra", [
    ("pix2pix", []),   # batch-norm D: its running statistics must advance the same way after the resume
    pytest.param("cycle_gan", ["--pool_size", "2", "--batch_size", "2", "--diffaugment", "translation"],
                 marks=pytest.mark.slow),
])
def test_resume_with_latent_optimization_is_bit_exact(tmp_path, model, extra):
    data = (make_unpaired if model == "cycle_gan" else make_paired)(tmp_path / "data", n=5)
    straight = _train(tmp_path, data, "straight", model, 4, *extra)
    _train(tmp_path, data, "resumed", model, 2, *extra)
    resumed = _train(tmp_path, data, "resumed", model, 4, *extra, "--continue_train")
    for net in straight:
        for key in straight[net]:
            assert torch.equal(straight[net][key], resumed[net][key]), f"{net}.{key} differs"


def test_generate_makes_the_judged_fakes_from_the_given_latents_batched_or_not():
    cfg = parse_train_options(["--model", "cycle_gan", *TINY_VIT, "--netD", "basic", "--ndf", "8", "--crop_size",
                               "32", "--load_size", "32", "--gpu_ids", "-1"])
    torch.manual_seed(0)
    nets = build_networks("cycle_gan", cfg.net)
    objective = Objective("cycle_gan", nets, LossConfig(lambda_identity=0.5))
    objective.train()
    a, b = torch.rand(2, 3, 32, 32) * 2 - 1, torch.rand(2, 3, 32, 32) * 2 - 1
    z = {name: torch.randn(2, 8) for name in ("fake_b", "fake_a", "idt_b")}
    gen_ab, gen_ba = nets["gen_ab"], nets["gen_ba"]
    # fake_b alone has a latent: it is not batched with idt_b (which draws its own).
    images = objective.generate({"A": a, "B": b}, {k: z[k] for k in ("fake_b", "fake_a")})
    assert torch.allclose(images["fake_b"], gen_ab(a, z=z["fake_b"]), atol=1e-6)
    assert torch.allclose(images["fake_a"], gen_ba(b, z=z["fake_a"]), atol=1e-6)
    # Both of one generator's call have latents: one batched call with the latents concatenated.
    images = objective.generate({"A": a, "B": b}, z)
    assert torch.allclose(images["fake_b"], gen_ab(a, z=z["fake_b"]), atol=1e-5)
    assert torch.allclose(images["idt_b"], gen_ab(b, z=z["idt_b"]), atol=1e-5)


# ---- the benchmark flag ----------------------------------------------------------------

def test_bench_train_args_reach_the_configuration_not_the_baseline(tmp_path):
    from translate.bench.measure import Spec, build_runner, train_argv
    spec = Spec(model="pix2pix", netG="vit_siren", netD="basic", ndf=8, crop_size=32,
                train_args=" ".join(TINY_VIT[2:] + ["--latent_optimization"]))
    assert "--latent_optimization" in train_argv(spec, classic=False, checkpoints_dir=str(tmp_path))
    assert "--latent_optimization" not in train_argv(spec, classic=True, checkpoints_dir=str(tmp_path))
    runner = build_runner(spec, classic=False, checkpoints_dir=str(tmp_path))
    assert runner.trainer.latent_opt is not None and runner.trainer.cfg.net.vit_noise == 8
    runner.step()
    assert all(p.grad is not None for p in runner.trainer.raw_nets["gen_ab"].parameters())


def test_bench_baseline_with_train_args_that_reshape_the_networks_is_a_clear_error():
    from translate.bench.cli import run_config
    from translate.bench.measure import Spec
    spec = Spec(model="pix2pix", netG="vit_siren", netD="basic", ndf=8, crop_size=32,
                train_args=" ".join(TINY_VIT[2:] + ["--latent_optimization"]))
    with pytest.raises(SystemExit, match="--train_args .* change the networks.*leave out --baseline"):
        run_config(spec, iters=1, warmup=0, baseline=True, peak_seconds=0.05)


def test_the_latent_step_costs_about_one_more_g_and_d_forward_and_backward(tmp_path):
    """Counted FLOPs (no timing noise): the step with LOGAN minus the step without is one G and
    one D forward plus the backward to the latent only (no weight gradients), so between half
    and all of a full forward-and-backward of G and D on the batch."""
    from translate.bench.measure import Spec, build_runner, count_flops
    off = Spec(model="pix2pix", netG="vit_siren", netD="basic", ndf=8, crop_size=32,
               train_args=" ".join(TINY_VIT[2:]))
    on = dataclasses.replace(off, train_args=off.train_args + " --latent_optimization")
    runner = build_runner(off, classic=False, checkpoints_dir=str(tmp_path / "off"))
    extra = count_flops(build_runner(on, classic=False, checkpoints_dir=str(tmp_path / "on"))) - count_flops(runner)
    nets, batch = runner.trainer.raw_nets, runner.batch
    with FlopCounterMode(display=False) as counter:
        fake = nets["gen_ab"](batch["A"])
        nets["disc_b"](torch.cat([batch["A"], fake], 1)).mean().backward()
    full = counter.get_total_flops()
    assert 0.5 * full < extra < full, (extra, full)


@pytest.mark.slow
def test_two_ddp_processes_train_with_latent_optimization_and_stay_in_sync(tmp_path):
    """torchrun, 2 CPU processes (gloo): the latent pass runs the bare modules, the updates the DDP ones."""
    make_paired(tmp_path / "data", n=8)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    worker = Path(__file__).with_name("dist_worker.py")
    argv = ["--model", "pix2pix", *TINY_VIT, "--netD", "basic", "--ndf", "4", "--norm", "batch", "--load_size", "32",
            "--crop_size", "32", "--display_id", "0", "--num_threads", "0", "--gpu_ids", "-1", "--name", "ddp",
            "--checkpoints_dir", "ck", "--batch_size", "2", "--latent_optimization"]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
           "--master_port", str(port), str(worker), str(tmp_path / "run"), "2", "--dataroot", str(tmp_path / "data"),
           *argv]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stderr[-3000:]
    traces = [json.loads((tmp_path / "run" / f"trace{r}.json").read_text()) for r in (0, 1)]
    assert all(t["world"] == 2 and t["ddp"] == "DistributedDataParallel" for t in traces)
    for step in range(2):
        a, b = (t["trace"][step] for t in traces)
        assert a["checksum"] == pytest.approx(b["checksum"], rel=1e-6), "weights differ across ranks"
