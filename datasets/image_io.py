"""Finding, checking and decoding image files.

Decoding gives float tensors in [0, 1] (C x H x W) with exactly the channel
count asked for (1 = grayscale, 3 = RGB).  Going through floats rather than
8-bit PIL images keeps 16-bit PNG/TIFF precision, and it is why 16-bit data is
scaled (value / 65535) instead of being clipped at 255 as ``Image.convert("L")``
would do.
"""
from __future__ import annotations

import os
import warnings
import zlib

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import DataError

IMG_EXTENSIONS = (
    ".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".tif", ".tiff", ".webp",
)

# Exceptions that mean "this file is not a decodable image" (as opposed to a
# bug in our code).  PIL raises all of these for damaged or truncated files.
DECODE_ERRORS = (
    OSError, ValueError, SyntaxError, EOFError, zlib.error,
    Image.DecompressionBombError, Image.DecompressionBombWarning,
)

# 16-bit integer modes.  Mode "I" (32-bit) is what older Pillow versions use for
# 16-bit PNGs, so it is scaled the same way.
_WIDE_INT_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I")


def is_image_file(name: str) -> bool:
    return name.lower().endswith(IMG_EXTENSIONS)


def find_images(folder: str, max_size: int | None = None) -> list[str]:
    """All image files below ``folder`` (recursively), sorted, cut to ``max_size``.

    The caller checks that ``folder`` exists, because only it knows which
    layout was expected and can say so in the error.
    """
    paths = []
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=True):
        dirnames.sort()
        paths.extend(os.path.join(dirpath, f) for f in filenames if is_image_file(f))
    paths.sort()
    return paths if max_size is None else paths[:max_size]


def open_image(path: str) -> Image.Image:
    """Open ``path`` lazily (header only) and refuse decompression bombs.

    PIL only *warns* between MAX_IMAGE_PIXELS and twice that; we treat the
    warning as an error too, so a huge image never reaches full decoding.
    Raises one of DECODE_ERRORS or UnidentifiedImageError (an OSError).
    """
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        return Image.open(path)


def _reason(err: BaseException) -> str:
    if isinstance(err, (Image.DecompressionBombError, Image.DecompressionBombWarning)):
        return (f"larger than PIL's limit of {Image.MAX_IMAGE_PIXELS} pixels "
                "(raise PIL.Image.MAX_IMAGE_PIXELS if the image is trusted)")
    if isinstance(err, UnidentifiedImageError):
        return "not a recognised image format"
    return f"{type(err).__name__}: {err}"


def check_headers(paths: list[str]) -> list[tuple[int, int]]:
    """Open every file's header (cheap: no pixel decoding) and return the (w, h) sizes.

    One DataError lists all the files that fail.
    """
    bad, sizes = [], []
    for path in paths:
        try:
            with open_image(path) as img:
                sizes.append(img.size)
        except DECODE_ERRORS as err:
            bad.append(f"  {path}: {_reason(err)}")
    if bad:
        shown = "\n".join(bad[:20])
        more = f"\n  ... and {len(bad) - 20} more" if len(bad) > 20 else ""
        raise DataError(
            f"{len(bad)} image file(s) cannot be read:\n{shown}{more}\n"
            "Remove or replace these files (or re-download the dataset).")
    return sizes


def load_image(path: str) -> Image.Image:
    """Fully decode ``path`` with its EXIF orientation applied.

    Any decoding failure becomes a DataError naming the file, so that a
    DataLoader worker reports it cleanly (see errors.py).
    """
    try:
        img = open_image(path)
        img.load()
        # Phones store portrait photos sideways plus an orientation tag.
        return ImageOps.exif_transpose(img)
    except DECODE_ERRORS as err:
        raise DataError(f"cannot decode image {path}: {_reason(err)}. "
                        "Remove or replace this file.") from None


def to_tensor(img: Image.Image, channels: int) -> torch.Tensor:
    """PIL image -> float tensor (channels x H x W) in [0, 1].

    channels 1 = grayscale, 3 = RGB.  Alpha is dropped (as the classic code's
    ``convert("RGB")``), palettes are expanded, CMYK is converted to RGB.
    """
    if channels not in (1, 3):
        raise ValueError(f"channel count must be 1 (grayscale) or 3 (RGB), got {channels}; "
                         "change --input_nc / --output_nc")
    if img.mode in _WIDE_INT_MODES or img.mode == "F":
        # Single-channel images deeper than 8 bits: scale, do not clip.
        arr = np.asarray(img, dtype=np.float32)
        if img.mode != "F":
            arr = arr / 65535.0
        x = torch.from_numpy(np.clip(arr, 0.0, 1.0).copy())[None]
        return x.expand(channels, -1, -1).contiguous()
    if img.mode == "P":
        img = img.convert("RGBA")  # honours palette transparency before alpha is dropped
    if img.mode not in ("1", "L", "LA", "RGB", "RGBA"):
        img = img.convert("RGB")   # CMYK, YCbCr, LAB, HSV, ...
    img = img.convert("L" if channels == 1 else "RGB")
    arr = np.asarray(img, dtype=np.uint8)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    return torch.from_numpy(arr.copy()).permute(2, 0, 1).float().div_(255.0)
