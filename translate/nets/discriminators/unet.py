"""U-Net discriminator of U-Net GAN (Schönfeld, Schiele and Khoreva, CVPR 2020,
"A U-Net Based Discriminator for Generative Adversarial Networks").

The encoder is an ordinary downsampling classifier that gives one global
real/fake logit per image; a decoder with skip connections upsamples its
features back to the input size and gives a real/fake logit for every pixel.
The per-pixel map feeds the generator local feedback, and it makes the CutMix
consistency regularization possible (translate/training/losses.py): the map of a
real/fake collage should be the collage of the two maps.

The paper builds on BigGAN residual blocks; here the blocks are the PatchGAN
style conv-norm-LeakyReLU of this framework so that --norm, --spectral_norm
and --self_attention mean the same thing as for the other discriminators. The
global head averages the bottleneck features (the paper sums them; the mean
keeps the logit's scale independent of the image size). The decoder has half
the encoder's widths: its 3x3 convs run at up to full resolution and would
otherwise cost ~3x the encoder (at 256 px, ~35 instead of ~68 GFLOP a forward).

Tensor contract: N x in_channels x H x W (H, W multiples of 2**n_down)
-> (N x 1 global logits, N x 1 x H x W per-pixel logits).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from translate.nets.layers import SelfAttention2d, norm_layer, uses_bias
from translate.nets.signatures import SizeRule, normalizes


def _conv_block(in_ch: int, out_ch: int, *, norm: str, stride: int = 1, kernel: int = 3) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_ch, out_ch, kernel, stride=stride, padding=(kernel - 1) // 2, bias=uses_bias(norm)),
        norm_layer(norm)(out_ch), nn.LeakyReLU(0.2, True))


class UNetDiscriminator(nn.Module):
    def __init__(self, *, in_channels: int = 3, base_channels: int = 64, n_down: int = 4,
                 norm: str = "instance", self_attention: bool = False):
        super().__init__()
        self.n_down = n_down
        self.size_multiple, self.min_side = self.size_rule(n_down=n_down, norm=norm)
        widths = [min(base_channels * 2 ** i, base_channels * 8) for i in range(n_down + 1)]
        # No norm on the first layer, as in PatchGAN: it would erase the input's colour statistics.
        self.stem = nn.Sequential(nn.Conv2d(in_channels, widths[0], 3, padding=1), nn.LeakyReLU(0.2, True))
        # Stride-2 4x4 convs halve the resolution: encoder level i has 1 / 2**i of the input size.
        self.down = nn.ModuleList(_conv_block(widths[i], widths[i + 1], norm=norm, stride=2, kernel=4)
                                  for i in range(n_down))
        self.attention = SelfAttention2d(widths[-1]) if self_attention else nn.Identity()
        self.global_head = nn.Linear(widths[-1], 1)
        # Decoder level i: upsample level i+1 features, concatenate encoder level i, convolve.
        dec = [max(w // 2, 1) for w in widths[:-1]] + [widths[-1]]
        self.up = nn.ModuleList(_conv_block(dec[i + 1] + widths[i], dec[i], norm=norm)
                                for i in reversed(range(n_down)))
        self.pixel_head = nn.Conv2d(dec[0], 1, 1)

    @staticmethod
    def size_rule(*, n_down: int, norm: str) -> SizeRule:
        # The bottleneck is 1 / 2**n_down of the input; its norm needs 2x2 there.
        return SizeRule(2 ** n_down, 2 ** n_down * (2 if normalizes(norm) else 1))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h, w = x.shape[-2:]
        if h % self.size_multiple or w % self.size_multiple:
            raise ValueError(f"UNetDiscriminator with n_down={self.n_down} needs H and W that are multiples "
                             f"of {self.size_multiple}; got {h}x{w}")
        skips = [self.stem(x)]
        for block in self.down:
            skips.append(block(skips[-1]))
        bottleneck = self.attention(skips.pop())
        global_logits = self.global_head(bottleneck.mean(dim=(2, 3)))          # N, 1
        d = bottleneck
        for block in self.up:
            skip = skips.pop()
            d = F.interpolate(d, size=skip.shape[-2:], mode="nearest")
            d = block(torch.cat([d, skip], dim=1))
        return global_logits, self.pixel_head(d)                                # N,1 and N,1,H,W
