"""Small made-up image folders for tests (tests never read ../shared/datasets)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def random_image(size: int, seed: int, channels: int = 3) -> Image.Image:
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, size=(1, 1, channels)) * np.ones((size, size, channels))
    noise = rng.integers(-40, 40, size=(size, size, channels))
    array = np.clip(base + noise, 0, 255).astype(np.uint8)
    return Image.fromarray(array.squeeze(-1) if channels == 1 else array)


def make_paired(root: Path, n: int = 4, size: int = 32, phases=("train", "test")) -> Path:
    """Classic aligned layout: root/<phase>/i.png with A | B side by side."""
    for phase in phases:
        (root / phase).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            a, b = random_image(size, i), random_image(size, 100 + i)
            both = Image.new("RGB", (2 * size, size))
            both.paste(a, (0, 0))
            both.paste(b, (size, 0))
            both.save(root / phase / f"{i}.png")
    return root


def make_unpaired(root: Path, n: int = 4, size: int = 32) -> Path:
    """Classic unaligned layout: root/trainA, trainB, testA, testB."""
    for folder in ("trainA", "trainB", "testA", "testB"):
        (root / folder).mkdir(parents=True, exist_ok=True)
        for i in range(n + (1 if folder.endswith("B") else 0)):
            random_image(size, hash(folder) % 1000 + i).save(root / folder / f"{folder}_{i}.jpg")
    return root
