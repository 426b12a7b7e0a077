"""Validation during training: translate a held-out split and compute --val_metrics.

The trainer calls ``Validator.run(generators)`` on the main process only
(the others wait; see Trainer.validate).  Images go through the same uint8
conversion as saved pictures and the fixed FID preprocessing (features.py).
The real images' features are computed once per run and kept in memory and
in ``run_dir/metrics_cache`` (keyed by the file list, their sizes and times,
the load/crop sizes and the preprocessing), so a validation costs the
translations plus the Inception pass over the fakes only.

Paired data: the generator's output against the ground truth (L1, PSNR,
SSIM, and FID/KID between the two sets).  Unpaired data: FID/KID of each
direction's translations against the real images of its target domain; with
two generators (cycle_gan) the named metric is the mean of both directions,
and ``<metric>_AtoB`` / ``<metric>_BtoA`` are reported too.
"""
from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from translate._checkout import import_from_checkout

from . import METRICS, features
from .folders import add_paired, distribution_values

datasets = import_from_checkout("datasets")


def choose_phase(data_cfg, requested: str | None) -> str:
    """--val_phase, else ``val`` where the dataroot has that split, else ``test``."""
    if requested:
        return requested
    root = data_cfg.dataroot
    if root is None or data_cfg.dataset_mode.startswith("synthetic_"):
        return "test"   # the built-in data has train and test splits
    has_val = any(os.path.isdir(os.path.join(root, name)) for name in ("val", "valA", "valB"))
    return "val" if has_val else "test"


def validation_data_config(data_cfg, metrics_cfg):
    """Test-time settings on the validation split: in order, no flips, load = crop, no workers."""
    return dataclasses.replace(
        data_cfg, phase=choose_phase(data_cfg, metrics_cfg.val_phase), load_size=data_cfg.crop_size,
        no_flip=True, serial_batches=True, num_threads=0, batch_size=max(1, data_cfg.batch_size),
        max_dataset_size=metrics_cfg.val_max_size)


class Validator:
    def __init__(self, data_cfg, metrics_cfg, run_dir: str | Path, device: torch.device):
        self.cfg = metrics_cfg
        self.device = device
        self.data_cfg = validation_data_config(data_cfg, metrics_cfg)
        self.dataset = datasets.build_dataset(self.data_cfg, is_train=False)
        self.paired = bool(getattr(self.dataset, "paired", False))
        self.cache_dir = Path(run_dir) / "metrics_cache"
        self.names = tuple(metrics_cfg.val_metrics)
        self._real: dict[str, np.ndarray] = {}   # target domain -> features, once per run

    @property
    def needs_features(self) -> bool:
        return any(not METRICS[n].needs_paired for n in self.names)

    def _model(self):
        return features.load_inception(self.cfg.inception, self.device)

    def _directions(self, gens: dict) -> list[tuple[str, str, str, str]]:
        """(label, generator, input key, target key) per evaluated direction."""
        out = [("AtoB", "gen_ab", "A", "B")]
        if "gen_ba" in gens and not self.paired:
            out.append(("BtoA", "gen_ba", "B", "A"))
        return out

    @torch.no_grad()
    def run(self, gens: dict[str, torch.nn.Module]) -> dict[str, float]:
        """Metrics of ``gens`` (already in eval mode) on the validation split."""
        directions = self._directions(gens)
        paired_names = [n for n in self.names if METRICS[n].needs_paired]
        per_pair: dict[str, list[float]] = {n: [] for n in paired_names}
        fakes: dict[str, list[np.ndarray]] = {d[0]: [] for d in directions}
        reals: dict[str, list[np.ndarray]] = {d[3]: [] for d in directions}
        paths: dict[str, list[str]] = {d[3]: [] for d in directions}
        loader = datasets.build_dataloader(self.dataset, self.data_cfg, is_train=False)
        for batch in tqdm(loader, desc="validation", unit="batch", leave=False, dynamic_ncols=True):
            for label, gen, source, target in directions:
                fake = gens[gen](batch[source].to(self.device))
                fake_u8 = np.stack([features.to_uint8(x) for x in fake])
                fakes[label].append(fake_u8)
                if target not in self._real:
                    reals[target].append(np.stack([features.to_uint8(x) for x in batch[target]]))
                    paths[target].extend(batch[f"{target}_paths"])
                if label == "AtoB" and per_pair:
                    add_paired(per_pair, fake_u8, np.stack([features.to_uint8(x) for x in batch[target]]))
        result = {n: float(np.mean(v)) for n, v in per_pair.items()}
        wanted = [n for n in self.names if not METRICS[n].needs_paired]
        if wanted:
            model, notes, per_direction = self._model(), [], {}
            for label, _, _, target in directions:
                real = self._real_features(target, reals[target], paths[target], model)
                fake = self._features(np.concatenate(fakes[label]), model, f"Inception ({label})")
                values = distribution_values(fake, real, wanted, notes, self.cfg.kid_subsets,
                                             self.cfg.kid_subset_size)
                per_direction[label] = values
            for name in wanted:
                values = [v[name] for v in per_direction.values() if v.get(name) is not None]
                if len(values) == len(per_direction):
                    result[name] = float(np.mean(values))
                if len(per_direction) > 1:
                    result.update({f"{name}_{label}": v[name] for label, v in per_direction.items()
                                   if v.get(name) is not None})
        return result

    def _features(self, arrays: np.ndarray, model, desc: str) -> np.ndarray:
        return features.extract_features(list(arrays), model, batch_size=self.cfg.batch_size,
                                         device=self.device, desc=desc)

    def _real_features(self, domain: str, arrays: list[np.ndarray], paths: list[str], model) -> np.ndarray:
        if domain in self._real:
            return self._real[domain]
        sizes = {k: getattr(self.data_cfg, k) for k in ("phase", "load_size", "crop_size", "preprocess",
                                                          "input_nc", "output_nc", "direction")}
        key = features.cache_key(paths, model, extra=json.dumps(sizes, sort_keys=True))
        cache = self.cache_dir / f"real_{domain}_{key}.npy"
        if cache.is_file():
            self._real[domain] = np.load(cache)
        else:
            self._real[domain] = self._features(np.concatenate(arrays), model, f"Inception (real {domain})")
            self.cache_dir.mkdir(parents=True, exist_ok=True)
            tmp = cache.with_suffix(f".tmp{os.getpid()}.npy")
            np.save(tmp, self._real[domain])
            os.replace(tmp, cache)
        return self._real[domain]


def is_better(name: str, value: float, best: float | None) -> bool:
    if best is None:
        return True
    return value < best if METRICS[name].lower_is_better else value > best
