"""Building blocks shared by two or more networks: norm factory, weight init, attention."""
from __future__ import annotations

import functools

import torch
from torch import nn
from torch.nn import init

NORMS = ("batch", "instance", "syncbatch", "none")
INIT_TYPES = ("normal", "xavier", "kaiming", "orthogonal")


class InstanceNorm2d(nn.InstanceNorm2d):
    """``nn.InstanceNorm2d`` that runs on PyTorch's group-norm kernel on the CPU.

    Without affine parameters or running stats, instance norm is group norm with
    one group per channel (same biased variance, same eps).  The CPU group-norm
    kernel reads channels_last directly and returns a fresh tensor, whereas
    ``F.instance_norm`` reshapes (copying a channels_last input) and returns a
    view, so the in-place ReLU after it costs a CopySlices in backward; norm +
    ReLU forward and backward run 2-3x faster.  On other devices, while tracing
    or exporting, and with affine / running stats, it is the stock layer.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if (x.device.type != "cpu" or x.dim() != 4 or self.affine or self.track_running_stats
                or torch.jit.is_tracing() or _exporting()):
            return super().forward(x)
        return nn.functional.group_norm(x, x.shape[1], eps=self.eps)


def _exporting() -> bool:
    is_exporting = getattr(torch.compiler, "is_exporting", None)  # torch >= 2.6
    return bool(is_exporting and is_exporting())


class Identity(nn.Module):
    """Stand-in for 'no normalization' that accepts and ignores a channel count."""

    def __init__(self, *_args, **_kwargs):
        super().__init__()

    def forward(self, x):
        return x


def norm_layer(kind: str):
    """Return a constructor ``f(num_channels) -> nn.Module`` for a norm flag value.

    The affine / running-stat settings match the classic implementation so that
    its state dicts load: batch norm is affine and tracks stats, instance norm
    neither (hence no parameters and no buffers).
    """
    if kind in ("batch", "syncbatch"):
        # syncbatch builds plain BatchNorm2d (same state dict); the trainer converts
        # it to SyncBatchNorm under multi-GPU DDP, the only place where it works.
        return functools.partial(nn.BatchNorm2d, affine=True, track_running_stats=True)
    if kind == "instance":
        return functools.partial(InstanceNorm2d, affine=False, track_running_stats=False)
    if kind == "none":
        return Identity
    raise ValueError(f"unknown --norm {kind!r}; choose one of {', '.join(NORMS)}")


def uses_bias(kind: str) -> bool:
    """Whether convs get a bias, as in the classic code (and so its checkpoints).

    Batch norm's beta makes a bias redundant; instance norm here is not affine,
    so convs keep theirs.  The classic code also drops the bias for 'none', a
    quirk kept so that its checkpoints of such nets load.
    """
    return kind == "instance"


def init_weights(net: nn.Module, init_type: str = "normal", gain: float = 0.02) -> nn.Module:
    """Initialise conv/linear weights and batch-norm scales as the classic code does."""
    if init_type not in INIT_TYPES:
        raise ValueError(f"unknown --init_type {init_type!r}; choose one of {', '.join(INIT_TYPES)}")

    def apply(m: nn.Module) -> None:
        if getattr(m, "keeps_own_init", False):
            return
        name = type(m).__name__
        weight = getattr(m, "weight", None)
        if isinstance(weight, torch.Tensor) and ("Conv" in name or "Linear" in name):
            if init_type == "normal":
                init.normal_(weight, 0.0, gain)
            elif init_type == "xavier":
                init.xavier_normal_(weight, gain=gain)
            elif init_type == "kaiming":
                init.kaiming_normal_(weight, a=0, mode="fan_in")
            else:
                init.orthogonal_(weight, gain=gain)
            if getattr(m, "bias", None) is not None:
                init.constant_(m.bias, 0.0)
        elif "BatchNorm2d" in name and weight is not None:
            init.normal_(weight, 1.0, gain)
            init.constant_(m.bias, 0.0)

    net.apply(apply)
    return net


class SelfAttention2d(nn.Module):
    """SAGAN self-attention block (Zhang et al. 2019): x + gamma * attention(x).

    gamma starts at 0, so inserting the block does not change an initialised net.
    Uses scaled_dot_product_attention so no N x HW x HW tensor is kept for backward.
    """

    def __init__(self, channels: int):
        super().__init__()
        inner = max(channels // 8, 1)
        self.query = nn.Conv2d(channels, inner, 1)
        self.key = nn.Conv2d(channels, inner, 1)
        self.value = nn.Conv2d(channels, channels, 1)
        self.gamma = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        q = self.query(x).flatten(2).transpose(1, 2).unsqueeze(1)   # N,1,HW,c'
        k = self.key(x).flatten(2).transpose(1, 2).unsqueeze(1)
        v = self.value(x).flatten(2).transpose(1, 2).unsqueeze(1)   # N,1,HW,C
        # SAGAN uses unscaled dot products; scale=1 keeps that.
        out = nn.functional.scaled_dot_product_attention(q, k, v, scale=1.0)
        out = out.squeeze(1).transpose(1, 2).reshape(n, c, h, w)
        return x + self.gamma * out


def resize_pos_embed(pos: torch.Tensor, old_grid: tuple[int, int], new_grid: tuple[int, int]) -> torch.Tensor:
    """Bicubically resample a learned 1 x (gh*gw) x D patch position table to another token grid.

    Used by the ViT generator and discriminator so that nets built for one
    image size run on another (as in ViT fine-tuning at a new resolution).
    """
    # No shortcut at the same size (where bicubic resampling is the identity): a
    # shape test would be frozen into traced / exported graphs, which could then
    # not follow the input size.
    dim = pos.shape[-1]
    grid = pos.reshape(1, old_grid[0], old_grid[1], dim).permute(0, 3, 1, 2)
    grid = nn.functional.interpolate(grid, size=tuple(new_grid), mode="bicubic", align_corners=False)
    return grid.permute(0, 2, 3, 1).reshape(1, new_grid[0] * new_grid[1], dim)
