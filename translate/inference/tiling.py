"""Running a generator on images of any size: pad to its multiple, or tile large images.

Generators need H and W to be multiples of their ``size_multiple`` (4 for the
ResNets, 2**num_downs for the U-Nets, the patch size for ViT-SIREN) and at least
their ``smallest_side`` (8 for the ResNets, whose bottleneck needs 2x2 for its
instance norm and reflection pads; the multiple for the others).  Rather than
resizing every image to a square, ``translate_padded`` reflect-pads the bottom
and right edges up to that size (repeating the edge where the image is too small
to mirror, e.g. 1x1), runs the generator once and crops
the result back, so each image keeps its own size and aspect.

``translate_tiled`` bounds memory for large images.  The (padded) image is cut
into overlapping tiles of ``tile`` pixels that are translated one at a time and
blended.  Per axis, on a side where a tile has a neighbour, its weight is

    0                      on the outer quarter of the overlap: those pixels
                           saw the tile's own padding instead of the real
                           surroundings, so they are the least trustworthy;
    a raised-cosine ramp   0 -> 1 over the middle half of the overlap;
    1                      everywhere else (and on sides at the image border).

Where two tiles overlap by exactly the overlap the two ramps sum to one
(sin^2 + cos^2 = 1), a smooth cross-fade without seams; the sum is still
divided out everywhere, which covers wider overlaps.  The 2-D window is the
product of the two 1-D ones.  Tile starts are multiples of the generator's
multiple so that its strided convolutions sample the same grid as one pass
over the whole image would; for a network without per-image statistics (no
instance norm) the tiled result then matches the whole-image one away from
tile borders.  Only one tile's activations exist at a time; the image-sized
buffers are the input, the output sum and one weight plane.
"""
from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn.functional as F

Forward = Callable[[torch.Tensor], torch.Tensor]


def padded_side(side: int, multiple: int, min_side: int = 1) -> int:
    """``side`` raised to at least ``min_side`` and then to a multiple of ``multiple``."""
    side = max(side, min_side)
    return side + (-side) % multiple


def pad_to_multiple(x: torch.Tensor, multiple: int, min_side: int = 1) -> torch.Tensor:
    """Pad N x C x H x W on the bottom and right so that H and W are multiples of ``multiple``
    and at least ``min_side`` (the smallest the generator accepts: a 1x1 image is padded up).

    Reflection is the least visible padding, but it needs the pad to be smaller
    than the side it mirrors; tiny images fall back to repeating the edge.
    """
    h, w = x.shape[-2:]
    pad_h, pad_w = padded_side(h, multiple, min_side) - h, padded_side(w, multiple, min_side) - w
    if pad_h == 0 and pad_w == 0:
        return x
    mode = "reflect" if pad_h < h and pad_w < w else "replicate"
    return F.pad(x, (0, pad_w, 0, pad_h), mode=mode)


def translate_padded(forward: Forward, x: torch.Tensor, multiple: int, min_side: int = 1) -> torch.Tensor:
    """One pass over each whole image: pad to the multiple, translate, crop back to H x W."""
    h, w = x.shape[-2:]
    return forward(pad_to_multiple(x, multiple, min_side))[..., :h, :w]


def check_tiling(tile: int, overlap: int, multiple: int) -> None:
    """Raise a ValueError that says which flag to change."""
    if tile < 1 or tile % multiple:
        better = max(multiple, round(max(tile, 1) / multiple) * multiple)
        raise ValueError(f"--tile {tile} must be a positive multiple of {multiple} (what this "
                         f"generator needs); try --tile {better}")
    if overlap < 0 or 2 * overlap > tile:
        raise ValueError(f"--tile_overlap {overlap} must be between 0 and half of --tile ({tile // 2})")


def tile_starts(length: int, tile: int, overlap: int, multiple: int) -> list[int]:
    """Starts of tiles covering [0, length), evenly spread, each a multiple of ``multiple``.

    ``length`` and ``tile`` are multiples of ``multiple``; neighbours overlap by
    at least ``overlap`` rounded up to the multiple.
    """
    if length <= tile:
        return [0]
    units, tile_u = length // multiple, tile // multiple
    stride_u = max(1, tile_u - math.ceil(overlap / multiple))
    last_u = units - tile_u
    count = math.ceil(last_u / stride_u) + 1
    # Integer spreading: consecutive gaps are at most ceil(last_u / (count - 1)) <= stride_u.
    return [(i * last_u // (count - 1)) * multiple for i in range(count)]


def edge_window(length: int, overlap: int, before: bool, after: bool) -> torch.Tensor:
    """1-D weights of one tile: zero margin, raised-cosine ramp, then 1 (see the module docstring)."""
    weights = torch.ones(length)
    margin = overlap // 4
    ramp_len = overlap - 2 * margin
    if ramp_len <= 0:
        return weights
    ramp = 0.5 - 0.5 * torch.cos(math.pi * (torch.arange(ramp_len) + 0.5) / ramp_len)
    edge = torch.cat([torch.zeros(margin), ramp])
    if before:
        weights[:edge.numel()] = edge
    if after:
        weights[length - edge.numel():] = torch.minimum(weights[length - edge.numel():], edge.flip(0))
    return weights


def translate_tiled(forward: Forward, x: torch.Tensor, multiple: int, tile: int,
                    overlap: int, min_side: int = 1) -> torch.Tensor:
    """Translate N x C x H x W in overlapping tiles of ``tile`` pixels; returns float32 N x C' x H x W.

    ``tile`` must be at least ``min_side`` (Runner checks), so every tile is a size the net takes.
    """
    check_tiling(tile, overlap, multiple)
    h, w = x.shape[-2:]
    padded = pad_to_multiple(x, multiple, min_side)
    full_h, full_w = padded.shape[-2:]
    if full_h <= tile and full_w <= tile:
        return forward(padded)[..., :h, :w].float()
    # The ramps are laid out over the overlap the starts really guarantee.
    used = math.ceil(overlap / multiple) * multiple
    tile_h, tile_w = min(tile, full_h), min(tile, full_w)
    rows = tile_starts(full_h, tile_h, overlap, multiple)
    cols = tile_starts(full_w, tile_w, overlap, multiple)
    col_windows = [edge_window(tile_w, used, j > 0, j < len(cols) - 1).to(x.device) for j in range(len(cols))]
    total = weight = None
    for i, top in enumerate(rows):
        row_w = edge_window(tile_h, used, i > 0, i < len(rows) - 1).to(x.device)
        for left, col_w in zip(cols, col_windows):
            piece = forward(padded[..., top:top + tile_h, left:left + tile_w]).float()
            if total is None:
                total = piece.new_zeros(*piece.shape[:2], full_h, full_w)
                weight = piece.new_zeros(full_h, full_w)
            window = row_w[:, None] * col_w[None, :]
            total[..., top:top + tile_h, left:left + tile_w].addcmul_(piece, window)
            weight[top:top + tile_h, left:left + tile_w] += window
            del piece
    return total.div_(weight)[..., :h, :w]


class Runner:
    """A generator set up for inference: eval mode, device, autocast, channels-last, compile.

    ``runner(x)`` takes N x C x H x W in [-1, 1] of any H, W (on the runner's
    device) and returns float32 N x C' x H x W on the CPU, padded or tiled.
    Eval mode means batch norm uses its running statistics and dropout is off,
    so an image's result does not depend on the others in its batch.
    """

    def __init__(self, generator: torch.nn.Module, *, device: str | torch.device = "cpu",
                 mixed_precision: str = "no", channels_last: bool = False, compile: bool = False,
                 tile: int = 0, tile_overlap: int = 64):
        from translate import devices
        from translate.nets.generators import size_multiple, smallest_side
        self.device = torch.device(device)
        self.multiple = size_multiple(generator)
        self.min_side = smallest_side(generator)
        if tile:
            check_tiling(tile, tile_overlap, self.multiple)
            if tile < self.min_side:
                raise ValueError(f"--tile {tile} is smaller than the {self.min_side} pixels this "
                                 f"generator needs; try --tile {padded_side(self.min_side, self.multiple)}")
        self.tile, self.tile_overlap, self.channels_last = tile, tile_overlap, channels_last
        self.dtype = devices.autocast_dtype(mixed_precision)   # a DeviceError (ValueError) if unknown
        net = generator.eval().to(self.device)
        if channels_last:
            net = net.to(memory_format=torch.channels_last)
        self.net = torch.compile(net) if compile else net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast(self.device.type, dtype=self.dtype or torch.float32,
                            enabled=self.dtype is not None):
            return self.net(x).float()

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            x = x.to(self.device)
            if self.tile:
                y = translate_tiled(self.forward, x, self.multiple, self.tile, self.tile_overlap,
                                    self.min_side)
            else:
                y = translate_padded(self.forward, x, self.multiple, self.min_side)
            return y.cpu()
