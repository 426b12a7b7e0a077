"""EMA of generator weights (Karras et al. 2018; Yazici et al. 2019, "The Unusual
Effectiveness of Averaging in GAN Training"): a shadow copy that test.py prefers."""
from __future__ import annotations

import copy

import torch
from torch import nn


class EMA:
    """Exponential moving average of a model's weights, kept in a shadow copy.

    ``update(model)``: shadow = decay * shadow + (1 - decay) * param for every
    floating-point parameter; buffers (batch-norm statistics, spectral-norm
    vectors) are copied, since averaging them has no meaning. Parameters are
    matched by name, so pass the unwrapped model (not its DDP wrapper).
    """

    def __init__(self, model: nn.Module, decay: float):
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"--ema_decay must be in [0, 1), got {decay}")
        self.decay = decay
        self.shadow_module = copy.deepcopy(model).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        params = dict(model.named_parameters())
        shadows = [p for _, p in self.shadow_module.named_parameters()]
        sources = [params[name] for name, _ in self.shadow_module.named_parameters()]
        # One multi-tensor kernel instead of a lerp per parameter (this runs every G step).
        torch._foreach_lerp_(shadows, sources, 1.0 - self.decay)
        buffers = dict(model.named_buffers())
        for name, shadow in self.shadow_module.named_buffers():
            shadow.copy_(buffers[name])

    def state_dict(self) -> dict[str, torch.Tensor]:
        return self.shadow_module.state_dict()

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.shadow_module.load_state_dict(state)
