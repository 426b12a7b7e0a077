"""Patch embedding and patch blending for vit_siren (translate/nets/generators/vit_siren.py):
the convolutional stem of --vit_stem conv and the overlap-add of --vit_decode_overlap."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

STEMS = ("linear", "conv")


class ChannelLayerNorm(nn.Module):
    """LayerNorm over the channels of each pixel (N x C x H x W): no batch statistics (a batch of
    one trains as any other) and, unlike instance norm, no image-wide mean taken away."""

    def __init__(self, channels: int, eps: float = 1e-6):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.layer_norm(x.permute(0, 2, 3, 1), x.shape[1:2], self.weight, self.bias, self.eps)
        return x.permute(0, 3, 1, 2)


class ConvStem(nn.Module):
    """Convolutional patch embedding (Xiao et al. 2021, "Early convolutions help transformers see
    better"): 3x3 convolutions of stride 2, each followed by a norm and ReLU, until the stride is
    P, then a 1x1 to ``dim``.  Channels double per stage up to dim / 2 (dim 384, P 16: 24, 48, 96,
    192, as in the paper).  N x C x H x W -> N x dim x H/P x W/P, like the P x P linear map."""

    def __init__(self, in_channels: int, dim: int, patch_size: int):
        super().__init__()
        stages = patch_size.bit_length() - 1
        if patch_size != 1 << stages:
            raise ValueError(f"stem='conv' needs a patch_size that is a power of two (its stride-2 "
                             f"stages), got {patch_size}; use a power of two or stem='linear'")
        layers, channels = [], in_channels
        for k in range(1, stages + 1):
            out = max(dim >> (stages + 1 - k), 8)
            layers += [nn.Conv2d(channels, out, 3, stride=2, padding=1), ChannelLayerNorm(out), nn.ReLU()]
            channels = out
        layers.append(nn.Conv2d(channels, dim, 1))
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


def blend_window(patch_size: int, overlap: int) -> torch.Tensor:
    """The (P + 2M)^2 weights of one decoded window, flattened row-major: the outer product of a
    1-D taper that is 1 up to M pixels inside the patch border and falls as a raised cosine to 0
    at M pixels outside it.  Neighbouring tapers sum to 1 (a cross-fade over the 2M pixels around
    each border), and every pixel of the window keeps a weight above 0."""
    p, m = patch_size, overlap
    distance = (torch.arange(p + 2 * m, dtype=torch.float64) + 0.5 - (p + 2 * m) / 2).abs()
    ramp = ((distance - (p / 2 - m)) / (2 * m)).clamp(0, 1)                # 0 inside, 1 at the window edge
    taper = 0.5 * (1 + torch.cos(math.pi * ramp))
    return torch.outer(taper, taper).reshape(-1).float()


def overlap_add(patches: torch.Tensor, weight: torch.Tensor, size, patch_size: int, overlap: int) -> torch.Tensor:
    """N x T x K x C decoded windows (K = (P + 2M)^2, T tokens row-major over the H/P x W/P grid)
    -> N x C x H x W: the weighted sum of the windows over each pixel, divided by the sum of the
    weights there (so the image border, where fewer windows reach, is not darkened)."""
    n, t, k, c = patches.shape
    window = patch_size + 2 * overlap
    fold = dict(output_size=tuple(size), kernel_size=window, stride=patch_size, padding=overlap)
    weight = weight.to(patches.dtype)
    summed = F.fold((patches * weight[:, None]).permute(0, 3, 2, 1).reshape(n, c * k, t), **fold)
    norm = F.fold(weight[None, :, None].expand(1, k, t), **fold)               # 1, 1, H, W; > 0
    return summed / norm
