"""Improved spectral normalization (ISN) of ViTGAN (Lee et al. 2021, "ViTGAN:
Training GANs with Vision Transformers", section 4.1).

Plain spectral normalization (Miyato et al. 2018) divides a weight by its
largest singular value, which pins every layer's Lipschitz constant to 1. For
transformers that slows learning: the init scale that makes attention work is
lost. ISN keeps the scale the layer was initialised with:

    W_ISN = sigma(W_init) * W / sigma(W)

so W_ISN equals W_init at initialisation and its spectral norm stays at
sigma(W_init) for the rest of training.

sigma(W) is estimated with the power method: one iteration per forward in
training mode, on persistent vectors u and v (as in Miyato et al.), so the
estimate tracks W as it moves. In eval mode u and v are frozen, which makes
evaluation deterministic. The estimate lags a weight that moves fast: when an
optimiser pushes sigma(W) up as hard as it can (Adam, lr 1e-3), the true norm
of W_ISN overshoots sigma(W_init) by up to ~30% before the estimate catches up
- exactly as torch's own spectral_norm overshoots 1 in the same test.
``n_power_iterations`` > 1 narrows that lag at the cost of more matrix-vector
products.

Implemented as a ``torch.nn.utils.parametrize`` parametrization, so the layer
keeps its normal forward and ``module.weight`` is the normalised weight; the
raw weight lives at ``module.parametrizations.weight.original``.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize

_INIT_POWER_ITERATIONS = 50  # enough for u, v (and so sigma_init) to converge at registration


class ImprovedSpectralNorm(nn.Module):
    """Parametrization W -> sigma_init * W / sigma(W) for a weight of any rank >= 2.

    Conv weights (out, in, kh, kw) are treated as the matrix (out, in*kh*kw).
    """

    def __init__(self, weight: torch.Tensor, *, n_power_iterations: int = 1, eps: float = 1e-12):
        super().__init__()
        self.n_power_iterations, self.eps = n_power_iterations, eps
        matrix = weight.detach().flatten(1).float()
        # Random start vectors, then converge them so that sigma_init is the
        # same estimate the first forward computes (W_ISN == W_init at init).
        u = F.normalize(torch.randn(matrix.shape[0], device=matrix.device), dim=0, eps=eps)
        v = F.normalize(torch.randn(matrix.shape[1], device=matrix.device), dim=0, eps=eps)
        self.register_buffer("u", u)
        self.register_buffer("v", v)
        self._power_iteration(matrix, _INIT_POWER_ITERATIONS)
        self.register_buffer("sigma_init", self._sigma(matrix, self.u, self.v).detach())

    @torch.no_grad()
    def _power_iteration(self, matrix: torch.Tensor, n: int) -> None:
        for _ in range(n):
            self.v.copy_(F.normalize(matrix.t() @ self.u, dim=0, eps=self.eps))
            self.u.copy_(F.normalize(matrix @ self.v, dim=0, eps=self.eps))

    @staticmethod
    def _sigma(matrix: torch.Tensor, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        # u^T W v with u, v treated as constants: the gradient of sigma is u v^T,
        # as in Miyato et al.
        return torch.dot(u, matrix @ v)

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        # The power iteration runs in float32 whatever autocast does: it is
        # cheap and a bf16 estimate of sigma would be too coarse.
        matrix = weight.flatten(1).float()
        if self.training:
            self._power_iteration(matrix.detach(), self.n_power_iterations)
        # Clones: a second forward before backward (D on real, then on fake)
        # updates the buffers in place, which must not touch this graph.
        sigma = self._sigma(matrix, self.u.clone(), self.v.clone()).clamp_min(self.eps)
        return weight * (self.sigma_init / sigma).to(weight.dtype)


def improved_spectral_norm(module: nn.Module, name: str = "weight", *, n_power_iterations: int = 1) -> nn.Module:
    """Register ISN on ``module.<name>`` (call after the weight is initialised)."""
    weight = getattr(module, name)
    isn = ImprovedSpectralNorm(weight, n_power_iterations=n_power_iterations)
    parametrize.register_parametrization(module, name, isn)
    return module


def apply_improved_spectral_norm(net: nn.Module) -> nn.Module:
    """Register ISN on every Linear and Conv2d inside ``net``."""
    for module in list(net.modules()):
        if isinstance(module, (nn.Linear, nn.Conv2d)) and not parametrize.is_parametrized(module, "weight"):
            improved_spectral_norm(module)
    return net


def spectral_norm_of(weight: torch.Tensor) -> torch.Tensor:
    """Exact largest singular value (for tests and diagnostics)."""
    return torch.linalg.matrix_norm(weight.detach().flatten(1).float(), ord=2)
