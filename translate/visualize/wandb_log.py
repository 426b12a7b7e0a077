"""Weights & Biases logging (``--use_wandb``, ``--wandb_project_name``), as in the classic code.

The classic meaning: one W&B run per training run, named after ``--name``, in the
project ``--wandb_project_name``, with the flags as its config, the losses at
``--print_freq`` and the current pictures at ``--display_freq``.  We also log the
learning rates, images/s and validation metrics, under the same keys as TensorBoard
(``loss/<term>``, ``lr/G``, ``speed/images_per_s``, ``val/<metric>``, ``visuals/<label>``),
with the W&B step = iterations done (``total_iters``).

``--continue_train`` resumes the same W&B run: its id is kept in
``checkpoints/NAME/wandb_run_id.txt``.  Local W&B files go to ``$WANDB_DIR`` when set,
else to ``checkpoints/NAME/wandb/``.  ``WANDB_MODE=offline`` logs without a network;
``wandb sync`` uploads later.

wandb is an optional extra (``pip install -e ".[wandb]"``); options/ checks for it at
start-up, so a missing package stops training before any work.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from .images import tensor_to_image

INSTALL_HINT = 'pip install -e ".[wandb]" (or pip install wandb)'
RUN_ID_FILE = "wandb_run_id.txt"


class WandbUnavailable(RuntimeError):
    """W&B could not start a run; the message says what to do."""


class WandbLog:
    def __init__(self, run_dir: str | Path, *, project: str, name: str, start_iters: int = 0,
                 config: dict[str, Any] | None = None):
        try:
            import wandb
        except ImportError as err:
            raise WandbUnavailable(f"--use_wandb needs the wandb package ({err}): {INSTALL_HINT}") from None
        self._wandb = wandb
        run_dir = Path(run_dir)
        id_file = run_dir / RUN_ID_FILE
        resume_id = id_file.read_text().strip() if start_iters > 0 and id_file.exists() else None
        local_dir = os.environ.get("WANDB_DIR") or str(run_dir)
        Path(local_dir).mkdir(parents=True, exist_ok=True)
        try:
            self.run = wandb.init(project=project, name=name, config=_flat_config(config), dir=local_dir,
                                  id=resume_id, resume="allow" if resume_id else None)
        except Exception as err:   # no login, a bad project name, an unreachable server ...
            raise WandbUnavailable(
                f"W&B could not start a run ({type(err).__name__}: {err}). Log in with `wandb login`, or "
                f"set WANDB_MODE=offline to log locally and upload later with `wandb sync`.") from None
        id_file.write_text(self.run.id + "\n")

    def on_losses(self, step: int, losses: dict[str, float], *, frac_epoch: float, images_per_s: float,
                  learning_rates: dict[str, float] | None = None) -> None:
        row = {f"loss/{k}": v for k, v in losses.items()}
        row |= {f"lr/{k}": v for k, v in (learning_rates or {}).items()}
        row |= {"speed/images_per_s": images_per_s, "progress/epoch": frac_epoch}
        self.run.log(row, step=step)

    def on_visuals(self, step: int, visuals: dict[str, torch.Tensor]) -> None:
        self.run.log({f"visuals/{label}": self._wandb.Image(tensor_to_image(t), caption=label)
                      for label, t in visuals.items()}, step=step)

    def on_metrics(self, epoch: int, total_iters: int, metrics: dict[str, float]) -> None:
        self.run.log({f"val/{k}": v for k, v in metrics.items()}, step=total_iters)

    def close(self) -> None:
        self.run.finish()


def _flat_config(config: dict[str, Any] | None) -> dict[str, Any]:
    """The flags with their values (the classic ``config=opt``), else the config as given."""
    if not config:
        return {}
    flags = config.get("flags")
    if isinstance(flags, dict) and flags:
        return {k: v["value"] if isinstance(v, dict) and "value" in v else v for k, v in flags.items()}
    return dict(config)
