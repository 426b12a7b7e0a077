"""The three folder layouts: aligned (paired), unaligned (unpaired) and single.

Every item is a dict.  Paired and unpaired datasets give
``{"A", "B", "A_paths", "B_paths"}``, single gives ``{"A", "A_paths"}``.
Unlike the classic code, ``--direction BtoA`` is applied here, once: the
tensor under "A" is always the generator's input (``input_nc`` channels) and
"B" its target (``output_nc`` channels), so models never look at direction.
"""
from __future__ import annotations

import os

import torch
from torch.utils.data import Dataset, get_worker_info

from .errors import DataError, ItemFailure
from .image_io import IMG_EXTENSIONS, check_headers, find_images, load_image, open_image, to_tensor
from .transforms import apply, check_mode, output_size, sample_params

# Modes whose output size follows each image's own size (see transforms.output_size).
SIZE_FOLLOWING_MODES = ("scale_width", "none")


def _check_direction(direction: str) -> bool:
    """True for BtoA; a clear error for anything but AtoB/BtoA."""
    if direction not in ("AtoB", "BtoA"):
        raise ValueError(f"--direction must be AtoB or BtoA, got {direction!r}")
    return direction == "BtoA"


def collect_images(folder: str, max_size: int | None, expected: str
                   ) -> tuple[list[str], list[tuple[int, int]]]:
    """Sorted image paths under ``folder`` and their (w, h) sizes from a header check.

    Errors say which layout was ``expected``.
    """
    if not os.path.isdir(folder):
        raise DataError(f"folder {folder} does not exist; {expected}.")
    paths = find_images(folder, max_size)
    if not paths:
        raise DataError(f"no images in {folder} (searched recursively for "
                        f"{' '.join(IMG_EXTENSIONS)}); {expected}.")
    return paths, check_headers(paths)


def _decoded_size(path: str, half: bool = False) -> tuple[int, int]:
    """(H, W) as decoding gives it (EXIF rotation applied), from the header only.

    ``half``: the width of one half of an aligned A|B image.
    """
    with open_image(path) as img:
        w, h = img.size
        if half:
            w //= 2
        return (w, h) if img.getexif().get(0x0112, 1) in (5, 6, 7, 8) else (h, w)


def check_batchable(cfg, paths: list[str], half: bool = False) -> None:
    """Refuse, before any work, a folder whose images would come out at different sizes when
    --batch_size > 1 has to stack them.  Only the size-following modes can do that; there
    the sizes come from the headers (cheap), so one odd image is found at start-up rather
    than as a crash some way into an epoch."""
    if cfg.batch_size <= 1 or cfg.preprocess not in SIZE_FOLLOWING_MODES:
        return
    sizes: dict[tuple[int, int], str] = {}
    for path in paths:
        h, w = _decoded_size(path, half)
        sizes.setdefault(output_size(h, w, cfg), path)
        if len(sizes) > 1:
            break
    if len(sizes) > 1:
        examples = ", ".join(f"{path} at {w}x{h}" for (h, w), path in sizes.items())
        keeps = "keeps each image's size" if cfg.preprocess == "none" else "keeps each aspect ratio"
        raise DataError(
            f"--preprocess {cfg.preprocess} {keeps}, and these images come out at different "
            f"sizes ({examples}), which cannot be stacked into batches of --batch_size "
            f"{cfg.batch_size}. Use --batch_size 1, or a mode that crops every image to "
            f"--crop_size (--preprocess scale_width_and_crop, resize_and_crop or crop).")


class _FolderDataset(Dataset):
    paired = False

    def __init__(self, cfg, root: str, *, is_train: bool) -> None:
        check_mode(cfg.preprocess)
        self.cfg = cfg
        self.root = root
        self.is_train = is_train
        self.swap = _check_direction(cfg.direction)
        self.rng: torch.Generator | None = None

    def __getitem__(self, key: int | tuple[int, int]):
        # Training samplers pass (index, epoch): every random choice of an item
        # (crop, flip, the unaligned B partner) then comes from a generator seeded
        # by (seed, epoch, index), so a resumed run sees exactly the same data,
        # whatever the number of workers.
        index, epoch = key if isinstance(key, tuple) else (key, None)
        self.rng = None
        if epoch is not None:
            seed = hash((self.cfg.seed, epoch, index)) & 0x7FFF_FFFF_FFFF_FFFF
            self.rng = torch.Generator().manual_seed(seed)
        try:
            return self._item(index)
        except DataError as err:
            if get_worker_info() is None:
                raise
            # In a worker: hand the failure to the main process as a value (errors.py).
            return ItemFailure(str(err))

    def _item(self, index: int) -> dict:
        raise NotImplementedError

    def _load(self, path: str, channels: int) -> torch.Tensor:
        """Decode, preprocess with fresh random params, normalise to [-1, 1]."""
        x = to_tensor(load_image(path), channels)
        return apply(x, self.cfg, sample_params(self.cfg, is_train=self.is_train, generator=self.rng))


class AlignedDataset(_FolderDataset):
    """``root/phase/*``: each image holds A (left half) and B (right half) side by side."""

    paired = True

    def __init__(self, cfg, root: str, *, is_train: bool) -> None:
        super().__init__(cfg, root, is_train=is_train)
        folder = os.path.join(root, cfg.phase)
        expected = (f"--dataset_mode aligned expects {folder} to hold images with "
                    "A (left half) and B (right half) side by side")
        self.paths, sizes = collect_images(folder, cfg.max_dataset_size, expected)
        narrow = [p for p, (w, _) in zip(self.paths, sizes) if w < 2]
        if narrow:
            raise DataError(f"{expected}, but these are narrower than 2 pixels: "
                            f"{', '.join(narrow[:20])}. Remove them.")
        check_batchable(cfg, self.paths, half=True)

    def __len__(self) -> int:
        return len(self.paths)

    def _item(self, index: int) -> dict:
        path = self.paths[index]
        img = load_image(path)
        w, h = img.size
        if w < 2:
            raise DataError(f"{path} is {w} pixel wide; an aligned image holds A and B "
                            "side by side and needs at least 2 columns. Remove this file.")
        half = w // 2  # an odd last column is dropped so both halves match in size
        left, right = img.crop((0, 0, half, h)), img.crop((half, 0, 2 * half, h))
        if self.swap:
            left, right = right, left
        # One draw of crop/flip for both halves keeps them pixel-aligned.
        params = sample_params(self.cfg, is_train=self.is_train, generator=self.rng)
        a = apply(to_tensor(left, self.cfg.input_nc), self.cfg, params)
        b = apply(to_tensor(right, self.cfg.output_nc), self.cfg, params)
        return {"A": a, "B": b, "A_paths": path, "B_paths": path}


class UnalignedDataset(_FolderDataset):
    """``root/phaseA`` and ``root/phaseB``: two unrelated image sets.

    Item i takes A image i % len(A); B is random (i % len(B) with
    --serial_batches) so that pairs differ between epochs.  The length is the
    larger of the two sets.
    """

    def __init__(self, cfg, root: str, *, is_train: bool) -> None:
        super().__init__(cfg, root, is_train=is_train)
        dir_a = os.path.join(root, cfg.phase + "A")
        dir_b = os.path.join(root, cfg.phase + "B")
        expected = f"--dataset_mode unaligned expects {dir_a} and {dir_b}"
        if self.swap:
            dir_a, dir_b = dir_b, dir_a
        self.a_paths, _ = collect_images(dir_a, cfg.max_dataset_size, expected)
        self.b_paths, _ = collect_images(dir_b, cfg.max_dataset_size, expected)
        check_batchable(cfg, self.a_paths)   # A and B are stacked separately: each on its own
        check_batchable(cfg, self.b_paths)

    def __len__(self) -> int:
        return max(len(self.a_paths), len(self.b_paths))

    def _item(self, index: int) -> dict:
        a_path = self.a_paths[index % len(self.a_paths)]
        if self.cfg.serial_batches:
            b_index = index % len(self.b_paths)
        else:
            # Per-item generator when training (see __getitem__), else torch's RNG.
            b_index = int(torch.randint(len(self.b_paths), (), generator=self.rng).item())
        b_path = self.b_paths[b_index]
        return {"A": self._load(a_path, self.cfg.input_nc),
                "B": self._load(b_path, self.cfg.output_nc),
                "A_paths": a_path, "B_paths": b_path}


class SingleDataset(_FolderDataset):
    """``root``: one folder of images (searched recursively), for translating one domain.

    As in the classic code, the images get ``output_nc`` channels with
    --direction BtoA (they are domain B then) and ``input_nc`` otherwise.
    """

    def __init__(self, cfg, root: str, *, is_train: bool) -> None:
        super().__init__(cfg, root, is_train=is_train)
        expected = "--dataset_mode single expects a folder of images"
        self.paths, _ = collect_images(root, cfg.max_dataset_size, expected)
        check_batchable(cfg, self.paths)
        self.channels = cfg.output_nc if self.swap else cfg.input_nc

    def __len__(self) -> int:
        return len(self.paths)

    def _item(self, index: int) -> dict:
        path = self.paths[index]
        return {"A": self._load(path, self.channels), "A_paths": path}
