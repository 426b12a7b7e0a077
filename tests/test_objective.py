"""The objective: which terms a model enables, which images it computes, and the weighted
losses checked against values computed here by hand from the same tiny networks."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from options.config import LossConfig
from translate.models import MODELS, TRAINABLE
from translate.training.objective import Objective
from translate.training.terms import TERMS, enabled_terms

SIDE = 8


class TinyGenerator(nn.Module):
    """One 3x3 conv and tanh: keeps H x W, like every generator."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 3, padding=1)

    def forward(self, x):
        return torch.tanh(self.conv(x))


def tiny_nets(model: str, nc: int = 3) -> nn.ModuleDict:
    """Seeded 1-layer networks for every generator and discriminator of ``model``."""
    spec, nets = MODELS[model], nn.ModuleDict()
    for i, gen in enumerate(spec.generators):
        torch.manual_seed(10 + i)
        nets[gen] = TinyGenerator(*spec.generator_channels(gen, nc, nc))
    for i, disc in enumerate(spec.discriminators):
        torch.manual_seed(20 + i)
        nets[disc] = nn.Conv2d(spec.discriminator_channels(disc, nc, nc), 1, 3, padding=1)   # N x 1 x 8 x 8 logits
    return nets


def batch(seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    return {"A": torch.rand(2, 3, SIDE, SIDE, generator=g) * 2 - 1,
            "B": torch.rand(2, 3, SIDE, SIDE, generator=g) * 2 - 1}


def l1(a, b):
    return (a - b).abs().mean()


# ---- which terms -----------------------------------------------------------

CYCLE = ["gan_ab", "gan_ba", "cycle_a", "cycle_b"]


@pytest.mark.parametrize("model, weights, expected", [
    ("pix2pix", dict(lambda_l1=0.0), ["gan_ab"]),
    ("pix2pix", dict(lambda_l1=100.0), ["gan_ab", "l1"]),
    ("cycle_gan", dict(lambda_identity=0.0), CYCLE),
    ("cycle_gan", dict(lambda_identity=0.5), CYCLE + ["idt_a", "idt_b"]),
    ("cycle_gan", dict(lambda_a=0.0, lambda_identity=0.5), ["gan_ab", "gan_ba", "cycle_b", "idt_b"]),
    ("cycle_gan", dict(lambda_l1=5.0, lambda_cs=5.0, lambda_identity=0.0), CYCLE),   # not terms of cycle_gan
    ("csgan", dict(lambda_identity=0.0, lambda_cs=10.0), CYCLE + ["cs_a", "cs_b"]),
    ("csgan", dict(lambda_identity=0.0, lambda_cs=10.0, lambda_l1=1.0), CYCLE + ["l1", "cs_a", "cs_b"]),
])
def test_a_model_enables_its_terms_with_weight_above_zero(model, weights, expected):
    terms = enabled_terms(MODELS[model], LossConfig(**weights))
    assert [t.name for t in terms] == expected


@pytest.mark.parametrize("model", TRAINABLE)
def test_every_term_of_the_model_table_can_be_built(model):
    spec = MODELS[model]
    assert spec.terms and set(spec.terms) <= set(TERMS)
    big = LossConfig(lambda_l1=1.0, lambda_cs=1.0)
    for term in enabled_terms(spec, big):
        assert set(term.generators) <= set(spec.generators), term
        if term.adversarial:   # a GAN term: one generator's fake, judged by the D of that domain
            assert term.discriminator in spec.discriminators
            (gen,) = term.generators
            assert spec.generators[gen][1] == spec.discriminators[term.discriminator]


def test_terms_know_their_generators_and_judges():
    terms = {t.name: t for t in enabled_terms(MODELS["csgan"], LossConfig(lambda_l1=1.0, lambda_cs=1.0))}
    assert (terms["gan_ab"].generators, terms["gan_ab"].discriminator) == (("gen_ab",), "disc_b")
    assert (terms["gan_ba"].generators, terms["gan_ba"].discriminator) == (("gen_ba",), "disc_a")
    assert terms["cycle_a"].generators == ("gen_ba",) and not terms["cycle_a"].adversarial   # rec_a = G_BA(fake_b)
    assert terms["l1"].generators == ("gen_ab", "gen_ba")
    assert terms["cs_b"].needs == ("rec_b", "fake_b")


# ---- which images ----------------------------------------------------------

@pytest.mark.parametrize("model, weights, expected", [
    ("pix2pix", dict(lambda_l1=0.0), {"fake_b"}),
    ("pix2pix", dict(lambda_l1=100.0), {"fake_b"}),
    ("cycle_gan", dict(lambda_a=0.0, lambda_b=0.0), {"fake_b", "fake_a"}),
    ("cycle_gan", dict(lambda_identity=0.0), {"fake_b", "fake_a", "rec_a", "rec_b"}),
    ("cycle_gan", dict(lambda_identity=0.5), {"fake_b", "fake_a", "rec_a", "rec_b", "idt_a", "idt_b"}),
    ("cycle_gan", dict(lambda_b=0.0, lambda_identity=0.5), {"fake_b", "fake_a", "rec_a", "idt_a"}),
    ("csgan", dict(lambda_identity=0.0, lambda_cs=10.0), {"fake_b", "fake_a", "rec_a", "rec_b"}),
])
def test_generate_computes_only_what_the_terms_need(model, weights, expected):
    nets = tiny_nets(model)
    images = Objective(model, nets, LossConfig(**weights)).generate(batch())
    assert set(images) == {"real_a", "real_b"} | expected
    by_hand = {"fake_b": lambda: nets["gen_ab"](images["real_a"]),
               "fake_a": lambda: nets["gen_ba"](images["real_b"]),
               "rec_a": lambda: nets["gen_ba"](images["fake_b"]),
               "rec_b": lambda: nets["gen_ab"](images["fake_a"]),
               "idt_a": lambda: nets["gen_ba"](images["real_a"]),
               "idt_b": lambda: nets["gen_ab"](images["real_b"])}
    for name in expected:
        torch.testing.assert_close(images[name], by_hand[name](), msg=name)


# ---- the generator loss by hand --------------------------------------------

def _fool(d, x, mode):
    """The generator's GAN loss on D's logits ``d(x)``: as the classic code has them."""
    logits = d(x)
    if mode == "lsgan":
        return ((logits - 1) ** 2).mean()
    return F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits))


def test_pix2pix_generator_total_by_hand():
    nets = tiny_nets("pix2pix")
    cfg = LossConfig(gan_mode="vanilla", lambda_l1=100.0, lambda_identity=0.0)
    objective = Objective("pix2pix", nets, cfg)
    images = objective.generate(batch())
    total, logs = objective.generator_loss(images)
    real_a, real_b = images["real_a"], images["real_b"]
    fake_b = nets["gen_ab"](real_a)
    gan = _fool(nets["disc_b"], torch.cat([real_a, fake_b], 1), "vanilla")   # conditional D sees A too
    rec = l1(fake_b, real_b)
    torch.testing.assert_close(logs["gan_ab"], gan)
    torch.testing.assert_close(logs["l1"], rec)
    torch.testing.assert_close(total, gan + 100.0 * rec)
    assert set(logs) == {"gan_ab", "l1"}


@pytest.mark.parametrize("model", ["cycle_gan", "csgan"])
def test_cycle_generator_total_by_hand(model):
    nets = tiny_nets(model)
    csgan = model == "csgan"
    cfg = LossConfig(gan_mode="lsgan", lambda_a=10.0, lambda_b=5.0, lambda_identity=0.5,
                     lambda_l1=2.0 if csgan else 0.0, lambda_cs=3.0 if csgan else 0.0)
    objective = Objective(model, nets, cfg)
    images = objective.generate(batch())
    total, logs = objective.generator_loss(images)

    g_ab, g_ba = nets["gen_ab"], nets["gen_ba"]
    real_a, real_b = images["real_a"], images["real_b"]
    fake_b, fake_a = g_ab(real_a), g_ba(real_b)
    rec_a, rec_b = g_ba(fake_b), g_ab(fake_a)
    expected = {
        "gan_ab": (1.0, _fool(nets["disc_b"], fake_b, "lsgan")),
        "gan_ba": (1.0, _fool(nets["disc_a"], fake_a, "lsgan")),
        "cycle_a": (10.0, l1(rec_a, real_a)),
        "cycle_b": (5.0, l1(rec_b, real_b)),
        "idt_a": (10.0 * 0.5, l1(g_ba(real_a), real_a)),
        "idt_b": (5.0 * 0.5, l1(g_ab(real_b), real_b)),
    }
    if csgan:
        expected |= {"l1": (2.0, l1(fake_b, real_b) + l1(fake_a, real_a)),
                     "cs_a": (3.0, l1(rec_a, fake_a)), "cs_b": (3.0, l1(rec_b, fake_b))}
    assert set(logs) == set(expected)
    for name, (_, value) in expected.items():
        torch.testing.assert_close(logs[name], value, msg=name)
    torch.testing.assert_close(total, sum(w * v for w, v in expected.values()))


def test_gan_terms_count_from_disc_start():
    nets = tiny_nets("pix2pix")
    objective = Objective("pix2pix", nets, LossConfig(gan_mode="vanilla", lambda_l1=100.0, disc_start=3))
    images = objective.generate(batch())
    assert [objective.discriminator_on(s) for s in (0, 2, 3, 4)] == [False, False, True, True]
    before, logs_before = objective.generator_loss(images, step=2)
    after, logs_after = objective.generator_loss(images, step=3)
    assert set(logs_before) == {"l1"} and set(logs_after) == {"l1", "gan_ab"}
    torch.testing.assert_close(before, 100.0 * logs_before["l1"])
    torch.testing.assert_close(after, before + logs_after["gan_ab"])


def test_the_generator_step_judges_with_the_discriminators_it_is_given():
    """The trainer hands the G step its own D modules (the bare ones under DDP)."""
    nets = tiny_nets("pix2pix")
    objective = Objective("pix2pix", nets, LossConfig(gan_mode="lsgan", lambda_l1=1.0))
    images = objective.generate(batch())
    torch.manual_seed(99)
    other = nn.Conv2d(6, 1, 3, padding=1)
    _, logs = objective.generator_loss(images, discriminators={"disc_b": other})
    expected = _fool(other, torch.cat([images["real_a"], images["fake_b"]], 1), "lsgan")
    torch.testing.assert_close(logs["gan_ab"], expected)
    _, own = objective.generator_loss(images)
    assert not torch.allclose(own["gan_ab"], expected)


def test_adaptive_gan_weight_needs_a_reconstruction_term():
    with pytest.raises(ValueError, match="reconstruction"):
        Objective("pix2pix", tiny_nets("pix2pix"), LossConfig(lambda_l1=0.0, adaptive_gan_weight=True))


# ---- the discriminator loss by hand ----------------------------------------

def test_cycle_gan_discriminator_loss_by_hand():
    nets = tiny_nets("cycle_gan")
    objective = Objective("cycle_gan", nets, LossConfig(gan_mode="lsgan", lambda_identity=0.0))
    images = objective.generate(batch())
    assert objective.judges == ["disc_b", "disc_a"]
    fakes = objective.fake_inputs(images)
    torch.testing.assert_close(fakes["disc_b"], images["fake_b"].detach())
    total, logs = objective.discriminator_loss(images, fakes)

    def lsgan(d, real, fake):
        return 0.5 * (((d(real) - 1) ** 2).mean() + (d(fake) ** 2).mean())

    d_b = lsgan(nets["disc_b"], images["real_b"], images["fake_b"].detach())
    d_a = lsgan(nets["disc_a"], images["real_a"], images["fake_a"].detach())
    torch.testing.assert_close(logs["disc_b"], d_b)
    torch.testing.assert_close(logs["disc_a"], d_a)
    torch.testing.assert_close(total, d_b + d_a)


def test_regularizer_logs_name_the_judged_domain():
    nets = tiny_nets("cycle_gan")
    objective = Objective("cycle_gan", nets, LossConfig(lambda_r1=1.0, lambda_bcr_real=1.0))
    _, logs = objective.discriminator_loss(objective.generate(batch()))
    assert {"r1_a", "r1_b", "bcr_real_a", "bcr_real_b"} <= set(logs)


def test_adaptive_weight_reaches_the_last_layer_inside_a_ddp_wrapper():
    """The objective runs what it is given; the adaptive GAN weight finds a generator's declared
    last layer inside a real (one-process, gloo) DDP wrapper, with the same result as bare."""
    import socket

    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    class DeclaredLast(TinyGenerator):
        @property
        def last_layer(self):
            return self.conv.bias   # not the fallback (conv.weight): the declared one must be found

    torch.manual_seed(10)
    bare = nn.ModuleDict({"gen_ab": DeclaredLast(3, 3), "disc_b": tiny_nets("pix2pix")["disc_b"]})
    cfg = LossConfig(gan_mode="lsgan", lambda_l1=1.0, adaptive_gan_weight=True)
    expected_total, expected = Objective("pix2pix", bare, cfg).generator_loss(
        Objective("pix2pix", bare, cfg).generate(batch()))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=0, world_size=1)
    try:
        wrapped = nn.ModuleDict({"gen_ab": DistributedDataParallel(bare["gen_ab"]), "disc_b": bare["disc_b"]})
        objective = Objective("pix2pix", wrapped, cfg)
        total, logs = objective.generator_loss(objective.generate(batch()))
    finally:
        dist.destroy_process_group()
    torch.testing.assert_close(logs["weight_gan_ab"], expected["weight_gan_ab"])
    torch.testing.assert_close(total, expected_total)
