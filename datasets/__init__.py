"""Datasets and data loaders for image-to-image translation.

Public API::

    build_dataset(cfg, *, is_train)                 -> Dataset of dicts
    build_dataloader(dataset, cfg, *, is_train, sampler=None) -> DataLoader
    DataError                                        the one error for bad data
    ensure_builtin_dataset("paired" | "unpaired", root=None) -> folder
    collate                                          the collate_fn to keep in custom loaders

``--dataset_mode``: aligned (root/phase, A|B side by side), unaligned
(root/phaseA + root/phaseB), paired_folders (root/phaseA + root/phaseB
with matching file names: paired; see paired_folders.py), single (one folder), synthetic_paired /
synthetic_unpaired (the built-in toy dataset, written on first use).  Without
``--dataroot`` every mode uses the built-in dataset (single: its phaseA or
phaseB folder, by --direction).

This folder is imported from the checkout and deliberately not installed:
as a distribution it would clash with Hugging Face's ``datasets``.
"""
from __future__ import annotations

import os
import sys

from torch.utils.data import Dataset

from .errors import DataError
from .folders import AlignedDataset, SingleDataset, UnalignedDataset
from .loader import build_dataloader, collate
from .paired_folders import PairedFoldersDataset

__all__ = ["build_dataset", "build_dataloader", "DataError", "ensure_builtin_dataset",
           "DATASET_MODES", "collate"]

# flag name -> (dataset class, built-in layout used when no --dataroot is given)
DATASET_MODES = {
    "aligned": (AlignedDataset, "paired"),
    "unaligned": (UnalignedDataset, "unpaired"),
    "single": (SingleDataset, "unpaired"),
    "paired_folders": (PairedFoldersDataset, None),   # needs --dataroot: no built-in pairs by name
    "synthetic_paired": (AlignedDataset, "paired"),
    "synthetic_unpaired": (UnalignedDataset, "unpaired"),
}


def build_dataset(cfg, *, is_train: bool) -> Dataset:
    """The dataset that ``cfg`` (a DataConfig) describes.

    Items: {"A", "B", "A_paths", "B_paths"} (single mode: {"A", "A_paths"}),
    tensors C x H x W in [-1, 1], already swapped for --direction BtoA.
    ``dataset.paired`` says whether A and B correspond pixel for pixel.
    """
    mode = cfg.dataset_mode
    if mode not in DATASET_MODES:
        raise ValueError(f"unknown --dataset_mode {mode!r}; choose one of "
                         f"{', '.join(sorted(DATASET_MODES))}")
    cls, builtin = DATASET_MODES[mode]
    root = cfg.dataroot
    if builtin is None and root is None:
        raise DataError(f"--dataset_mode {mode} needs --dataroot DIR (DIR/{cfg.phase}A and "
                        f"DIR/{cfg.phase}B with matching file names)")
    if mode.startswith("synthetic_") or root is None:
        # A synthetic mode with --dataroot writes the toy data there (once).
        root = ensure_builtin_dataset(builtin, root if mode.startswith("synthetic_") else None)
        if cfg.dataroot is None:
            print(f"no --dataroot given: using the built-in {builtin} toy dataset in {root}",
                  file=sys.stderr)
        if cls is SingleDataset:
            # The built-in unpaired set's A or B side stands in for "a folder of images".
            root = os.path.join(root, cfg.phase + ("B" if cfg.direction == "BtoA" else "A"))
    return cls(cfg, root, is_train=is_train)


def ensure_builtin_dataset(kind: str, root: str | None = None) -> str:
    """Write the built-in "paired" or "unpaired" toy dataset once; return its folder.

    The default folder is <repo>/datasets/data/toy_<kind>.  See synthetic.py.
    """
    # Imported here so that `python -m datasets.synthetic` does not load the
    # module twice (runpy warns when the package already imported it).
    from .synthetic import ensure_builtin_dataset as ensure
    return ensure(kind, root)
