"""Train a translator: `python train.py --dataroot DIR --name RUN --model cycle_gan|pix2pix|csgan`.

The classic pytorch-CycleGAN-and-pix2pix flags work unchanged; `--help` lists them.
With no --dataroot it trains on the built-in procedural dataset.
"""
from __future__ import annotations

import sys
from pathlib import Path

from options import OptionsError, parse_train_options
from translate.checkpoint import CheckpointError


def main(argv: list[str] | None = None) -> int:
    try:
        cfg = parse_train_options(argv)
    except OptionsError as err:
        print(f"train.py: error: {err}", file=sys.stderr)
        return 2
    from translate.files import OutputError, check_writable_folder
    try:  # before any work: a run folder that cannot be written fails now, not after an epoch
        check_writable_folder(Path(cfg.run.checkpoints_dir) / cfg.run.name, "--checkpoints_dir")
    except OutputError as err:
        print(f"train.py: error: {err}", file=sys.stderr)
        return 2
    from translate.trainer import Trainer  # heavy imports after the flags are known to be good
    from datasets import DataError
    from translate.visualize.wandb_log import WandbUnavailable
    try:
        trainer = Trainer(cfg)
        trainer.fit()
    except (DataError, CheckpointError, FloatingPointError, WandbUnavailable) as err:
        print(f"train.py: error: {err}", file=sys.stderr)
        return 1
    if trainer.is_main:
        print(f"Training done. Checkpoints and pages: {trainer.run_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
