"""ViT-SIREN generator: ViTGAN's transformer generator (Lee et al. 2021, "ViTGAN:
Training GANs with Vision Transformers", section 4.2) adapted to translate an
input image instead of decoding a noise vector.

Pipeline:

1. Patch embedding: a linear map of each flattened P x P input patch (a conv
   with kernel = stride = P), plus a learned position table for ``image_size``
   that is resampled bicubically over the token grid for other sizes.
2. Self-modulated LayerNorm (SLN) transformer blocks. ViTGAN feeds the latent
   through the LayerNorm's scale and shift instead of the token sequence:
       SLN(h, w) = gamma(w) * (h - mean(h)) / std(h) + beta(w),   w = MLP(latent).
   Here the latent is the mean of the input tokens (a global summary of the
   source image), optionally concatenated with noise z ~ N(0, I) of
   ``noise_dim`` drawn afresh at each training forward (zeros in eval mode, so
   test-time translation is deterministic).
3. Implicit patch decoder: each final token e_i is turned into its P x P pixels
   by a small SIREN (Sitzmann et al. 2020) evaluated at the pixel coordinates
   v in [-1, 1]^2 of the patch: Fourier features E_fou(v) = sin(omega_f (B v + b)),
   then fully connected layers with sine activations whose weights are
   modulated by e_i and demodulated, as in StyleGAN2 (Karras et al. 2020) and
   CIPS (Anokhin et al. 2021). The patches are stitched and passed through tanh.
   Because a patch is a smooth function of its coordinates, the generator
   cannot emit the blocky artefacts of a plain linear patch projection.
4. Pixel skip (our addition for translation, ``pixel_channels``; 0 turns it
   off): a token summarises a whole P x P patch, so input detail finer than a
   patch (label borders, edges) cannot reach the output through it. Two 3x3
   convolutions of the input give ``pixel_channels`` features per pixel, which
   join the SIREN features at the last, linear layer - after the sine layers,
   so the output stays a smooth function of them - with the token's modulation
   applied to them as well.

Options against patch seams (issue 15). Off, each gives the network above exactly; the decode
overlap is on by default (a quarter patch), the others off. Checkpoints that do not record
them rebuild the network of their time (``translate.networks.RECORDS_BEFORE``):

- ``decode_overlap`` M (--vit_decode_overlap, 0 to P/2, default P/4): each token's SIREN decodes a
  (P + 2M) x (P + 2M) window centred on its patch (the same coordinate spacing, so the
  coordinates run past [-1, 1]; pixel-skip features gathered with F.unfold), and the windows
  are overlap-added with a separable raised-cosine weight (``blend_window``: 1 in the middle
  of the patch, a cross-fade over the 2M pixels around each border) divided by the summed
  weights (F.fold; ``overlap_add``). Why: with M = 0 neighbouring patches are independent
  functions, and nothing makes them meet at the border: the seams of issue 15. Cost: the
  decoder evaluates (1 + 2M/P)^2 as many pixels.
- ``stem`` "conv" (--vit_stem conv): the patch embedding is a stack of stride-2 3x3
  convolutions with a per-pixel LayerNorm and ReLU until the stride is P, then a 1x1 to dim
  (``ConvStem``; Xiao et al. 2021, "Early convolutions help transformers see better"), in
  place of the single P x P linear map. Why: the paper finds it trains more stably and
  faster; here it also gives the tokens overlapping receptive fields across patch borders.
  P must be a power of two.
- ``fourier_scale`` (--vit_fourier_scale): omega_f of the Fourier features (default
  pi P / 4, see SirenPatchDecoder); larger values let a patch hold finer detail.
- ``output_init`` "linear" (--vit_output_init): the decoder's last, linear layer starts with
  nn.Linear's scale instead of SIREN's (which divides by omega = 30, meant for sine layers):
  with SIREN's, the first outputs vary by about 0.06 around grey, and Adam needs on the order
  of a thousand steps to grow them (the grey, washed-out outputs of issue 15). Initialisation
  only: loaded weights are the same either way.

Tensor contract: N x in_channels x H x W -> N x out_channels x H x W in (-1, 1);
H and W must be multiples of patch_size.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from translate.nets.generators.vit_patches import STEMS, ConvStem, blend_window, overlap_add
from translate.nets.layers import resize_pos_embed
from translate.nets.signatures import SizeRule


class SelfModulatedLayerNorm(nn.Module):
    """SLN(h, w) = gamma(w) * LayerNorm(h) + beta(w), with gamma, beta affine in w.

    Raw parameters (not nn.Linear children) so that translate.nets.layers.init_weights
    leaves them alone: the bias starts at gamma = 1, beta = 0 (a plain
    LayerNorm) and the small weights let w modulate from the first step.
    """

    keeps_own_init = True

    def __init__(self, dim: int, w_dim: int, eps: float = 1e-6):
        super().__init__()
        self.dim, self.eps = dim, eps
        self.weight = nn.Parameter(torch.randn(2 * dim, w_dim) * 0.02)
        self.bias = nn.Parameter(torch.cat([torch.ones(dim), torch.zeros(dim)]))

    def forward(self, h: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        gamma, beta = F.linear(w, self.weight, self.bias).unsqueeze(1).chunk(2, dim=-1)  # N, 1, dim each
        return gamma * F.layer_norm(h, (self.dim,), eps=self.eps) + beta


class Attention(nn.Module):
    """Standard multi-head dot-product self-attention (fused kernel via SDPA)."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim {dim} must be divisible by heads {heads}")
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, t, d = x.shape
        q, k, v = self.qkv(x).reshape(n, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(q, k, v)
        return self.proj(out.transpose(1, 2).reshape(n, t, d))


class GeneratorBlock(nn.Module):
    def __init__(self, dim: int, heads: int, mlp_ratio: int):
        super().__init__()
        self.norm1 = SelfModulatedLayerNorm(dim, dim)
        self.attn = Attention(dim, heads)
        self.norm2 = SelfModulatedLayerNorm(dim, dim)
        self.mlp = nn.Sequential(nn.Linear(dim, dim * mlp_ratio), nn.GELU(), nn.Linear(dim * mlp_ratio, dim))

    def forward(self, h: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        h = h + self.attn(self.norm1(h, w))
        return h + self.mlp(self.norm2(h, w))


class ModulatedSiren(nn.Module):
    """A fully connected layer whose weights each patch embedding modulates.

    For style s = A(e) (one per patch), the effective weight is W * s (scaling
    input columns); with ``demodulate`` each output row is rescaled to the norm
    a SIREN-initialised row has in expectation, sqrt(2) / omega, so the
    pre-activation omega * (W' h + b) keeps SIREN's unit-variance statistics
    whatever the style. Computed as W (s * h) * d instead of materialising one
    weight matrix per patch.
    """

    keeps_own_init = True

    def __init__(self, in_features: int, out_features: int, style_dim: int, *, omega: float = 30.0,
                 demodulate: bool = True, sine: bool = True):
        super().__init__()
        self.omega, self.demodulate, self.sine = omega, demodulate, sine
        bound = math.sqrt(6 / in_features) / omega                # SIREN init for layers after the first
        self.weight = nn.Parameter(torch.empty(out_features, in_features).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(out_features).uniform_(-1 / math.sqrt(in_features),
                                                                    1 / math.sqrt(in_features)))
        # Style affine: s = 1 + small at init, as StyleGAN2's bias-1 affine layers.
        self.style_weight = nn.Parameter(torch.randn(in_features, style_dim) / math.sqrt(style_dim))
        self.style_bias = nn.Parameter(torch.ones(in_features))

    def forward(self, h: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        # h: N x T x K x in (K pixels per patch), style: N x T x style_dim
        s = F.linear(style, self.style_weight, self.style_bias)                 # N, T, in
        out = (h * s.unsqueeze(2)) @ self.weight.t()                             # N, T, K, out
        if self.demodulate:
            row_norm2 = s.pow(2) @ self.weight.pow(2).t()                        # N, T, out
            out = out * (math.sqrt(2) / self.omega * torch.rsqrt(row_norm2 + 1e-8)).unsqueeze(2)
        out = out + self.bias
        return torch.sin(self.omega * out) if self.sine else out


OUTPUT_INITS = ("siren", "linear")   # how the decoder's last (linear) layer starts: --vit_output_init


class SirenPatchDecoder(nn.Module):
    """Maps N x T x dim patch embeddings to N x T x (P*P) x out_channels pixel values."""

    keeps_own_init = True

    def __init__(self, *, dim: int, patch_size: int, out_channels: int, hidden: int = 64,
                 layers: int = 2, fourier_scale: float | None = None, omega: float = 30.0,
                 pixel_channels: int = 0, overlap: int = 0, output_init: str = "siren"):
        super().__init__()
        # SIREN's first-layer w0 = 30 assumes coordinates spanning a whole image of
        # hundreds of pixels; ours span one patch of P. The default keeps the
        # highest Fourier frequency at a quarter of the patch grid's Nyquist
        # rate (a phase step of at most pi/4 between neighbouring pixels).
        self.fourier_scale = fourier_scale if fourier_scale is not None else math.pi * patch_size / 4
        # First layer: SIREN init U(-1/fan_in, 1/fan_in) with fan_in = 2 coordinates.
        self.fourier_weight = nn.Parameter(torch.empty(hidden, 2).uniform_(-0.5, 0.5))
        self.fourier_bias = nn.Parameter(torch.empty(hidden).uniform_(-1 / math.sqrt(2), 1 / math.sqrt(2)))
        self.layers = nn.ModuleList(ModulatedSiren(hidden, hidden, dim, omega=omega) for _ in range(layers))
        self.to_pixels = ModulatedSiren(hidden + pixel_channels, out_channels, dim, omega=omega,
                                        demodulate=False, sine=False)
        if output_init == "linear":
            # The last layer has no sine, so SIREN's 1/omega scale only shrinks it: its outputs start
            # at a std of about 0.06 (grey after tanh) and Adam grows each weight by about lr a step.
            # nn.Linear's U(+-1/sqrt(fan_in)) starts them at a std of about 0.4 instead.
            bound = 1 / math.sqrt(hidden + pixel_channels)
            with torch.no_grad():
                self.to_pixels.weight.uniform_(-bound, bound)
        elif output_init != "siren":
            raise ValueError(f"unknown output_init {output_init!r}; choose one of {', '.join(OUTPUT_INITS)}")
        # Pixel centres in (-1, 1) across the patch; an overlap of M pixels extends the grid by M
        # pixels each side at the same spacing (coordinates past +-1), so the window's middle P x P
        # are exactly the coordinates of the plain patch.
        centers = (torch.arange(-overlap, patch_size + overlap) + 0.5) / patch_size * 2 - 1
        yy, xx = torch.meshgrid(centers, centers, indexing="ij")
        self.register_buffer("coords", torch.stack([xx, yy], -1).reshape(-1, 2), persistent=False)

    def fourier_features(self, coords: torch.Tensor) -> torch.Tensor:
        """E_fou(v) = sin(omega_f (B v + b)) for K x 2 coordinates -> K x hidden."""
        return torch.sin(self.fourier_scale * F.linear(coords, self.fourier_weight, self.fourier_bias))

    def forward(self, tokens: torch.Tensor, coords: torch.Tensor | None = None,
                pixels: torch.Tensor | None = None) -> torch.Tensor:
        coords = self.coords if coords is None else coords
        h = self.fourier_features(coords.to(tokens.dtype))[None, None]          # 1, 1, K, hidden
        for layer in self.layers:
            h = layer(h, tokens)
        if pixels is not None:                                                  # N, T, K, pixel_channels
            h = torch.cat([h.expand(*pixels.shape[:3], -1), pixels], dim=-1)
        return self.to_pixels(h, tokens)                                         # N, T, K, out


class VitSirenGenerator(nn.Module):
    def __init__(self, *, in_channels: int = 3, out_channels: int = 3, image_size: int = 256,
                 patch_size: int = 8, dim: int = 128, depth: int = 4, heads: int = 2, noise_dim: int = 0,
                 mlp_ratio: int = 4, siren_hidden: int = 64, siren_layers: int = 2,
                 fourier_scale: float | None = None, pixel_channels: int = 32, decode_overlap: int | None = None,
                 stem: str = "linear", output_init: str = "siren"):
        super().__init__()
        if image_size % patch_size:
            raise ValueError(f"image_size {image_size} must be a multiple of patch_size {patch_size}")
        if decode_overlap is None:   # a quarter patch each side: it removed the seams (README, equal-time table)
            decode_overlap = patch_size // 4
        if not 0 <= decode_overlap <= patch_size // 2:
            raise ValueError(f"decode_overlap {decode_overlap} must lie in [0, patch_size / 2] "
                             f"= [0, {patch_size // 2}] (a window reaches at most half into its neighbours)")
        if stem not in STEMS:
            raise ValueError(f"unknown stem {stem!r}; choose one of {', '.join(STEMS)}")
        self.decode_overlap = decode_overlap
        self.patch_size = patch_size
        self.size_multiple, self.min_side = self.size_rule(patch_size=patch_size, pixel_channels=pixel_channels)
        self.out_channels = out_channels
        self.noise_dim = noise_dim
        self.grid = (image_size // patch_size, image_size // patch_size)
        if stem == "linear":
            self.patch_embed = nn.Conv2d(in_channels, dim, patch_size, stride=patch_size)
        else:
            self.patch_embed = ConvStem(in_channels, dim, patch_size)
        self.pos_embed = nn.Parameter(torch.randn(1, self.grid[0] * self.grid[1], dim) * 0.02)
        self.mapping = nn.Sequential(nn.Linear(dim + noise_dim, dim), nn.LeakyReLU(0.2), nn.Linear(dim, dim))
        self.blocks = nn.ModuleList(GeneratorBlock(dim, heads, mlp_ratio) for _ in range(depth))
        self.norm = SelfModulatedLayerNorm(dim, dim)
        self.decoder = SirenPatchDecoder(dim=dim, patch_size=patch_size, out_channels=out_channels,
                                         hidden=siren_hidden, layers=siren_layers, fourier_scale=fourier_scale,
                                         pixel_channels=pixel_channels, overlap=decode_overlap,
                                         output_init=output_init)
        if decode_overlap:
            self.register_buffer("blend_weight", blend_window(patch_size, decode_overlap), persistent=False)
        self.pixel_channels = pixel_channels
        if pixel_channels:
            # tanh keeps the features in [-1, 1], the range of the sine features beside them.
            self.pixel_stem = nn.Sequential(
                nn.Conv2d(in_channels, pixel_channels, 3, padding=1, padding_mode="reflect"), nn.LeakyReLU(0.2),
                nn.Conv2d(pixel_channels, pixel_channels, 3, padding=1, padding_mode="reflect"), nn.Tanh())

    @staticmethod
    def size_rule(*, patch_size: int, pixel_channels: int) -> SizeRule:
        # One patch; the pixel skip's reflection padding needs a side of 2 at least.
        return SizeRule(patch_size, max(patch_size, 2) if pixel_channels else patch_size)

    @property
    def last_layer(self) -> nn.Parameter:
        """The weight nearest the output (for the adaptive GAN weight)."""
        return self.decoder.to_pixels.weight

    @property
    def latent_dim(self) -> int:
        """Size of the noise latent ``z`` that ``forward`` takes (0: none)."""
        return self.noise_dim

    def forward(self, x: torch.Tensor, z: torch.Tensor | None = None) -> torch.Tensor:
        """``z``: N x noise_dim latent to use; None draws z ~ N(0, I) in training mode, zeros in eval.

        An explicit latent is for LOGAN's latent optimisation (translate/training/latent_optimization.py).
        """
        n, _, height, width = x.shape
        p = self.patch_size
        if height % p or width % p:
            raise ValueError(f"VitSirenGenerator needs H and W that are multiples of patch_size {p}; "
                             f"got {height}x{width}")
        grid = (height // p, width // p)
        tokens = self.patch_embed(x).flatten(2).transpose(1, 2)                 # N, T, dim
        latent = tokens.mean(1)
        if z is not None and (not self.noise_dim or tuple(z.shape) != (n, self.noise_dim)):
            raise ValueError(f"VitSirenGenerator with noise_dim {self.noise_dim} takes a latent of shape "
                             f"({n}, {self.noise_dim}); got {tuple(z.shape)}")
        if self.noise_dim:
            if z is None:
                z = (torch.randn if self.training else torch.zeros)(n, self.noise_dim, device=x.device,
                                                                    dtype=latent.dtype)
            latent = torch.cat([latent, z.to(latent.dtype)], dim=1)
        w = self.mapping(latent)
        h = tokens + resize_pos_embed(self.pos_embed, self.grid, grid)
        for block in self.blocks:
            h = block(h, w)
        if self.decode_overlap:
            return torch.tanh(self._decode_windows(self.norm(h, w), x))
        pixels = None
        if self.pixel_channels:
            f = self.pixel_stem(x)                                              # N, c, H, W
            pixels = f.reshape(n, -1, grid[0], p, grid[1], p).permute(0, 2, 4, 3, 5, 1)
            pixels = pixels.reshape(n, grid[0] * grid[1], p * p, -1)           # N, T, P*P, c
        patches = self.decoder(self.norm(h, w), pixels=pixels)                 # N, T, P*P, C
        image = patches.reshape(n, grid[0], grid[1], p, p, self.out_channels)
        image = image.permute(0, 5, 1, 3, 2, 4).reshape(n, self.out_channels, height, width)
        return torch.tanh(image)

    def _decode_windows(self, tokens: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Each token decodes its (P + 2M)^2 window; the windows are overlap-added (pre-tanh)."""
        p, m = self.patch_size, self.decode_overlap
        window = p + 2 * m
        pixels = None
        if self.pixel_channels:
            # Zero padding: the window pixels outside the image are decoded, then dropped by the fold.
            f = F.unfold(self.pixel_stem(x), window, stride=p, padding=m)       # N, c*K, T
            pixels = f.reshape(x.shape[0], self.pixel_channels, window * window, -1).permute(0, 3, 2, 1)
        patches = self.decoder(tokens, pixels=pixels)                           # N, T, K, C
        return overlap_add(patches, self.blend_weight, x.shape[-2:], p, m)
