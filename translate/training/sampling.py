"""A deterministic, resumable, rank-sharded sampler.

Each epoch's order is a permutation drawn from (seed, epoch) alone, so a resumed
run replays it exactly and can skip the batches it has already trained on.
Every process takes a disjoint stride of that order (padded by wrapping so all
ranks run the same number of steps, as DDP requires).
"""
from __future__ import annotations

import math

import torch
from torch.utils.data import Sampler


class EpochSampler(Sampler[tuple[int, int]]):
    """Yields (index, epoch): datasets seed an item's random choices from both."""

    def __init__(self, length: int, *, shuffle: bool, seed: int = 0, rank: int = 0, world_size: int = 1):
        self.length, self.shuffle, self.seed = length, shuffle, seed
        self.rank, self.world_size = rank, world_size
        self.epoch, self.start = 0, 0

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        """Select the epoch's order; ``start`` skips that many of this rank's samples (resume)."""
        self.epoch, self.start = epoch, start

    def _order(self) -> list[int]:
        if self.shuffle:
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
            order = torch.randperm(self.length, generator=g).tolist()
        else:
            order = list(range(self.length))
        total = math.ceil(self.length / self.world_size) * self.world_size
        order += order[: total - len(order)]
        return order[self.rank::self.world_size]

    def __iter__(self):
        return iter((i, self.epoch) for i in self._order()[self.start:])

    def __len__(self) -> int:
        return math.ceil(self.length / self.world_size) - self.start
