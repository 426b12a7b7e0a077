"""Learning-rate policies, stepped once per epoch (classic semantics)."""
from __future__ import annotations

from torch.optim import Optimizer, lr_scheduler

from options.config import OptimConfig


def linear_decay_factor(epoch_index: int, optim: OptimConfig) -> float:
    """Classic 'linear': constant for n_epochs, then linearly to zero over n_epochs_decay.

    ``epoch_index`` counts scheduler steps from 0; epoch_count shifts it on resume.
    """
    return 1.0 - max(0, epoch_index + optim.epoch_count - optim.n_epochs) / float(optim.n_epochs_decay + 1)


def build_scheduler(optimizer: Optimizer, optim: OptimConfig):
    if optim.lr_policy == "linear":
        return lr_scheduler.LambdaLR(optimizer, lambda e: linear_decay_factor(e, optim))
    if optim.lr_policy == "step":
        return lr_scheduler.StepLR(optimizer, step_size=optim.lr_decay_iters, gamma=0.1)
    if optim.lr_policy == "plateau":
        return lr_scheduler.ReduceLROnPlateau(optimizer, mode="min", factor=0.2, threshold=0.01, patience=5)
    if optim.lr_policy == "cosine":
        return lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(optim.n_epochs, 1), eta_min=0)
    raise ValueError(f"unknown --lr_policy {optim.lr_policy!r}")


def step_scheduler(scheduler, metric: float) -> None:
    if isinstance(scheduler, lr_scheduler.ReduceLROnPlateau):
        scheduler.step(metric)
    else:
        scheduler.step()
