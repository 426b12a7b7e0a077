"""Loss values computed by hand."""
import math

import pytest
import torch

from translate.training import losses


def test_lsgan_by_hand():
    pred = torch.tensor([0.5, 2.0])
    assert losses.gan_loss(pred, real=True, mode="lsgan").item() == pytest.approx((0.25 + 1.0) / 2)
    assert losses.gan_loss(pred, real=False, mode="lsgan").item() == pytest.approx((0.25 + 4.0) / 2)


def test_vanilla_by_hand():
    pred = torch.tensor([0.0, 1.0])
    real = (math.log(2) + math.log(1 + math.exp(-1))) / 2
    fake = (math.log(2) + math.log(1 + math.exp(1))) / 2
    assert losses.gan_loss(pred, real=True, mode="vanilla").item() == pytest.approx(real)
    assert losses.gan_loss(pred, real=False, mode="vanilla").item() == pytest.approx(fake)


def test_hinge_by_hand():
    pred = torch.tensor([0.5, -2.0])
    assert losses.gan_loss(pred, real=True, mode="hinge").item() == pytest.approx((0.5 + 3.0) / 2)
    assert losses.gan_loss(pred, real=False, mode="hinge").item() == pytest.approx((1.5 + 0.0) / 2)
    g = losses.gan_loss(pred, real=True, mode="hinge", for_discriminator=False)
    assert g.item() == pytest.approx(0.75)


def test_wgan_by_hand():
    pred = torch.tensor([1.0, 3.0])
    assert losses.gan_loss(pred, real=True, mode="wgangp").item() == pytest.approx(-2.0)
    assert losses.gan_loss(pred, real=False, mode="wgangp").item() == pytest.approx(2.0)


def test_sequence_outputs_are_summed():
    a, b = torch.tensor([1.0]), torch.tensor([0.0, 0.0])
    assert losses.gan_loss([a, b], real=True, mode="lsgan").item() == pytest.approx(0.0 + 1.0)


def test_l1_by_hand():
    assert losses.l1(torch.tensor([1.0, -1.0]), torch.tensor([0.0, 1.0])).item() == pytest.approx(1.5)


def test_gradient_penalty_of_a_linear_critic():
    # D(x) = sum(w * x): the gradient is w everywhere, so the penalty is (||w|| - 1)^2.
    w = torch.full((1, 1, 2, 2), 2.0)
    disc = lambda x: (x * w).flatten(1).sum(1)
    real, fake = torch.randn(3, 1, 2, 2), torch.randn(3, 1, 2, 2)
    assert losses.gradient_penalty(disc, real, fake).item() == pytest.approx((4.0 - 1.0) ** 2)


def test_unknown_mode():
    with pytest.raises(ValueError, match="lsgan"):
        losses.gan_loss(torch.zeros(1), real=True, mode="nope")
