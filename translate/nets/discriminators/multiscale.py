"""Multi-scale discriminator of pix2pixHD (Wang et al., CVPR 2018, "High-Resolution
Image Synthesis and Semantic Manipulation with Conditional GANs").

``num_D`` discriminators of the same architecture judge the image at full,
half, quarter... resolution: the coarse ones see global structure with the same
receptive field, the fine ones local detail. Between scales the image is
average-pooled (3x3, stride 2, padding excluded from the average so borders
are not darkened).

Tensor contract: N x in_channels x H x W -> a list of logit tensors, one per
scale (or per output, when a single discriminator returns a tuple); the GAN
loss sums over the list.
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn


class MultiscaleDiscriminator(nn.Module):
    def __init__(self, *, in_channels: int = 3, num_D: int = 2,
                 make_single: Callable[[], nn.Module] | None = None, **single_kwargs):
        """``make_single`` builds one discriminator; by default a PatchGAN
        (NLayerDiscriminator) with ``in_channels`` and ``single_kwargs``
        (base_channels, n_layers, norm, ...)."""
        super().__init__()
        if num_D < 1:
            raise ValueError(f"--num_D must be at least 1, got {num_D}")
        if make_single is None:
            from translate.nets.discriminators.patchgan import NLayerDiscriminator

            def make_single():
                return NLayerDiscriminator(in_channels=in_channels, **single_kwargs)
        self.discriminators = nn.ModuleList(make_single() for _ in range(num_D))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        outputs: list[torch.Tensor] = []
        for i, disc in enumerate(self.discriminators):
            if i:
                x = F.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False)
            out = disc(x)
            outputs.extend(out if isinstance(out, (tuple, list)) else [out])
        return outputs
