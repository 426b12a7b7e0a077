"""DiffAugment, bCR, CutMix consistency, R1, adaptive GAN weight, EMA."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from translate.training.augment import (DiffAugment, apply_diffaugment, cutmix, cutmix_mask, cutmix_probability,
                                       diff_augment, sample_diffaugment_params)
from translate.training.ema import EMA
from translate.training.losses import (adaptive_gan_weight, bcr_loss, cutmix_consistency_loss, cutmix_decoder_loss,
                                      last_layer_weight, r1_penalty)

ALL = ("color", "translation", "cutout")


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)




# ----------------------------------------------------------------------------- DiffAugment

def test_diffaugment_is_differentiable():
    x = torch.randn(3, 3, 16, 16, requires_grad=True)
    out = diff_augment(x, ALL)
    assert out.shape == x.shape and not torch.equal(out, x)
    out.square().sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_pair_applies_the_same_transform_to_real_and_fake():
    x = torch.rand(4, 3, 16, 16) * 2 - 1
    real, fake = DiffAugment(ALL).pair(x, x.clone())
    assert torch.equal(real, fake)
    # ... while two independent draws differ
    aug = DiffAugment(ALL)
    assert not torch.equal(aug(x), aug(x))


def test_seeded_generator_reproduces_the_transform():
    x = torch.randn(2, 3, 16, 16)
    a = diff_augment(x, ALL, generator=torch.Generator().manual_seed(3))
    b = diff_augment(x, ALL, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b)


def test_translation_shifts_with_zero_fill():
    x = torch.arange(2 * 1 * 8 * 8, dtype=torch.float).reshape(2, 1, 8, 8) + 1
    params = {"translation": torch.tensor([[1, -1], [0, 0]])}   # sample 0: down 1, left 1
    out = apply_diffaugment(x, params)
    assert torch.equal(out[1], x[1])
    assert torch.equal(out[0, 0, 1:, :-1], x[0, 0, :-1, 1:])
    assert out[0, 0, 0].abs().sum() == 0 and out[0, 0, :, -1].abs().sum() == 0


def test_translation_and_cutout_ranges():
    x = torch.ones(64, 1, 16, 16)
    params = sample_diffaugment_params(x, ALL)
    assert params["translation"].abs().max() <= 2                # 1/8 of 16
    erased = 1 - apply_diffaugment(x, {"cutout": params["cutout"]}).mean(dim=(1, 2, 3))
    assert erased.max() <= 0.25 + 1e-6 and erased.min() >= 1 / 16 - 1e-6   # at most a half-size box


def test_policy_names_are_checked_and_empty_is_identity():
    x = torch.randn(1, 3, 8, 8)
    assert diff_augment(x, ()) is x
    with pytest.raises(ValueError, match="policy"):
        DiffAugment(("colour",))


# ----------------------------------------------------------------------------- bCR

def test_bcr_loss_handles_tensors_and_tuples():
    a, b = torch.randn(2, 1, 4, 4), torch.randn(2, 1, 4, 4)
    g1, g2 = torch.randn(2, 1), torch.randn(2, 1)
    assert bcr_loss(a, a) == 0
    assert torch.allclose(bcr_loss(a, b), (a - b).square().mean())
    assert torch.allclose(bcr_loss((g1, a), [g2, b]), (g1 - g2).square().mean() + (a - b).square().mean())


# ----------------------------------------------------------------------------- CutMix

def test_cutmix_mask_is_binary_boxes():
    mask = cutmix_mask(64, 16, 24, generator=torch.Generator().manual_seed(0))
    assert mask.shape == (64, 1, 16, 24)
    assert set(mask.unique().tolist()) <= {0.0, 1.0}
    real_fraction = mask.mean(dim=(1, 2, 3))
    assert real_fraction.min() < 0.3 and real_fraction.max() > 0.7      # real inside and outside the box


def test_cutmix_consistency_is_zero_for_a_pixelwise_discriminator():
    real, fake = torch.randn(2, 3, 16, 16), torch.randn(2, 3, 16, 16)
    mask = cutmix_mask(2, 16, 16)
    pixelwise = nn.Conv2d(3, 1, 1)                # each output pixel sees only its input pixel
    loss = cutmix_consistency_loss(pixelwise(cutmix(real, fake, mask)), pixelwise(real), pixelwise(fake), mask)
    assert loss < 1e-10
    spatial = nn.Conv2d(3, 1, 5, padding=2)       # mixes neighbours: inconsistent at the box border
    assert cutmix_consistency_loss(spatial(cutmix(real, fake, mask)), spatial(real), spatial(fake), mask) > 0


def test_cutmix_decoder_loss_targets_the_mask():
    logits, mask = torch.randn(2, 1, 4, 4), (torch.rand(2, 1, 4, 4) > 0.5).float()
    by_hand = -(mask * F.logsigmoid(logits) + (1 - mask) * F.logsigmoid(-logits)).mean()
    assert torch.allclose(cutmix_decoder_loss(logits, mask, "vanilla"), by_hand, atol=1e-6)
    assert torch.allclose(cutmix_decoder_loss(logits, mask, "lsgan"), (logits - mask).square().mean())


def test_cutmix_probability_warms_up_to_one_half():
    assert cutmix_probability(0, 100) == 0
    assert cutmix_probability(50, 100) == 0.25
    assert cutmix_probability(500, 100) == 0.5 == cutmix_probability(0, 0)


# ----------------------------------------------------------------------------- R1, adaptive weight

def test_r1_penalty_of_a_linear_critic_is_its_squared_weight_norm():
    critic = nn.Conv2d(3, 1, 4)                   # D(x) = sum(w * x) + b on a 4x4 image
    x = torch.randn(5, 3, 4, 4, requires_grad=True)
    penalty = r1_penalty(critic(x), x)
    assert torch.allclose(penalty, critic.weight.square().sum())
    penalty.backward()                            # create_graph: the penalty trains D
    assert torch.allclose(critic.weight.grad, 2 * critic.weight)


def test_adaptive_weight_matches_hand_computation():
    last = nn.Linear(3, 2)
    x, target = torch.randn(4, 3), torch.randn(4, 2)
    out = last(x)
    rec = (out - target).abs().mean()
    gan = -(out * torch.tensor([1.0, 3.0])).mean()
    # d rec / dW = sign(out - t)^T x / 8 ;  d gan / dW = -[1, 3]^T (sum x) / 8
    g_rec = torch.sign(out - target).t() @ x / 8
    g_gan = -torch.tensor([[1.0], [3.0]]) * x.sum(0, keepdim=True) / 8
    expected = g_rec.norm() / (g_gan.norm() + 1e-6)
    weight = adaptive_gan_weight(rec, gan, last.weight)
    assert torch.allclose(weight, expected, atol=1e-5) and not weight.requires_grad
    assert adaptive_gan_weight(rec, gan * 1e-9, last.weight, max_weight=10.0) == 10.0


def test_last_layer_weight_declared_or_last_registered():
    from translate.nets.generators.vit_siren import VitSirenGenerator
    gen = VitSirenGenerator(in_channels=3, out_channels=3, image_size=16, patch_size=8, dim=16, depth=1, heads=2)
    assert last_layer_weight(gen) is gen.decoder.to_pixels.weight
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Conv2d(4, 3, 1))
    assert last_layer_weight(net) is net[2].weight


# ----------------------------------------------------------------------------- EMA

def test_ema_follows_the_formula_and_copies_buffers():
    model = nn.Sequential(nn.Linear(3, 3), nn.BatchNorm1d(3))
    ema = EMA(model, decay=0.9)
    p0 = [p.detach().clone() for p in model.parameters()]
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    model(torch.randn(8, 3))                      # moves the batch-norm running stats
    ema.update(model)
    for shadow, before, now in zip(ema.shadow_module.parameters(), p0, model.parameters()):
        assert torch.allclose(shadow, 0.9 * before + 0.1 * now)
    assert torch.equal(ema.shadow_module[1].running_mean, model[1].running_mean)
    assert not any(p.requires_grad for p in ema.shadow_module.parameters())
    restored = EMA(model, decay=0.9)
    restored.load_state_dict(ema.state_dict())
    assert all(torch.equal(a, b) for a, b in zip(restored.shadow_module.parameters(), ema.shadow_module.parameters()))
