"""ResNet generator of Johnson et al. (2016), as used by CycleGAN (Zhu et al., ICCV 2017).

Tensor contract: N x in_channels x H x W -> N x out_channels x H x W in (-1, 1).
H and W must be multiples of 4 (two stride-2 downsamplings).

The module layout (one ``model`` Sequential, ``conv_block`` inside each residual
block) reproduces the classic implementation's parameter names, so its
``latest_net_G_A.pth`` files load unchanged.
"""
from __future__ import annotations

from torch import nn

from translate.nets.layers import SelfAttention2d, norm_layer, uses_bias
from translate.nets.signatures import SizeRule
from translate.nets.cpu_convs import WinogradConv2d

SIZE_MULTIPLE = 4


class ResnetBlock(nn.Module):
    """Two 3x3 convs with reflection padding and a skip connection."""

    def __init__(self, channels: int, *, norm: str, use_dropout: bool):
        super().__init__()
        make_norm, bias = norm_layer(norm), uses_bias(norm)
        # WinogradConv2d: an nn.Conv2d that trains faster on the CPU (translate/nets/cpu_convs.py).
        layers = [nn.ReflectionPad2d(1), WinogradConv2d(channels, channels, 3, bias=bias),
                  make_norm(channels), nn.ReLU(True)]
        if use_dropout:
            layers.append(nn.Dropout(0.5))
        layers += [nn.ReflectionPad2d(1), WinogradConv2d(channels, channels, 3, bias=bias),
                   make_norm(channels)]
        self.conv_block = nn.Sequential(*layers)

    def forward(self, x):
        return x + self.conv_block(x)


class ResnetGenerator(nn.Module):
    size_multiple = SIZE_MULTIPLE
    # The bottleneck (1/4 of the input) needs 2x2: instance norm wants more than one value
    # per channel and the blocks' reflection pads need a side above 1.
    min_side = 2 * SIZE_MULTIPLE

    @staticmethod
    def size_rule() -> SizeRule:
        return SizeRule(SIZE_MULTIPLE, 2 * SIZE_MULTIPLE)

    def __init__(self, *, in_channels: int = 3, out_channels: int = 3, base_channels: int = 64,
                 norm: str = "instance", use_dropout: bool = False, n_blocks: int = 9,
                 self_attention: bool = False):
        super().__init__()
        make_norm, bias = norm_layer(norm), uses_bias(norm)
        ch = base_channels
        layers = [nn.ReflectionPad2d(3), nn.Conv2d(in_channels, ch, 7, bias=bias),
                  make_norm(ch), nn.ReLU(True)]
        for _ in range(2):  # downsample: 64 -> 128 -> 256 channels at the default width
            layers += [nn.Conv2d(ch, ch * 2, 3, stride=2, padding=1, bias=bias),
                       make_norm(ch * 2), nn.ReLU(True)]
            ch *= 2
        for i in range(n_blocks):
            layers.append(ResnetBlock(ch, norm=norm, use_dropout=use_dropout))
            if self_attention and i == n_blocks // 2 - 1:
                # SAGAN-style global context at the bottleneck, halfway through the blocks.
                layers.append(SelfAttention2d(ch))
        for _ in range(2):
            layers += [nn.ConvTranspose2d(ch, ch // 2, 3, stride=2, padding=1, output_padding=1,
                                          bias=bias),
                       make_norm(ch // 2), nn.ReLU(True)]
            ch //= 2
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ch, out_channels, 7), nn.Tanh()]
        self.model = nn.Sequential(*layers)

    def forward(self, x):
        return self.model(x)
