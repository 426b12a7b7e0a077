"""Validation during training (--val_freq, --save_best): metrics on the validation split.

The main process runs the Validator (translate/metrics/validation.py) on the generators (EMA
weights when kept) without touching the training's random stream; the other processes wait
for its numbers, so every rank agrees on ckpt_best.
"""
from __future__ import annotations

import time

from tqdm import tqdm

from translate.training.rng_state import capture_rng, restore_rng


def build_validator(cfg, run_dir, device):
    """The Validator of --val_freq (None when it is 0)."""
    if cfg.metrics.val_freq <= 0:
        return None
    from translate.metrics.validation import Validator
    return Validator(cfg.data, cfg.metrics, run_dir, device)


def validate(trainer) -> dict[str, float]:
    """Main process: metrics on the validation split; others wait for them. Keeps ckpt_best."""
    from accelerate.utils import broadcast_object_list
    from translate.metrics.validation import is_better
    metrics = None
    if trainer.is_main:
        rng = capture_rng()   # validation must not change the training's random stream
        gens = {n: (trainer.emas[n].shadow_module if n in trainer.emas else trainer.raw_nets[n])
                for n in trainer.gen_names}
        modes = {n: g.training for n, g in gens.items()}
        t0 = time.perf_counter()
        try:
            for g in gens.values():
                g.eval()
            metrics = trainer.validator.run(gens)
        finally:
            for n, g in gens.items():
                g.train(modes[n])
            restore_rng(rng)
        tqdm.write(f"validation at iteration {trainer.total_iters}: {time.perf_counter() - t0:.1f} s")
        if trainer.display is not None:   # logs and prints the numbers
            if trainer.cfg.run.continue_train and not trainer.display.metric_history:
                trainer.display.restore_metrics(trainer.total_iters - 1)   # the plot goes on from before
            trainer.display.on_metrics(trainer.epoch, trainer.total_iters, metrics)
    if trainer.accelerator.num_processes > 1:   # the other processes wait here for rank 0
        metrics = broadcast_object_list([metrics])[0]
    name = trainer.cfg.metrics.save_best
    if name and metrics.get(name) is not None:
        if trainer.best is not None and trainer.best.get("metric") != name:
            trainer.best = None   # resumed with another --save_best: start over
        if is_better(name, metrics[name], None if trainer.best is None else trainer.best["value"]):
            trainer.best = {"metric": name, "value": float(metrics[name]), "total_iters": trainer.total_iters}
            trainer.save("best")
            if trainer.is_main:
                tqdm.write(f"new best {name} {metrics[name]:.4g}: saved {trainer.run_dir / 'ckpt_best'}")
    return metrics
