"""Faster CPU training paths for two kinds of convolution layer, as drop-in nn subclasses.

Both keep the stock layer's parameters and state-dict keys (classic checkpoints load), and
take their own path only when training in fp32 on the CPU, eagerly; everything else
(inference, CUDA, autocast, torch.compile'd graphs, ONNX export) runs the stock layer.
``--stock_convs`` turns them off for a run.  The README gives the measured speed-ups.

* ``WinogradConv2d`` (the ResNet blocks' 3x3 convs): Winograd's minimal filtering
  F(4x4, 3x3) (Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks", 2016).
  A direct 3x3 convolution spends 9 multiply-adds per output and channel pair; F(4x4, 3x3)
  computes each 4x4 output tile from a 6x6 input tile with 36 products, 2.25 per output,
  4x fewer.  The channel sums become 36 batched matrix products (``torch.bmm``), so the
  forward, the input gradient and the weight gradient each run as one bmm plus cheap tile
  transforms.  oneDNN has no Winograd kernel for AVX2 CPUs, and these 256-channel convs
  are most of a cycle_gan step.  Only the valid (unpadded) stride-1 case: the blocks pad
  with ``ReflectionPad2d`` first.
* ``SmallConvTranspose2d`` (the U-Net's up-convolutions): at small inputs (the U-Net's
  inner levels, 1x1 to 8x8 with 512-1024 channels) the stock transposed convolution and
  its backward run at a few GFLOP/s; one matrix product with the weight followed by
  ``F.fold`` (col2im) computes the same thing, and autograd derives its backward.
"""
from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F
from torch import nn

TILE = 4                     # output tile side m
WINDOW = TILE + 2            # input tile side m + r - 1 for r = 3

# Lavin & Gray's F(4, 3) matrices: Y = A^T [(G g G^T) * (B^T d B)] A.
_BT = [[4, 0, -5, 0, 1, 0], [0, -4, -4, 1, 1, 0], [0, 4, -4, -1, 1, 0],
       [0, -2, -1, 2, 1, 0], [0, 2, -1, -2, 1, 0], [0, 4, 0, -5, 0, 1]]
_G = [[1 / 4, 0, 0], [-1 / 6, -1 / 6, -1 / 6], [-1 / 6, 1 / 6, -1 / 6],
      [1 / 24, 1 / 12, 1 / 6], [1 / 24, -1 / 12, 1 / 6], [0, 0, 1]]
_AT = [[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 0], [0, 1, -1, 8, -8, 1]]

_transform_cache: dict[torch.dtype, tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = {}


def _transforms(dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """kron(B^T, B^T) (36x36), kron(G, G) (36x9), kron(A^T, A^T) (16x36): 2-D transforms as one matmul."""
    if dtype not in _transform_cache:
        bt, g, at = (torch.tensor(m, dtype=torch.float64) for m in (_BT, _G, _AT))
        _transform_cache[dtype] = tuple(torch.kron(m, m).to(dtype) for m in (bt, g, at))
    return _transform_cache[dtype]


def _input_tiles(x: torch.Tensor, kb: torch.Tensor) -> torch.Tensor:
    """B^T d B of every overlapping 6x6 tile (stride 4): 36 x C x (N * tiles)."""
    n, c = x.shape[:2]
    tiles = x.unfold(2, WINDOW, TILE).unfold(3, WINDOW, TILE)         # N C h w 6 6 (a view)
    h, w = tiles.shape[2:4]
    flat = tiles.permute(4, 5, 1, 0, 2, 3).reshape(WINDOW * WINDOW, -1)
    return (kb @ flat).view(WINDOW * WINDOW, c, n * h * w)


def _weight_tiles(weight: torch.Tensor, kg: torch.Tensor) -> torch.Tensor:
    """G g G^T of every output/input channel pair: 36 x Co x C."""
    co, c = weight.shape[:2]
    return (kg @ weight.reshape(co * c, 9).t()).view(WINDOW * WINDOW, co, c)


class _Winograd3x3(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias):
        kb, kg, ka = _transforms(x.dtype)
        n, c, hp, wp = x.shape
        co = weight.shape[0]
        h, w = (hp - 2) // TILE, (wp - 2) // TILE
        u = _weight_tiles(weight, kg)
        m = torch.bmm(u, _input_tiles(x, kb))                              # 36 x Co x tiles
        y = (ka @ m.view(WINDOW * WINDOW, -1)).view(TILE, TILE, co, n, h, w)
        y = y.permute(3, 2, 4, 0, 5, 1).reshape(n, co, h * TILE, w * TILE)
        if bias is not None:
            y = y + bias.view(1, -1, 1, 1)
        # Only what stock conv keeps: the transformed tiles (4x the weight, ~1.5x the input) are
        # recomputed in backward, which costs a few % of it and saves ~1 GB in a cycle_gan step.
        ctx.save_for_backward(x, weight)
        ctx.has_bias = bias is not None
        return y

    @staticmethod
    def backward(ctx, grad_y):
        x, weight = ctx.saved_tensors
        kb, kg, ka = _transforms(x.dtype)
        n, c, hp, wp = x.shape
        co = weight.shape[0]
        h, w = (hp - 2) // TILE, (wp - 2) // TILE
        g = grad_y.reshape(n, co, h, TILE, w, TILE).permute(3, 5, 1, 0, 2, 4).reshape(TILE * TILE, -1)
        grad_m = (ka.t() @ g).view(WINDOW * WINDOW, co, n * h * w)
        grad_x = grad_w = grad_b = None
        if ctx.needs_input_grad[1]:
            grad_u = torch.bmm(grad_m, _input_tiles(x, kb).transpose(1, 2))   # 36 x Co x C
            grad_w = (kg.t() @ grad_u.view(WINDOW * WINDOW, -1)).view(3, 3, co, c).permute(2, 3, 0, 1)
        if ctx.needs_input_grad[0]:
            grad_tiles = torch.bmm(_weight_tiles(weight, kg).transpose(1, 2), grad_m)                  # 36 x C x tiles
            grad_tiles = (kb.t() @ grad_tiles.view(WINDOW * WINDOW, -1)).view(WINDOW, WINDOW, c, n, h, w)
            # Tiles overlap by 2: add them back in 4 groups whose blocks do not overlap.
            # The buffer has TILE spare rows/columns for the last group's partial blocks.
            full = x.new_zeros(n, c, hp + TILE, wp + TILE)
            for i0 in range(0, WINDOW, TILE):
                for j0 in range(0, WINDOW, TILE):
                    si, sj = min(TILE, WINDOW - i0), min(TILE, WINDOW - j0)
                    block = grad_tiles[i0:i0 + si, j0:j0 + sj].permute(3, 2, 4, 0, 5, 1)  # N C h si w sj
                    dst = full[:, :, i0:i0 + h * TILE, j0:j0 + w * TILE]
                    dst = dst.unflatten(2, (h, TILE)).unflatten(4, (w, TILE))
                    dst[:, :, :, :si, :, :sj] += block
            grad_x = full[:, :, :hp, :wp]
        if ctx.has_bias and ctx.needs_input_grad[2]:
            grad_b = grad_y.sum((0, 2, 3))
        return grad_x, grad_w, grad_b


def winograd_conv3x3(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """``F.conv2d(x, weight, bias)`` (3x3, stride 1, no padding) by F(4x4, 3x3).

    The output's sides must be multiples of 4 (the input's, minus 2).
    """
    if weight.shape[-2:] != (3, 3) or x.dim() != 4:
        raise ValueError(f"winograd_conv3x3 takes N x C x H x W input and 3x3 weights, got {tuple(x.shape)} "
                         f"and {tuple(weight.shape)}")
    if (x.shape[2] - 2) % TILE or (x.shape[3] - 2) % TILE:
        raise ValueError(f"winograd_conv3x3 needs output sides that are multiples of {TILE}; "
                         f"input {tuple(x.shape[2:])} gives {(x.shape[2] - 2, x.shape[3] - 2)}")
    return _Winograd3x3.apply(x, weight, bias)


class _CpuTrainingPath:
    """Mixin: ``fast_path`` (on by default) and the conditions shared by both layers."""
    fast_path = True

    def _training_on_cpu_in_fp32(self, x: torch.Tensor) -> bool:
        return (self.fast_path and x.device.type == "cpu" and x.dtype == torch.float32 and x.dim() == 4
                and torch.is_grad_enabled() and self.groups == 1 and self.dilation == (1, 1)
                and not torch.is_autocast_enabled("cpu") and not torch.compiler.is_compiling()
                and not torch.jit.is_tracing() and not torch.onnx.is_in_onnx_export())


# Where Winograd pays (fwd + bwd, 2 threads, batch 1, measured on the development machine):
# 256 channels at 32x32 1.46x and at 64x64 ~1.5-2x, 128 at 32x32 1.16x; but 256 at 16x16 0.76x,
# 64 at 32x32 0.79x and tiny layers ~0.3x (its transforms and 36 small products cost more there).
WINOGRAD_MIN_CHANNELS = 128
WINOGRAD_MIN_OUTPUT_AREA = 32 * 32


class WinogradConv2d(_CpuTrainingPath, nn.Conv2d):
    """An ``nn.Conv2d`` whose valid 3x3 stride-1 form trains by Winograd F(4x4, 3x3) on the CPU
    (at >= WINOGRAD_MIN_CHANNELS channels and output sides >= 32; the stock convolution elsewhere)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if (self._training_on_cpu_in_fp32(x) and self.kernel_size == (3, 3) and self.stride == (1, 1)
                and self.padding == (0, 0) and self.padding_mode == "zeros"
                and min(self.in_channels, self.out_channels) >= WINOGRAD_MIN_CHANNELS
                and (x.shape[2] - 2) * (x.shape[3] - 2) >= WINOGRAD_MIN_OUTPUT_AREA
                and (x.shape[2] - 2) % TILE == 0 and (x.shape[3] - 2) % TILE == 0):
            return _Winograd3x3.apply(x, self.weight, self.bias)
        return super().forward(x)


# Input area up to which the matmul + fold form is used: measured faster for the U-Net's
# 1x1-8x8 levels (1.2-2.5x with 512-1024 channels, scripts/cpu_convs_bench.py), no faster from 16x16 on.
SMALL_INPUT_AREA = 64


class SmallConvTranspose2d(_CpuTrainingPath, nn.ConvTranspose2d):
    """An ``nn.ConvTranspose2d`` that trains as one matmul + ``F.fold`` at small inputs on the CPU."""

    def forward(self, x: torch.Tensor, output_size=None) -> torch.Tensor:
        if (output_size is None and self._training_on_cpu_in_fp32(x) and self.output_padding == (0, 0)
                and x.shape[2] * x.shape[3] <= SMALL_INPUT_AREA):
            return conv_transpose2d_by_fold(x, self.weight, self.bias, self.stride, self.padding)
        return super().forward(x, output_size)


def conv_transpose2d_by_fold(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                             stride: tuple[int, int], padding: tuple[int, int]) -> torch.Tensor:
    """``F.conv_transpose2d`` (no output padding, dilation or groups) as W^T x followed by col2im.

    A transposed convolution is the adjoint of a convolution, whose matrix form is
    W (C_in x C_out k k) times the unfolded input; the adjoint is fold(W^T x).
    """
    n, c, h, w = x.shape
    c_out, (kh, kw) = weight.shape[1], weight.shape[2:]
    out_h = (h - 1) * stride[0] - 2 * padding[0] + kh
    out_w = (w - 1) * stride[1] - 2 * padding[1] + kw
    cols = weight.reshape(c, c_out * kh * kw).t() @ x.reshape(n, c, h * w)     # N x C_out k k x HW
    y = F.fold(cols, (out_h, out_w), (kh, kw), padding=padding, stride=stride)
    return y if bias is None else y + bias.view(1, -1, 1, 1)


def set_fast_convs(net: nn.Module, enabled: bool) -> None:
    """Turn the CPU training paths of every such layer in ``net`` on or off."""
    for module in net.modules():
        if isinstance(module, _CpuTrainingPath):
            module.fast_path = enabled


@contextlib.contextmanager
def stock_convs_while(net: nn.Module):
    """The stock layers for a while (the FLOP count), then each layer's own setting again."""
    layers = [m for m in net.modules() if isinstance(m, _CpuTrainingPath)]
    saved = [m.fast_path for m in layers]
    set_fast_convs(net, False)
    try:
        yield
    finally:
        for m, value in zip(layers, saved):
            m.fast_path = value
