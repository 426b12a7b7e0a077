"""PatchGAN discriminators of pix2pix (Isola et al., CVPR 2017).

``NLayerDiscriminator`` with n_layers=3 is the 70x70 PatchGAN (--netD basic);
``PixelDiscriminator`` is the 1x1 PixelGAN (--netD pixel).

Tensor contract: N x in_channels x H x W -> N x 1 x h x w real/fake logits
(h = H/8 - 2 for the 70x70 PatchGAN). Parameter names match the classic
implementation (``model.N`` / ``net.N``) so its checkpoints load.
"""
from __future__ import annotations

from torch import nn

from translate.nets.layers import SelfAttention2d, norm_layer, uses_bias
from translate.nets.signatures import SizeRule, conv_out, normalizes, smallest


class NLayerDiscriminator(nn.Module):
    def __init__(self, *, in_channels: int = 3, base_channels: int = 64, n_layers: int = 3,
                 norm: str = "batch", self_attention: bool = False):
        super().__init__()
        self.size_multiple, self.min_side = self.size_rule(n_layers=n_layers, norm=norm)
        make_norm, bias = norm_layer(norm), uses_bias(norm)
        ch = base_channels
        layers = [nn.Conv2d(in_channels, ch, 4, stride=2, padding=1), nn.LeakyReLU(0.2, True)]
        mult = 1
        for n in range(1, n_layers + 1):
            prev, mult = mult, min(2 ** n, 8)
            stride = 2 if n < n_layers else 1  # the last hidden layer keeps the resolution
            layers += [nn.Conv2d(ch * prev, ch * mult, 4, stride=stride, padding=1, bias=bias),
                       make_norm(ch * mult), nn.LeakyReLU(0.2, True)]
            if self_attention and n == 1:
                layers.append(SelfAttention2d(ch * mult))
        layers.append(nn.Conv2d(ch * mult, 1, 4, stride=1, padding=1))
        self.model = nn.Sequential(*layers)

    @staticmethod
    def runs_on(side: int, *, n_layers: int, norm: str) -> bool:
        """Whether a side-by-side image gets through: 4x4 convs (padding 1) shrink it, and each
        norm layer needs more than one value per channel."""
        side = conv_out(side, 4, 2, 1)
        for n in range(1, n_layers + 1):
            side = conv_out(side, 4, 2 if n < n_layers else 1, 1)
            if side < 1 or (normalizes(norm) and side < 2):
                return False
        return conv_out(side, 4, 1, 1) >= 1

    @staticmethod
    def size_rule(*, n_layers: int, norm: str) -> SizeRule:
        return SizeRule(1, smallest(lambda side: NLayerDiscriminator.runs_on(side, n_layers=n_layers, norm=norm)))

    def forward(self, x):
        return self.model(x)


class PixelDiscriminator(nn.Module):
    def __init__(self, *, in_channels: int = 3, base_channels: int = 64, norm: str = "batch"):
        super().__init__()
        self.size_multiple, self.min_side = self.size_rule(norm=norm)
        make_norm, bias = norm_layer(norm), uses_bias(norm)
        ch = base_channels
        self.net = nn.Sequential(
            nn.Conv2d(in_channels, ch, 1), nn.LeakyReLU(0.2, True),
            nn.Conv2d(ch, ch * 2, 1, bias=bias), make_norm(ch * 2), nn.LeakyReLU(0.2, True),
            nn.Conv2d(ch * 2, 1, 1, bias=bias))

    @staticmethod
    def size_rule(*, norm: str) -> SizeRule:
        return SizeRule(1, 2 if normalizes(norm) else 1)   # 1x1 convs; the norm needs two pixels

    def forward(self, x):
        return self.net(x)
