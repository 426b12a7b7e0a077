"""Write two paired folders as the classic side-by-side layout (classic combine_A_and_B.py).

    python -m datasets.combine DIR OUT

For every phase found (``DIR/<phase>A`` with a ``DIR/<phase>B`` beside it), each
pair matched by name as ``--dataset_mode paired_folders`` matches them becomes
``OUT/<phase>/<name>.png`` holding A (left) | B (right), which
``--dataset_mode aligned`` (and the classic code) reads.  PNG keeps the pixels
exactly; a B image of another size is resized to A's size first.  Files without
a partner are skipped (as in the classic script) and listed.  Each file is
written under a temporary name and renamed, so an interrupted run leaves only
complete images.
"""
from __future__ import annotations

import io
import os
import sys
import tempfile

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from .errors import DataError
from .folders import collect_images
from .image_io import load_image, to_tensor
from .paired_folders import match_folders, unmatched_listing
from .transforms import resize


def find_phases(root: str) -> list[str]:
    """Phases with both folders: ``train`` for DIR/trainA + DIR/trainB, ..."""
    if not os.path.isdir(root):
        raise DataError(f"folder {root} does not exist")
    names = set(os.listdir(root))
    return sorted(n[:-1] for n in names
                  if n.endswith("A") and n[:-1] + "B" in names and os.path.isdir(os.path.join(root, n)))


def side_by_side(a_path: str, b_path: str) -> tuple[np.ndarray, bool]:
    """A | B as one uint8 array (grayscale if both are, else RGB), and whether B was resized."""
    a_img, b_img = load_image(a_path), load_image(b_path)
    gray = a_img.mode in ("1", "L", "I;16", "I", "F") and b_img.mode in ("1", "L", "I;16", "I", "F")
    channels = 1 if gray else 3
    a, b = to_tensor(a_img, channels), to_tensor(b_img, channels)
    resized = a.shape != b.shape
    b = resize(b, *a.shape[-2:])
    both = torch.cat([a, b], dim=-1).mul(255.0).round_().to(torch.uint8)
    array = both[0].numpy() if gray else both.permute(1, 2, 0).numpy()
    return np.ascontiguousarray(array), resized


def _write_png(array: np.ndarray, path: str) -> None:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp",
                               dir=os.path.dirname(path))
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(buffer.getvalue())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def combine(root: str, out: str, *, progress: bool = True) -> dict[str, int]:
    """Combine every phase of ``root`` into ``out``; returns {phase: pairs written}."""
    phases = find_phases(root)
    if not phases:
        raise DataError(f"no phase folders in {root}: expected pairs of folders such as "
                        f"trainA + trainB (and testA + testB, ...)")
    if os.path.realpath(out) == os.path.realpath(root):
        raise DataError("OUT must differ from DIR")
    written = {}
    for phase in phases:
        dir_a, dir_b = os.path.join(root, phase + "A"), os.path.join(root, phase + "B")
        expected = f"{dir_a} and {dir_b} should hold images with matching names"
        matching = match_folders(dir_a, collect_images(dir_a, None, expected)[0],
                                 dir_b, collect_images(dir_b, None, expected)[0])
        if matching.only_a or matching.only_b:
            count = len(matching.only_a) + len(matching.only_b)
            print(f"{phase}: skipped {count} file(s) without a same-named partner:\n"
                  f"{unmatched_listing(matching)}", file=sys.stderr)
        resized = 0
        for key, a_path, b_path in tqdm(matching.pairs, desc=phase, unit="pair", disable=not progress,
                                        file=sys.stderr):
            array, was_resized = side_by_side(a_path, b_path)
            resized += was_resized
            _write_png(array, os.path.join(out, phase, key + ".png"))
        if resized:
            print(f"note: {phase}: {resized} B image(s) had another size and were resized to A's",
                  file=sys.stderr)
        written[phase] = len(matching.pairs)
    return written


def main(argv: list[str] | None = None) -> int:
    from options.commands import combine_parser   # the checkout's options/, as datasets/ is
    parser = combine_parser(__doc__.split("\n\n")[0])
    args = parser.parse_args(argv)
    try:
        written = combine(args.root, args.out, progress=not args.no_progress)
    except DataError as err:
        parser.exit(2, f"error: {err}\n")
    for phase, count in written.items():
        print(f"{phase}: {count} pairs -> {os.path.join(args.out, phase)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
