"""FID and KID from Inception features (N x 2048 arrays).

Written here rather than taken from torchmetrics: its FID/KID modules take
images and run their own feature extractor at every ``update``, whereas we
keep features (the real set's are computed once per run and cached on disk)
and need the statistics of arrays we already hold.  Each formula is a few
lines; the tests check them against an independent scipy/numpy computation.

* FID (Heusel et al. 2017): ||mu1 - mu2||^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2)).
  The trace of the matrix square root is taken as the sum of the square roots
  of the eigenvalues of S1^(1/2) S2 S1^(1/2), which is symmetric positive
  semi-definite, so a symmetric eigen-solver in float64 suffices (no complex
  parts to drop, unlike scipy.linalg.sqrtm on the non-symmetric S1 S2).
* KID (Binkowski et al. 2018): the unbiased estimate of the squared MMD with
  the cubic polynomial kernel k(x, y) = (x.y / d + 1)^3, averaged over random
  subsets (mean and standard deviation over subsets).
"""
from __future__ import annotations

import math

import numpy as np
import torch

FID_RELIABLE_SIZE = 2000   # below this FID is biased upwards noticeably; KID is not biased


class MetricError(ValueError):
    """Inputs with which a metric cannot be computed; the message says why."""


def _as_double(features) -> torch.Tensor:
    x = torch.as_tensor(np.asarray(features), dtype=torch.float64)
    if x.dim() != 2:
        raise MetricError(f"features must be N x D, got shape {tuple(x.shape)}")
    return x


def mean_and_covariance(features) -> tuple[torch.Tensor, torch.Tensor]:
    x = _as_double(features)
    if x.shape[0] < 2:
        raise MetricError(f"FID needs at least 2 images per set (got {x.shape[0]})")
    return x.mean(0), torch.cov(x.T)


def _sqrt_psd(matrix: torch.Tensor) -> torch.Tensor:
    values, vectors = torch.linalg.eigh(matrix)
    return (vectors * values.clamp(min=0).sqrt()) @ vectors.T


def frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
    mu1, mu2 = torch.as_tensor(mu1, dtype=torch.float64), torch.as_tensor(mu2, dtype=torch.float64)
    sigma1 = torch.as_tensor(sigma1, dtype=torch.float64)
    sigma2 = torch.as_tensor(sigma2, dtype=torch.float64)
    root1 = _sqrt_psd(sigma1)
    middle = root1 @ sigma2 @ root1
    middle = (middle + middle.T) / 2   # symmetric up to rounding; make it exactly so
    trace_sqrt = torch.linalg.eigvalsh(middle).clamp(min=0).sqrt().sum()
    value = (mu1 - mu2).square().sum() + sigma1.trace() + sigma2.trace() - 2 * trace_sqrt
    return float(value.clamp(min=0))


def fid(fake_features, real_features) -> float:
    """Fréchet Inception distance between two feature sets.

    With fewer images than feature dimensions (validation: 100 images, 2048-d)
    the covariances have low rank, and Tr (S1 S2)^(1/2) equals the nuclear norm
    of Xc Yc^T / sqrt((n1 - 1)(n2 - 1)) (Xc, Yc: the centred features), since
    the non-zero eigenvalues of S1 S2 are those of (Xc Yc^T)(Xc Yc^T)^T scaled.
    An n1 x n2 SVD then replaces two 2048 x 2048 eigen-decompositions.
    """
    x, y = _as_double(fake_features), _as_double(real_features)
    (n1, d), n2 = x.shape, y.shape[0]
    if min(n1, n2) >= d:
        return frechet_distance(*mean_and_covariance(x), *mean_and_covariance(y))
    if min(n1, n2) < 2:
        raise MetricError(f"FID needs at least 2 images per set (got {n1} and {n2})")
    xc, yc = x - x.mean(0), y - y.mean(0)
    trace_sqrt = torch.linalg.svdvals(xc @ yc.T).sum() / math.sqrt((n1 - 1) * (n2 - 1))
    value = ((x.mean(0) - y.mean(0)).square().sum() + xc.square().sum() / (n1 - 1)
             + yc.square().sum() / (n2 - 1) - 2 * trace_sqrt)
    return float(value.clamp(min=0))


def mmd2_unbiased(x: torch.Tensor, y: torch.Tensor) -> float:
    """Unbiased squared MMD with the cubic polynomial kernel (diagonals left out)."""
    d = x.shape[1]
    kxx = (x @ x.T / d + 1) ** 3
    kyy = (y @ y.T / d + 1) ** 3
    kxy = (x @ y.T / d + 1) ** 3
    m, n = x.shape[0], y.shape[0]
    term_x = (kxx.sum() - kxx.diagonal().sum()) / (m * (m - 1))
    term_y = (kyy.sum() - kyy.diagonal().sum()) / (n * (n - 1))
    return float(term_x + term_y - 2 * kxy.mean())


def kid(fake_features, real_features, subsets: int = 100, subset_size: int = 1000,
        seed: int = 0) -> tuple[float, float]:
    """Kernel Inception distance: (mean, standard deviation) over ``subsets`` random subsets.

    Each subset draws ``min(subset_size, len(fake), len(real))`` features from each
    set without replacement; the draw is seeded, so the value is reproducible.
    """
    x, y = _as_double(fake_features), _as_double(real_features)
    size = min(subset_size, x.shape[0], y.shape[0])
    if size < 2:
        raise MetricError(f"KID needs at least 2 images per set (got {x.shape[0]} and {y.shape[0]})")
    if subsets < 1:
        raise MetricError("KID needs at least 1 subset")
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(subsets):
        ix = torch.from_numpy(rng.choice(x.shape[0], size, replace=False))
        iy = torch.from_numpy(rng.choice(y.shape[0], size, replace=False))
        values.append(mmd2_unbiased(x[ix], y[iy]))
    values = np.asarray(values)
    return float(values.mean()), float(values.std())
