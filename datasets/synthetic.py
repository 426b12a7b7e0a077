"""A built-in procedural dataset, so training works without any download.

The task is "label map -> rendering", like facades or cityscapes in miniature:

* A: a flat-coloured label map of a few shapes (background, circle, square,
  triangle, striped bar), later shapes occluding earlier ones;
* B: the same scene rendered: a sky-to-ground background with soft drop
  shadows, lit spheres with a highlight, bevelled wood-grain squares, shaded
  triangles and striped bars, plus a little per-class texture noise.

Everything in B except the noise follows from the label map, so a translation
network can learn it.  Generation is seeded per image, so the same bytes come
out every time, and takes a couple of seconds.

Layouts (128 x 128 per image): ``paired`` is the classic aligned layout
(root/train/*.png, root/test/*.png with A|B side by side); ``unpaired`` is
root/trainA, trainB, testA, testB with different scenes on the two sides.

    python -m datasets.synthetic --kind paired --out DIR
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
from PIL import Image

from translate.files import make_staging_folder

from .errors import DataError

SIZE = 128
COUNTS = {"train": 200, "test": 30}
KINDS = ("paired", "unpaired")
VERSION = 1                       # bump when the pictures change, to rebuild caches
MARKER = "SYNTHETIC.json"         # written last; its presence means "complete"
CLASSES = ("background", "circle", "square", "triangle", "stripes")
LABEL_COLOURS = np.array(
    [[0, 0, 0], [230, 25, 75], [60, 180, 75], [255, 225, 25], [0, 130, 200]], np.uint8)

_LIGHT = np.array([-0.45, -0.55, 0.70], np.float32)
_LIGHT /= np.linalg.norm(_LIGHT)
_HALF = _LIGHT + np.array([0, 0, 1], np.float32)
_HALF /= np.linalg.norm(_HALF)
_NOISE = {0: 0.03, 1: 0.01, 2: 0.04, 3: 0.02, 4: 0.02}   # texture noise per class


def random_scene(rng: np.random.Generator) -> list[tuple]:
    """2-5 shapes as (class, centre x, centre y, size, angle)."""
    n = int(rng.integers(2, 6))
    return [(int(rng.integers(1, len(CLASSES))), rng.uniform(16, SIZE - 16),
             rng.uniform(16, SIZE - 16), rng.uniform(10, 24), rng.uniform(0, np.pi))
            for _ in range(n)]


def _frame(shape):
    """Geometry of one shape, computed only inside its bounding box (for speed).

    Returns (box, mask, dx, dy, u, v): the box as a pair of slices, the mask
    inside it, offsets from the centre and coordinates rotated by the angle.
    """
    kind, cx, cy, size, angle = shape
    reach = 1.35 * size   # covers the bar's half-diagonal, the widest shape
    y0, y1 = max(0, int(cy - reach)), min(SIZE, int(cy + reach) + 2)
    x0, x1 = max(0, int(cx - reach)), min(SIZE, int(cx + reach) + 2)
    yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
    dx, dy = xx - np.float32(cx), yy - np.float32(cy)
    c, s = np.float32(np.cos(angle)), np.float32(np.sin(angle))
    u, v = c * dx + s * dy, -s * dx + c * dy
    if kind == 1:
        mask = dx * dx + dy * dy <= size * size
    elif kind == 2:
        mask = np.maximum(abs(u), abs(v)) <= 0.8 * size
    elif kind == 3:   # equilateral triangle: inside three half-planes
        mask = np.ones_like(dx, dtype=bool)
        for k in range(3):
            a = angle + 2 * np.pi * k / 3
            mask &= np.cos(a) * dx + np.sin(a) * dy <= 0.5 * size
    else:             # a bar twice as long as wide
        mask = (abs(u) <= 1.2 * size) & (abs(v) <= 0.5 * size)
    return (slice(y0, y1), slice(x0, x1)), mask, dx, dy, u, v


def label_map(scene, frames=None) -> np.ndarray:
    """H x W x 3 uint8 flat colours, one per class; later shapes occlude earlier ones."""
    labels = np.zeros((SIZE, SIZE), np.int64)
    for shape, (box, mask, *_) in zip(scene, frames or map(_frame, scene)):
        labels[box][mask] = shape[0]
    return LABEL_COLOURS[labels]


def _shade(kind, size, dx, dy, u, v) -> np.ndarray:
    """Colour field (h x w x 3 floats) of one shape inside its box, before masking."""
    if kind == 1:     # sphere: Lambert diffuse plus a Blinn highlight
        nx, ny = dx / size, dy / size
        nz = np.sqrt(np.clip(1 - nx * nx - ny * ny, 0, 1))
        normal = np.stack([nx, ny, nz], -1)
        diffuse = np.clip(normal @ _LIGHT, 0, 1)[..., None]
        spec = (np.clip(normal @ _HALF, 0, 1) ** 30)[..., None]
        return np.array([0.85, 0.2, 0.15], np.float32) * (0.2 + 0.8 * diffuse) + 0.6 * spec
    light = (1.0 - 0.25 * (dx + dy) / (2 * size))[..., None]   # brighter towards the light
    if kind == 2:     # wood rings, dark bevelled border
        grain = 0.85 + 0.15 * np.sin(0.9 * np.hypot(u, v))
        border = np.where(0.8 * size - np.maximum(abs(u), abs(v)) < 2, 0.55, 1.0)
        return np.array([0.25, 0.6, 0.25], np.float32) * (grain * border)[..., None] * light
    if kind == 3:     # gradient along the triangle's own axis
        ramp = (0.7 + 0.15 * (u / size + 1))[..., None]
        return np.array([0.95, 0.8, 0.2], np.float32) * ramp * light
    t = (0.5 + 0.5 * np.tanh(3 * np.sin(2 * np.pi * u / 6)))[..., None]   # soft stripes
    blue, white = np.array([0.1, 0.3, 0.8], np.float32), np.array([0.95] * 3, np.float32)
    return (t * blue + (1 - t) * white) * light


def _noise(rng: np.random.Generator, shape, kind: int) -> np.ndarray:
    return rng.standard_normal(shape, dtype=np.float32) * np.float32(_NOISE[kind])


def render(scene, rng: np.random.Generator, frames=None) -> np.ndarray:
    """H x W x 3 uint8 shaded rendering of ``scene``."""
    frames = frames or [_frame(shape) for shape in scene]
    t = np.linspace(0, 1, SIZE, dtype=np.float32)[:, None, None]   # sky above, ground below
    img = (1 - t) * np.array([0.55, 0.7, 0.9], np.float32) + t * np.array([0.8, 0.75, 0.6],
                                                                          np.float32)
    img = img + _noise(rng, (SIZE, SIZE, 3), 0)
    occupied = np.zeros((SIZE, SIZE), np.float32)
    for box, mask, *_ in frames:
        occupied[box][mask] = 1.0
    shadow = np.zeros_like(occupied)
    for shift in (3, 4, 5):            # a cheap blur: average of three offsets
        shadow[shift:, shift:] += occupied[:-shift, :-shift] / 3
    img *= (1 - 0.4 * shadow)[..., None]
    for (kind, _, _, size, _), (box, mask, dx, dy, u, v) in zip(scene, frames):
        colour = _shade(kind, size, dx, dy, u, v) + _noise(rng, mask.shape + (3,), kind)
        img[box][mask] = colour[mask]
    return (np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8)


def _save(array: np.ndarray, path: str) -> None:
    # Light compression: the files are a cache, and encoding dominates the run time.
    Image.fromarray(array).save(path, format="PNG", compress_level=1)


def write_dataset(kind: str, out: str, seed: int = 0, counts: dict | None = None) -> None:
    """Write the ``kind`` layout into the (new or empty) folder ``out``.

    ``counts`` (images per split, default COUNTS) exists for quick tests; image
    i is the same whatever the counts.
    """
    for split_id, (split, count) in enumerate((counts or COUNTS).items()):
        if kind == "paired":
            os.makedirs(os.path.join(out, split), exist_ok=True)
        else:
            for side in "AB":
                os.makedirs(os.path.join(out, split + side), exist_ok=True)
        for i in range(count):
            name = f"{i + 1:04d}.png"
            # One seed per image (not one stream) keeps files independent of counts.
            rng = np.random.default_rng([seed, split_id, i])
            if kind == "paired":
                scene = random_scene(rng)
                frames = [_frame(shape) for shape in scene]
                pair = np.concatenate([label_map(scene, frames), render(scene, rng, frames)], 1)
                _save(pair, os.path.join(out, split, name))
            else:
                _save(label_map(random_scene(rng)), os.path.join(out, split + "A", name))
                rng_b = np.random.default_rng([seed, split_id, i, 1])
                _save(render(random_scene(rng_b), rng_b), os.path.join(out, split + "B", name))
    with open(os.path.join(out, MARKER), "w") as f:
        json.dump({"kind": kind, "version": VERSION, "seed": seed}, f, sort_keys=True)


def default_root(kind: str) -> str:
    """<repo>/datasets/data/toy_<kind> (git-ignored)."""
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", f"toy_{kind}")


def _is_complete(root: str, kind: str) -> bool:
    try:
        with open(os.path.join(root, MARKER)) as f:
            info = json.load(f)
    except (OSError, ValueError):
        return False
    return info.get("kind") == kind and info.get("version") == VERSION


def ensure_builtin_dataset(kind: str, root: str | None = None) -> str:
    """Write the built-in ``paired`` or ``unpaired`` dataset once; return its folder.

    It is written into a temporary sibling folder and renamed into place, so an
    interrupted run (or several processes of a multi-GPU launch racing) never
    leaves a half-written dataset behind.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown built-in dataset {kind!r}; choose one of {', '.join(KINDS)}")
    root = os.path.abspath(root or default_root(kind))
    if _is_complete(root, kind):
        return root
    stale = os.path.isdir(root) and os.listdir(root)
    if stale and not os.path.exists(os.path.join(root, MARKER)):
        raise DataError(f"{root} exists and is not the built-in {kind} dataset (it has no "
                        f"{MARKER}); pass another --dataroot or remove that folder.")
    parent = os.path.dirname(root)
    os.makedirs(parent, exist_ok=True)
    tmp = str(make_staging_folder(Path(root)))   # mkdir's umask-given mode, unlike mkdtemp's 0700
    try:
        write_dataset(kind, tmp)
        if os.path.isdir(root):          # an older version, or an empty folder
            shutil.rmtree(root)
        try:
            os.rename(tmp, root)
        except OSError:
            if not _is_complete(root, kind):   # lost a race only if the winner finished
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return root


def build_parser():
    from options.commands import synthetic_parser   # the checkout's options/, as datasets/ is
    return synthetic_parser(KINDS)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        print(ensure_builtin_dataset(args.kind, args.out))
    except DataError as err:
        parser.exit(2, f"error: {err}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
