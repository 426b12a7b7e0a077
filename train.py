"""Train a translator: `python train.py --dataroot DIR --name RUN --model cycle_gan|pix2pix|csgan`.

The classic pytorch-CycleGAN-and-pix2pix flags work unchanged; `--help` lists them.
With no --dataroot it trains on the built-in procedural dataset.

Ctrl-C or SIGTERM (to the process or its whole group) saves ckpt_latest at the
current iteration and exits 130 (SIGINT) or 143 (SIGTERM); resume with --continue_train.
"""
from __future__ import annotations

import sys
from pathlib import Path

from translate import stop_signals

if __name__ == "__main__":
    stop_signals.exit_during_imports()

from options import OptionsError, parse_train_options  # noqa: E402
from translate.checkpoint import CheckpointError  # noqa: E402


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
    # Until the loop runs (Trainer.fit defers signals to step boundaries), a signal ends the
    # start-up at once: nothing has been trained, so there is nothing to save.
    trainer, outcome = None, None
    try:
        with stop_signals.raising():
            from translate.training.trainer import Trainer  # heavy imports after the flags are known to be good
            from translate.training.run_lock import RunFolderError
            from translate.visualize.wandb_log import WandbUnavailable
            from datasets import DataError
            try:
                trainer = Trainer(cfg)
                outcome = trainer.fit()
            except (DataError, CheckpointError, FloatingPointError, WandbUnavailable, RunFolderError) as err:
                print(f"train.py: error: {err}", file=sys.stderr)
                return 1
    except stop_signals.Interrupted as stop:
        if trainer is not None and trainer.stop_signal is not None:   # a late repeat of the first signal
            return stop_signals.exit_code(trainer.stop_signal)
        if outcome is None:
            print(f"\ntrain.py: {stop.name} before training started; nothing was trained or saved.",
                  file=sys.stderr)
        return stop.exit_code
    if outcome == "stopped":
        return stop_signals.exit_code(trainer.stop_signal)
    if outcome == "done" and trainer.is_main:
        print(f"Training done. Checkpoints and pages: {trainer.run_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(stop_signals.script_main(main))
