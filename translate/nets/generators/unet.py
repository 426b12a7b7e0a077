"""U-Net generator of pix2pix (Isola et al., CVPR 2017).

Tensor contract: N x in_channels x H x W -> N x out_channels x H x W in (-1, 1).
H and W must be multiples of 2**num_downs (256 for unet_256, 128 for unet_128).

Built from the innermost block outwards; each block's ``model`` Sequential holds
the next block, which reproduces the classic nested parameter names
(``model.model.1.model.3...``) so classic checkpoints load unchanged.
"""
from __future__ import annotations

import torch
from torch import nn

from translate.nets.cpu_convs import SmallConvTranspose2d
from translate.nets.layers import norm_layer, uses_bias
from translate.nets.signatures import SizeRule


class UnetSkipBlock(nn.Module):
    """Downsample, run the inner block, upsample, and concatenate the input (skip)."""

    def __init__(self, outer: int, inner: int, *, in_channels: int | None = None,
                 submodule: nn.Module | None = None, outermost: bool = False,
                 norm: str = "batch", use_dropout: bool = False):
        super().__init__()
        self.outermost = outermost
        make_norm, bias = norm_layer(norm), uses_bias(norm)
        in_channels = outer if in_channels is None else in_channels
        down = nn.Conv2d(in_channels, inner, 4, stride=2, padding=1, bias=bias)
        if submodule is None:  # innermost: nothing to concatenate from below
            layers = [nn.LeakyReLU(0.2, True), down, nn.ReLU(True),
                      SmallConvTranspose2d(inner, outer, 4, stride=2, padding=1, bias=bias),
                      make_norm(outer)]
        elif outermost:
            layers = [down, submodule, nn.ReLU(True),
                      SmallConvTranspose2d(inner * 2, outer, 4, stride=2, padding=1), nn.Tanh()]
        else:
            layers = [nn.LeakyReLU(0.2, True), down, make_norm(inner), submodule, nn.ReLU(True),
                      SmallConvTranspose2d(inner * 2, outer, 4, stride=2, padding=1, bias=bias),
                      make_norm(outer)]
            if use_dropout:
                layers.append(nn.Dropout(0.5))
        self.model = nn.Sequential(*layers)

    def forward(self, x):
        if self.outermost:
            return self.model(x)
        return torch.cat([x, self.model(x)], 1)


class UnetGenerator(nn.Module):
    def __init__(self, *, in_channels: int = 3, out_channels: int = 3, base_channels: int = 64,
                 norm: str = "batch", use_dropout: bool = False, num_downs: int = 8):
        super().__init__()
        if num_downs < 5:
            raise ValueError("a U-Net generator needs at least 5 downsamplings")
        self.size_multiple, self.min_side = self.size_rule(num_downs=num_downs)
        ch = base_channels
        block = UnetSkipBlock(ch * 8, ch * 8, norm=norm)
        for _ in range(num_downs - 5):  # the extra 512-channel levels
            block = UnetSkipBlock(ch * 8, ch * 8, submodule=block, norm=norm, use_dropout=use_dropout)
        for mult in (4, 2, 1):  # 512 -> 256 -> 128 -> 64 channels
            block = UnetSkipBlock(ch * mult, ch * mult * 2, submodule=block, norm=norm)
        self.model = UnetSkipBlock(out_channels, ch, in_channels=in_channels, submodule=block,
                                   outermost=True, norm=norm)

    @staticmethod
    def size_rule(*, num_downs: int) -> SizeRule:
        # The innermost level is 1x1 (no norm there); the levels above keep 2x2 or more.
        return SizeRule(2 ** num_downs, 2 ** num_downs)

    def forward(self, x):
        return self.model(x)
