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

import torch
import torch.nn.functional as F
from torch import nn

from translate.nets.discriminators.patchgan import NLayerDiscriminator
from translate.nets.signatures import SizeRule, conv_out, smallest


def _downsample(x: torch.Tensor) -> torch.Tensor:
    return F.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False)


class MultiscaleDiscriminator(nn.Module):
    """``num_D`` PatchGANs (NLayerDiscriminator with the other arguments), one per scale."""

    def __init__(self, *, in_channels: int = 3, num_D: int = 2, base_channels: int = 64, n_layers: int = 3,
                 norm: str = "batch", self_attention: bool = False):
        super().__init__()
        if num_D < 1:
            raise ValueError(f"--num_D must be at least 1, got {num_D}")
        self.size_multiple, self.min_side = self.size_rule(num_D=num_D, n_layers=n_layers, norm=norm)
        self.discriminators = nn.ModuleList(
            NLayerDiscriminator(in_channels=in_channels, base_channels=base_channels, n_layers=n_layers,
                                norm=norm, self_attention=self_attention) for _ in range(num_D))

    @staticmethod
    def size_rule(*, num_D: int, n_layers: int, norm: str) -> SizeRule:
        def runs(side: int) -> bool:   # the coarsest scale is the one that must fit
            for _ in range(num_D - 1):
                side = conv_out(side, 3, 2, 1)
            return NLayerDiscriminator.runs_on(side, n_layers=n_layers, norm=norm)
        return SizeRule(1, smallest(runs))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        outputs: list[torch.Tensor] = []
        for i, disc in enumerate(self.discriminators):
            if i:
                x = _downsample(x)
            out = disc(x)
            outputs.extend(out if isinstance(out, (tuple, list)) else [out])
        return outputs
