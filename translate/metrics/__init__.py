"""Quality metrics: FID/KID (standard FID Inception-v3 features), L1/PSNR/SSIM.

``METRICS`` is the one table of metric names (``--val_metrics``, ``--save_best``,
``test.py --metrics``, ``python -m translate.metrics``): name -> how to
compute it, whether lower is better, and whether it needs paired images.

Preprocessing (part of the number, fixed): see ``features.PREPROCESSING``.
This module imports no heavy library; the Inception network loads on first use.
"""
from __future__ import annotations

from typing import Callable, NamedTuple

from . import paired, statistics


class Metric(NamedTuple):
    compute: Callable      # paired: (fake, real) N x 3 x H x W in [0, 1] -> N values;
                           # otherwise (fake features, real features, **kid options) -> float
    lower_is_better: bool
    needs_paired: bool


def _kid(fake, real, subsets=100, subset_size=1000, **_):
    return statistics.kid(fake, real, subsets=subsets, subset_size=subset_size)[0]


def _fid(fake, real, **_):
    return statistics.fid(fake, real)


METRICS: dict[str, Metric] = {
    "fid": Metric(_fid, lower_is_better=True, needs_paired=False),
    "kid": Metric(_kid, lower_is_better=True, needs_paired=False),
    "l1": Metric(paired.l1, lower_is_better=True, needs_paired=True),
    "psnr": Metric(paired.psnr, lower_is_better=False, needs_paired=True),
    "ssim": Metric(paired.ssim, lower_is_better=False, needs_paired=True),
}

DEFAULT_VAL_METRICS = {True: ("l1", "psnr", "ssim", "kid"), False: ("kid", "fid")}  # by paired data

__all__ = ["METRICS", "Metric", "DEFAULT_VAL_METRICS", "MetricError"]
MetricError = statistics.MetricError
