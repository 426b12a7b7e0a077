"""One image encoder (translate/files.py): the folder translation's outputs and the pages'
pictures are the bytes the code before it wrote, and files follow the umask."""
from __future__ import annotations

import io
import os
import stat

import numpy as np
import pytest
import torch
from PIL import Image

from translate import files
from translate.inference.folder import encode, to_uint8_array
from translate.visualize.images import as_uint8_rgb, save_image


def _image(channels: int) -> torch.Tensor:
    torch.manual_seed(channels)
    return torch.rand(channels, 20, 28) * 2.2 - 1.1   # a little outside [-1, 1]: clipped


def _old_folder_bytes(image: torch.Tensor, fmt: str, quality: int) -> bytes:
    """What translate/inference/folder.py's encode wrote before (its own PIL call)."""
    options = {"quality": quality} if fmt in ("JPEG", "WEBP") else {}
    buffer = io.BytesIO()
    Image.fromarray(to_uint8_array(image)).save(buffer, format=fmt, **options)
    return buffer.getvalue()


def _old_page_bytes(image: torch.Tensor, fmt: str) -> bytes:
    """What visualize/images.py's save_image wrote before (RGB, PIL's default quality)."""
    buffer = io.BytesIO()
    Image.fromarray(as_uint8_rgb(image)).save(buffer, format=fmt)
    return buffer.getvalue()


@pytest.mark.parametrize("suffix, fmt", [(".png", "PNG"), (".jpg", "JPEG")])
@pytest.mark.parametrize("channels", [1, 3])
def test_folder_outputs_are_the_bytes_the_old_encoder_wrote(tmp_path, suffix, fmt, channels):
    image = _image(channels)
    target = tmp_path / f"out{suffix}"
    encode(image, target, 83)
    assert target.read_bytes() == _old_folder_bytes(image, fmt, 83)


@pytest.mark.parametrize("suffix, fmt", [(".png", "PNG"), (".jpg", "JPEG")])
@pytest.mark.parametrize("channels", [1, 3])
def test_page_pictures_are_the_bytes_the_old_encoder_wrote(tmp_path, suffix, fmt, channels):
    image = _image(channels)
    path = save_image(image, tmp_path / "sub" / f"pic{suffix}")
    assert path.read_bytes() == _old_page_bytes(image, fmt)


def test_quality_applies_to_lossy_formats_only():
    pixels = np.random.default_rng(0).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    assert files.encode_image(pixels, "JPEG", 20) != files.encode_image(pixels, "JPEG", 95)
    assert files.encode_image(pixels, "JPEG") == files.encode_image(pixels, "JPEG", 75)   # PIL's default
    assert files.encode_image(pixels, "PNG", 20) == files.encode_image(pixels, "PNG")


def test_an_unknown_suffix_is_refused_naming_the_ones_we_write(tmp_path):
    with pytest.raises(ValueError, match=r"unsupported image suffix '\.gif'.*'\.png'"):
        files.write_image(tmp_path / "x.gif", np.zeros((2, 2), np.uint8))
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("umask", [0o022, 0o077])
def test_written_images_follow_the_umask(tmp_path, umask):
    before = os.umask(umask)
    try:
        encode(_image(3), tmp_path / "a.png", 95)
        save_image(_image(3), tmp_path / "b.jpg")
    finally:
        os.umask(before)
    for name in ("a.png", "b.jpg"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o666 & ~umask
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png", "b.jpg"]   # no temporary left
