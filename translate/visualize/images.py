"""Tensor -> picture conversion and crash-safe file writes.

Generators end in tanh, so every image tensor handed to this module holds
values in [-1, 1] (C x H x W, or 1 x C x H x W where only the first item of
the batch is shown).  Pictures come out as H x W x 3 uint8 numpy arrays.

Every file is written under a temporary name in the destination folder and
then moved into place with ``os.replace`` (translate/files.py, which also encodes), so a reader (a
browser refreshing the training page, a second process) never sees half a file;
its permissions follow the umask, as open() does.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from translate import files

def tensor_to_image(t: torch.Tensor) -> np.ndarray:
    """Turn a C x H x W (or 1 x C x H x W) tensor in [-1, 1] into H x W x 3 uint8.

    Any device and dtype (bf16, fp16) is accepted.  One channel becomes gray
    RGB; of more than three channels the first three are shown.  Values
    outside [-1, 1] are clipped and NaN becomes black.
    """
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"expected a torch.Tensor, got {type(t).__name__}")
    t = t.detach()
    if t.dim() == 4:
        t = t[0]
    if t.dim() == 2:
        t = t.unsqueeze(0)
    if t.dim() != 3:
        raise ValueError(f"expected C x H x W or N x C x H x W, got shape {tuple(t.shape)}")
    t = t.to(device="cpu", dtype=torch.float32)
    channels = t.shape[0]
    if channels == 1 or channels == 2:
        t = t[:1].expand(3, -1, -1)
    elif channels > 3:
        t = t[:3]
    t = torch.nan_to_num(t, nan=-1.0).clamp(-1.0, 1.0)
    t = ((t + 1.0) * 127.5).round().to(torch.uint8)
    return np.ascontiguousarray(t.permute(1, 2, 0).numpy())


def as_uint8_rgb(image: np.ndarray | torch.Tensor) -> np.ndarray:
    """Accept a tensor (see tensor_to_image) or an H x W (x 1/3/4) uint8 array."""
    if isinstance(image, torch.Tensor):
        return tensor_to_image(image)
    array = np.asarray(image)
    if array.dtype != np.uint8:
        raise ValueError(f"numpy images must be uint8, got {array.dtype}")
    if array.ndim == 2:
        array = np.repeat(array[:, :, None], 3, axis=2)
    if array.ndim != 3 or array.shape[2] not in (1, 3, 4):
        raise ValueError(f"expected H x W x 3 image, got shape {array.shape}")
    if array.shape[2] == 1:
        array = np.repeat(array, 3, axis=2)
    return np.ascontiguousarray(array[:, :, :3])


def encode_image(image: np.ndarray | torch.Tensor, fmt: str = "PNG") -> bytes:
    """A tensor in [-1, 1] or a uint8 array as RGB ``fmt`` bytes (translate.files.encode_image)."""
    return files.encode_image(as_uint8_rgb(image), fmt)


def save_image(image: np.ndarray | torch.Tensor, path: str | os.PathLike) -> Path:
    """Save a tensor in [-1, 1] or a uint8 array as RGB, atomically; the format follows the suffix."""
    files.image_format(path)   # an unsupported suffix fails before any conversion
    return files.write_image(path, as_uint8_rgb(image))


def labelled_grid(
    images: Sequence[np.ndarray],
    labels: Sequence[str],
    ncols: int,
    tile_height: int | None = None,
    pad: int = 4,
) -> np.ndarray:
    """Lay out H x W x 3 pictures ``ncols`` per row, each under a band with its label.

    ``tile_height`` rescales every picture to that height (keeping its aspect);
    ``ncols <= 0`` puts all pictures in one row.  Returns H x W x 3 uint8.
    """
    if len(images) != len(labels):
        raise ValueError("one label per image is needed")
    if not images:
        raise ValueError("no images to lay out")
    tiles = []
    for image in images:
        picture = Image.fromarray(as_uint8_rgb(image))
        if tile_height and picture.height != tile_height:
            width = max(1, round(picture.width * tile_height / picture.height))
            picture = picture.resize((width, tile_height), Image.Resampling.BILINEAR)
        tiles.append(picture)
    ncols = len(tiles) if ncols <= 0 else min(ncols, len(tiles))
    nrows = (len(tiles) + ncols - 1) // ncols
    font = ImageFont.load_default()
    band = 16
    cell_w = max(t.width for t in tiles) + pad
    cell_h = max(t.height for t in tiles) + band + pad
    canvas = Image.new("RGB", (ncols * cell_w + pad, nrows * cell_h + pad), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    for index, (tile, label) in enumerate(zip(tiles, labels)):
        left = pad + (index % ncols) * cell_w
        top = pad + (index // ncols) * cell_h
        draw.text((left + 2, top + 2), str(label), fill=(0, 0, 0), font=font)
        canvas.paste(tile, (left, top + band))
    return np.asarray(canvas, dtype=np.uint8).copy()
