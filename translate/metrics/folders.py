"""Metrics between two sets of image files (two folders, or test.py's results).

``compare(fake_paths, real_paths, paired=...)`` returns one dict of numbers and
notes; ``python -m translate.metrics`` (see __main__.py) prints it.  Files
that cannot be decoded are skipped and listed, never fatal on their own.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from tqdm import tqdm

from translate._checkout import import_from_checkout

from . import METRICS, features, statistics
from .statistics import MetricError

DEFAULT_METRICS = ("fid", "kid")
PAIRED_METRICS = tuple(n for n, m in METRICS.items() if m.needs_paired)


def scan_folder(folder: str | Path, what: str) -> tuple[list[str], list[str]]:
    """(image files found recursively and sorted, other files ignored)."""
    image_io = import_from_checkout("datasets").image_io
    folder = Path(folder)
    if not folder.is_dir():
        raise MetricError(f"{what} {folder} is not a folder")
    images = image_io.find_images(str(folder))
    others = sorted(str(p) for p in folder.rglob("*") if p.is_file() and not image_io.is_image_file(p.name))
    if not images:
        raise MetricError(f"{what} {folder} holds no images (looked recursively for "
                          f"{', '.join(image_io.IMG_EXTENSIONS)})")
    return images, others


def readable(paths: Sequence[str], skipped: list[str]) -> list[str]:
    """The files that decode; the others are appended to ``skipped`` with the reason."""
    datasets = import_from_checkout("datasets")
    good = []
    for path in tqdm(paths, desc="checking files", unit="img", leave=False, disable=len(paths) < 200):
        try:
            features.read_uint8(path)
            good.append(path)
        except datasets.DataError as err:
            reason = str(err).split(f"{path}: ", 1)[-1].split(". Remove")[0]
            skipped.append(f"{path}: unreadable ({reason})")
    return good


def match_pairs(fake: Sequence[str], fake_root: str, real: Sequence[str], real_root: str
                ) -> tuple[list[tuple[str, str]], list[str]]:
    """Pairs of files with the same relative path (the extension may differ); unmatched files."""
    def stems(paths, root):
        return {os.path.splitext(os.path.relpath(p, root))[0]: p for p in paths}
    f, r = stems(fake, fake_root), stems(real, real_root)
    pairs = [(f[k], r[k]) for k in sorted(f.keys() & r.keys())]
    unmatched = [f[k] for k in sorted(f.keys() - r.keys())] + [r[k] for k in sorted(r.keys() - f.keys())]
    return pairs, unmatched


def paired_values(pairs: Sequence[tuple[str, str]], names: Sequence[str], skipped: list[str]) -> dict[str, float]:
    """Mean over pairs of each paired metric; pairs of different sizes are skipped and listed."""
    per_metric: dict[str, list[float]] = {n: [] for n in names}
    for fake_path, real_path in tqdm(pairs, desc="paired metrics", unit="pair", leave=False):
        fake, real = features.read_uint8(fake_path), features.read_uint8(real_path)
        if fake.shape != real.shape:
            skipped.append(f"{fake_path}: size {fake.shape[1]}x{fake.shape[0]} differs from {real_path} "
                           f"({real.shape[1]}x{real.shape[0]}); left out of the paired metrics")
            continue
        add_paired(per_metric, fake[None], real[None])
    if not per_metric or not next(iter(per_metric.values())):
        raise MetricError("no pair of images of the same size to compare")
    return {n: float(np.mean(v)) for n, v in per_metric.items()}


def add_paired(per_metric: dict[str, list[float]], fake: np.ndarray, real: np.ndarray) -> None:
    """Append per-image values for N x H x W x 3 uint8 batches."""
    f = torch.from_numpy(np.ascontiguousarray(fake)).permute(0, 3, 1, 2).float() / 255
    r = torch.from_numpy(np.ascontiguousarray(real)).permute(0, 3, 1, 2).float() / 255
    for name, values in per_metric.items():
        values.extend(METRICS[name].compute(f, r).tolist())


def distribution_values(fake_features: np.ndarray, real_features: np.ndarray, names: Sequence[str],
                        notes: list[str], kid_subsets: int = 100, kid_subset_size: int = 1000) -> dict:
    """FID / KID (KID also as its std and x 1000); a metric that cannot be computed is None + a note."""
    out: dict[str, float | None] = {}
    n = min(len(fake_features), len(real_features))
    if "fid" in names:
        try:
            out["fid"] = statistics.fid(fake_features, real_features)
            if n < statistics.FID_RELIABLE_SIZE:
                notes.append(f"FID from {n} images is biased upwards (below "
                             f"{statistics.FID_RELIABLE_SIZE}); compare runs by KID")
        except MetricError as err:
            out["fid"] = None
            notes.append(f"FID cannot be computed: {err}")
    if "kid" in names:
        try:
            mean, std = statistics.kid(fake_features, real_features, kid_subsets, kid_subset_size)
            out.update(kid=mean, kid_std=std, kid_x1000=mean * 1000, kid_std_x1000=std * 1000)
        except MetricError as err:
            out["kid"] = None
            notes.append(f"KID cannot be computed: {err}")
    return out


def compare(fake_paths: Sequence[str], real_paths: Sequence[str], *, paired: bool = False,
            fake_root: str | None = None, real_root: str | None = None,
            metrics: Sequence[str] | None = None, inception: str | None = None,
            batch_size: int = 16, num_workers: int = 0, device: str = "cpu",
            kid_subsets: int = 100, kid_subset_size: int = 1000, cache_dir: str | None = None,
            progress: bool = True) -> dict:
    """All requested metrics between two lists of image files."""
    names = list(metrics or (DEFAULT_METRICS + (PAIRED_METRICS if paired else ())))
    unknown = [n for n in names if n not in METRICS]
    if unknown:
        raise MetricError(f"unknown metric {', '.join(unknown)}; choose from {', '.join(sorted(METRICS))}")
    skipped: list[str] = []
    notes: list[str] = []
    fake_ok, real_ok = readable(fake_paths, skipped), readable(real_paths, skipped)
    if not fake_ok or not real_ok:
        raise MetricError(f"no readable images in the {'fake' if not fake_ok else 'real'} set "
                          f"({len(skipped)} unreadable file(s))")
    result: dict = {"n_fake": len(fake_ok), "n_real": len(real_ok)}
    wanted_paired = [n for n in names if METRICS[n].needs_paired]
    if wanted_paired:
        if not paired:
            raise MetricError(f"{', '.join(wanted_paired)} need paired images: pass --paired")
        pairs, unmatched = match_pairs(fake_ok, fake_root or os.path.commonpath(fake_ok),
                                       real_ok, real_root or os.path.commonpath(real_ok))
        if not pairs:
            raise MetricError("--paired: no file of the fake folder has a counterpart with the same relative "
                              "path (the extension may differ) in the real folder")
        skipped.extend(f"{p}: no counterpart with the same relative path" for p in unmatched)
        result.update(paired_values(pairs, wanted_paired, skipped))
        result["n_pairs"] = len(pairs)
    wanted_dist = [n for n in names if not METRICS[n].needs_paired]
    if wanted_dist:
        model = features.load_inception(inception, device)
        kw = dict(model=model, batch_size=batch_size, num_workers=num_workers, device=device,
                  progress=progress)
        fake_feats = features.extract_features(fake_ok, desc="Inception (fake)", **kw)
        real_feats = features.cached_features(real_ok, cache_dir=cache_dir, desc="Inception (real)", **kw)
        result.update(distribution_values(fake_feats, real_feats, wanted_dist, notes, kid_subsets,
                                          kid_subset_size))
        result["inception"] = model.source
    result.update(preprocessing=features.PREPROCESSING, notes=notes, skipped=skipped)
    return result


def format_report(result: dict) -> str:
    """A few human lines: one per metric, then notes and skipped files."""
    lines = []
    labels = {"fid": "FID", "l1": "L1", "psnr": "PSNR (dB)", "ssim": "SSIM"}
    for name in ("fid", "kid", "l1", "psnr", "ssim"):
        if name not in result:
            continue
        value = result[name]
        if value is None:
            lines.append(f"{labels.get(name, name.upper()):>10}: cannot be computed")
        elif name == "kid":
            lines.append(f"{'KID':>10}: {value:.5f} +- {result['kid_std']:.5f}  "
                         f"(x 1000: {result['kid_x1000']:.2f} +- {result['kid_std_x1000']:.2f})")
        else:
            lines.append(f"{labels[name]:>10}: {value:.4f}")
    counts = f"{result['n_fake']} fake, {result['n_real']} real images"
    if "n_pairs" in result:
        counts += f", {result['n_pairs']} pairs"
    lines.append(f"({counts}; preprocessing: {result['preprocessing']})")
    lines += [f"note: {n}" for n in result.get("notes", [])]
    if result.get("skipped"):
        lines.append(f"skipped {len(result['skipped'])} file(s):")
        lines += [f"  {s}" for s in result["skipped"][:50]]
        if len(result["skipped"]) > 50:
            lines.append(f"  ... and {len(result['skipped']) - 50} more")
    return "\n".join(lines)
