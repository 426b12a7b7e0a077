"""TensorBoard event files for a training run (``--use_tensorboard``).

Written to ``checkpoints/NAME/tensorboard/``, so ``tensorboard --logdir checkpoints``
shows every run side by side.  The global step is the number of images trained on
(``total_iters``, the classic counter), so a resumed run continues the same curves.

Tags: ``loss/<term>``, ``lr/G`` and ``lr/D``, ``speed/images_per_s``,
``progress/epoch``, ``val/<metric>``, the image grid ``visuals`` and the texts
``config/options`` (the classic train_opt.txt) and ``config/resolved`` (the typed
config as JSON).

Resuming: the writer purges, for TensorBoard's reader, every event at a step after
the checkpoint that an earlier process wrote (a crash leaves steps that training
repeats), so each step shows once.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from .images import labelled_grid, tensor_to_image


class TensorBoardLog:
    def __init__(self, log_dir: str | Path, *, start_iters: int = 0, options_text: str = "",
                 config: dict[str, Any] | None = None, ncols: int = 4):
        from torch.utils.tensorboard import SummaryWriter   # needs the `tensorboard` package

        self.log_dir = Path(log_dir)
        self.ncols = ncols
        # Events of an earlier process at steps > start_iters are hidden from then on:
        # a resumed run repeats those steps, and a new run under the same name (start 0)
        # replaces the old curves instead of drawing on top of them.
        first_step = int(start_iters) + 1
        self.writer = SummaryWriter(log_dir=str(self.log_dir), purge_step=first_step, flush_secs=30)
        if options_text:
            self.writer.add_text("config/options", _as_code(options_text), global_step=first_step)
        if config:
            resolved = json.dumps(config, indent=2, sort_keys=True, default=str)
            self.writer.add_text("config/resolved", _as_code(resolved), global_step=first_step)
        self.writer.flush()

    def on_losses(self, step: int, losses: dict[str, float], *, frac_epoch: float, images_per_s: float,
                  learning_rates: dict[str, float] | None = None) -> None:
        for name, value in losses.items():
            self.writer.add_scalar(f"loss/{name}", value, step)
        for name, value in (learning_rates or {}).items():
            self.writer.add_scalar(f"lr/{name}", value, step)
        self.writer.add_scalar("speed/images_per_s", images_per_s, step)
        self.writer.add_scalar("progress/epoch", frac_epoch, step)
        self.writer.flush()   # every --print_freq iterations: cheap, and a crash loses nothing

    def on_visuals(self, step: int, visuals: dict[str, torch.Tensor]) -> None:
        labels = list(visuals)
        grid = labelled_grid([tensor_to_image(visuals[k]) for k in labels], labels, self.ncols)
        self.writer.add_image("visuals", grid, step, dataformats="HWC")

    def on_metrics(self, epoch: int, total_iters: int, metrics: dict[str, float]) -> None:
        for name, value in metrics.items():
            self.writer.add_scalar(f"val/{name}", value, total_iters)
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


def _as_code(text: str) -> str:
    """TensorBoard renders text as Markdown: indent it so it shows verbatim."""
    return "\n".join("    " + line for line in text.splitlines())
