"""A tiny TorchScript stand-in for the FID Inception (same contract, milliseconds per image).

Used through the real ``--inception PATH`` option so that tests of the
statistics, the folder command and validation run fast; test_metrics.py also
runs the real Inception once.
"""
from __future__ import annotations

import warnings
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn


class TinyInception(nn.Module):
    def __init__(self):
        super().__init__()
        generator = torch.Generator().manual_seed(0)
        self.conv = nn.Conv2d(3, 16, 13, stride=13)
        self.fc = nn.Linear(16 * 4, 2048)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=generator) * 0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.conv(x))
        return self.fc(F.adaptive_avg_pool2d(x, 2).flatten(1))


def tiny_inception(folder: Path) -> str:
    path = Path(folder) / "tiny_inception.pt"
    if not path.exists():
        with warnings.catch_warnings():   # torch >= 2.9 calls TorchScript deprecated; it still works
            warnings.simplefilter("ignore", FutureWarning)
            torch.jit.save(torch.jit.script(TinyInception().eval()), str(path))
    return str(path)
