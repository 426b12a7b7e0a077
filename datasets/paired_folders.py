"""Paired data kept as two folders: ``root/<phase>A/x.jpg`` pairs with ``root/<phase>B/x.png``.

Files are matched by their path relative to the folder, without the extension
(``a/b/c.jpg`` with ``a/b/c.png``), so the two sides may use different formats.
A file without a partner is an error listing all of them, unless
``--skip_unmatched`` drops them (with a count on stderr).  When the two images
of a pair differ in size, B is resized to the size of A (bicubic, antialiased;
a note at start-up says how many pairs that concerns), so they stay pixel-aligned.

Each item draws one crop position and one flip (from the per-(seed, epoch,
index) generator that makes resumed runs exact) and applies them to both
images, exactly as for the side-by-side ``aligned`` layout.
"""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field

from .errors import DataError
from .folders import _FolderDataset, check_batchable, collect_images
from .image_io import load_image, to_tensor
from .transforms import apply, resize, sample_params


def pair_key(folder: str, path: str) -> str:
    """``folder/a/b.jpg`` -> ``a/b``: what the two sides are matched by."""
    return os.path.splitext(os.path.relpath(path, folder))[0].replace(os.sep, "/")


@dataclass
class Matching:
    pairs: list[tuple[str, str, str]] = field(default_factory=list)  # (key, A path, B path)
    only_a: list[str] = field(default_factory=list)
    only_b: list[str] = field(default_factory=list)


def _by_key(folder: str, paths: list[str]) -> dict[str, str]:
    found: dict[str, list[str]] = {}
    for path in paths:
        found.setdefault(pair_key(folder, path), []).append(path)
    clashes = [p for group in found.values() if len(group) > 1 for p in group]
    if clashes:
        raise DataError(f"these files in {folder} share a name but for the extension, so their "
                        f"partner is ambiguous: {', '.join(clashes[:20])}. Rename or remove all but one.")
    return {key: group[0] for key, group in found.items()}


def match_folders(dir_a: str, a_paths: list[str], dir_b: str, b_paths: list[str]) -> Matching:
    """Pair the images of two folders by relative path without extension."""
    a, b = _by_key(dir_a, a_paths), _by_key(dir_b, b_paths)
    return Matching(pairs=[(k, a[k], b[k]) for k in sorted(a) if k in b],
                    only_a=[a[k] for k in sorted(a) if k not in b],
                    only_b=[b[k] for k in sorted(b) if k not in a])


def unmatched_listing(matching: Matching) -> str:
    """The files without a partner, one a line (the first 20, then a count)."""
    lines = [f"  {p} (no partner in B)" for p in matching.only_a]
    lines += [f"  {p} (no partner in A)" for p in matching.only_b]
    more = f"\n  ... and {len(lines) - 20} more" if len(lines) > 20 else ""
    return "\n".join(lines[:20]) + more


def unmatched_message(matching: Matching) -> str:
    count = len(matching.only_a) + len(matching.only_b)
    return (f"{count} file(s) have no partner with the same name (extension aside) in the other "
            f"folder:\n{unmatched_listing(matching)}\n"
            "Add or rename the partners, or pass --skip_unmatched to leave these out.")


class PairedFoldersDataset(_FolderDataset):
    """``root/<phase>A`` and ``root/<phase>B`` with matching file names: paired data."""

    paired = True

    def __init__(self, cfg, root: str, *, is_train: bool) -> None:
        super().__init__(cfg, root, is_train=is_train)
        dir_a = os.path.join(root, cfg.phase + "A")
        dir_b = os.path.join(root, cfg.phase + "B")
        expected = (f"--dataset_mode paired_folders expects {dir_a} and {dir_b} holding images "
                    f"whose names match ({cfg.phase}A/x.jpg pairs with {cfg.phase}B/x.png)")
        a_paths, a_sizes = collect_images(dir_a, None, expected)
        b_paths, b_sizes = collect_images(dir_b, None, expected)
        matching = match_folders(dir_a, a_paths, dir_b, b_paths)
        unmatched = len(matching.only_a) + len(matching.only_b)
        if unmatched and not getattr(cfg, "skip_unmatched", False):
            raise DataError(unmatched_message(matching))
        if not matching.pairs:
            raise DataError(f"no pairs: no file name in {dir_a} matches one in {dir_b} "
                            f"(extensions aside). {expected}.")
        if unmatched:
            print(f"note: --skip_unmatched left out {unmatched} file(s) without a partner "
                  f"({len(matching.only_a)} in A, {len(matching.only_b)} in B); "
                  f"{len(matching.pairs)} pairs remain", file=sys.stderr)
        self.pairs = matching.pairs[:cfg.max_dataset_size]
        check_batchable(cfg, [a for _, a, _ in self.pairs])   # B is resized to A's size
        size_of = dict(zip(a_paths, a_sizes)) | dict(zip(b_paths, b_sizes))
        resized = [k for k, a, b in self.pairs if size_of[a] != size_of[b]]
        if resized:
            print(f"note: {len(resized)} pair(s) have A and B images of different sizes (first: "
                  f"{resized[0]}); their B image is resized to the size of A", file=sys.stderr)

    def __len__(self) -> int:
        return len(self.pairs)

    def _item(self, index: int) -> dict:
        _, a_path, b_path = self.pairs[index]
        a_img, b_img = load_image(a_path), load_image(b_path)
        a_channels, b_channels = self.cfg.input_nc, self.cfg.output_nc
        if self.swap:   # folder B holds the generator's input
            a_channels, b_channels = b_channels, a_channels
        a, b = to_tensor(a_img, a_channels), to_tensor(b_img, b_channels)
        b = resize(b, *a.shape[-2:])   # a no-op when the sizes already agree
        if self.swap:
            a, b, a_path, b_path = b, a, b_path, a_path
        # One draw of crop/flip for both images keeps them pixel-aligned.
        params = sample_params(self.cfg, is_train=self.is_train, generator=self.rng)
        return {"A": apply(a, self.cfg, params), "B": apply(b, self.cfg, params),
                "A_paths": a_path, "B_paths": b_path}

