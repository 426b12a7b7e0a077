"""ViT discriminator of ViTGAN (Lee et al. 2021, "ViTGAN: Training GANs with
Vision Transformers", section 4.1).

Three changes make a Vision Transformer usable as a GAN discriminator:

* L2 self-attention with tied query and key weights (W_q = W_k). Dot-product
  attention is not Lipschitz; the L2 distance form with tied weights is
  (Kim et al. 2021), which keeps the discriminator's gradients bounded:
      Attention(X) = softmax(-||X W_q - X W_k||^2 / sqrt(d_h)) X W_v
* improved spectral normalization on every layer (translate/nets/spectral.py);
* overlapping patches: each P x P patch is widened by ``overlap`` pixels on
  every side, so the discriminator sees across patch borders and is less
  prone to overfit to the fixed grid. With stride P and padding ``overlap``
  the token grid equals the non-overlapping one (H/P x W/P).

The paper also uses DiffAugment and balanced consistency regularization; they
act on the images and losses, so they live in translate/training/augment.py and losses.py.

Tensor contract: N x in_channels x H x W (H, W multiples of patch_size)
-> N x 1 logits read from the class token.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from translate.nets.layers import resize_pos_embed
from translate.nets.signatures import SizeRule
from translate.nets.spectral import apply_improved_spectral_norm


class L2Attention(nn.Module):
    """Multi-head L2 self-attention with one shared query/key projection.

    With W_q = W_k and self-attention, queries and keys are the same tensor q.
    The logits are -||q_i - q_j||^2 / sqrt(d_h) = (2 q_i.q_j - ||q_i||^2 - ||q_j||^2) / sqrt(d_h).
    The -||q_i||^2 term is constant along the softmax axis j and cancels, so we
    hand scaled_dot_product_attention the scale 2/sqrt(d_h) and an additive mask
    of -||q_j||^2 / sqrt(d_h): the same softmax, without ever forming the
    N x T x T x d_h difference tensor (and with the fused kernels' memory use).
    """

    def __init__(self, dim: int, heads: int):
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim {dim} must be divisible by heads {heads}")
        self.heads = heads
        # No bias: a bias shared by query and key cancels in q_i - q_j.
        self.qk = nn.Linear(dim, dim, bias=False)
        self.v = nn.Linear(dim, dim)
        self.proj = nn.Linear(dim, dim)

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        n, t, d = x.shape
        return x.reshape(n, t, self.heads, d // self.heads).transpose(1, 2)  # N, heads, T, d_h

    def attention_logits(self, x: torch.Tensor) -> torch.Tensor:
        """Full logits -||q_i - q_j||^2 / sqrt(d_h), N x heads x T x T (for tests / inspection)."""
        q = self._split(self.qk(x))
        sq = q.pow(2).sum(-1)
        dist2 = sq.unsqueeze(-1) + sq.unsqueeze(-2) - 2 * q @ q.transpose(-1, -2)
        return -dist2 / q.shape[-1] ** 0.5

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q = self._split(self.qk(x))
        v = self._split(self.v(x))
        d_h = q.shape[-1]
        key_bias = (-q.pow(2).sum(-1) / d_h ** 0.5).unsqueeze(-2)  # N, heads, 1, T
        out = F.scaled_dot_product_attention(q, q, v, attn_mask=key_bias.to(q.dtype), scale=2 / d_h ** 0.5)
        return self.proj(out.transpose(1, 2).flatten(2))


class DiscriminatorBlock(nn.Module):
    """Pre-norm transformer block: x + L2Attn(LN(x)), then x + MLP(LN(x))."""

    def __init__(self, dim: int, heads: int, mlp_ratio: int):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = L2Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, dim * mlp_ratio), nn.GELU(), nn.Linear(dim * mlp_ratio, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class VitDiscriminator(nn.Module):
    def __init__(self, *, in_channels: int = 3, image_size: int = 256, patch_size: int = 8,
                 overlap: int = 2, dim: int = 128, depth: int = 4, heads: int = 2, mlp_ratio: int = 4,
                 improved_spectral_norm: bool = True):
        super().__init__()
        if image_size % patch_size:
            raise ValueError(f"image_size {image_size} must be a multiple of patch_size {patch_size}")
        self.patch_size = patch_size
        self.size_multiple, self.min_side = self.size_rule(patch_size=patch_size)
        self.grid = (image_size // patch_size, image_size // patch_size)
        # Kernel P + 2*overlap, stride P, padding overlap: overlapping patches on the
        # non-overlapping token grid.
        self.patch_embed = nn.Conv2d(in_channels, dim, patch_size + 2 * overlap, stride=patch_size, padding=overlap)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.cls_pos = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, self.grid[0] * self.grid[1], dim))
        self.blocks = nn.Sequential(*[DiscriminatorBlock(dim, heads, mlp_ratio) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, 1)
        self._init()
        if improved_spectral_norm:
            # After _init: ISN freezes the initial spectral norms as its targets.
            apply_improved_spectral_norm(self)
        # translate.nets.layers.init_weights must not re-draw these weights: ISN's
        # sigma_init was taken from the ones drawn above.
        for m in self.modules():
            m.keeps_own_init = True

    @staticmethod
    def size_rule(*, patch_size: int) -> SizeRule:
        return SizeRule(patch_size, patch_size)   # one token is enough

    def _init(self) -> None:
        # The usual ViT initialisation: small truncated normals, zero biases.
        for m in self.modules():
            if isinstance(m, (nn.Linear, nn.Conv2d)):
                nn.init.trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
        for p in (self.cls_token, self.cls_pos, self.pos_embed):
            nn.init.trunc_normal_(p, std=0.02)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        if h % self.patch_size or w % self.patch_size:
            raise ValueError(f"VitDiscriminator needs H and W that are multiples of patch_size "
                             f"{self.patch_size}; got {h}x{w}")
        tokens = self.patch_embed(x).flatten(2).transpose(1, 2)          # N, T, dim
        pos = resize_pos_embed(self.pos_embed, self.grid, (h // self.patch_size, w // self.patch_size))
        cls = (self.cls_token + self.cls_pos).expand(x.shape[0], -1, -1)
        tokens = torch.cat([cls, tokens + pos], dim=1)
        tokens = self.norm(self.blocks(tokens))
        return self.head(tokens[:, 0])                                    # N, 1
