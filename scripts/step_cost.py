"""CPU seconds of one training step on one thread: the cost that turns a wall-clock budget into iterations.

    python scripts/step_cost.py --model pix2pix --netG vit_siren --netD vit --crop_size 128 \\
        --train_args "--vit_decode_overlap 4"

Runs the real ``Trainer.train_step`` (as ``python -m translate.bench train`` does) on one
thread and prints the median *process CPU time* per step.  On one thread the CPU time of a step
is what its wall time would be on an idle core, and it stays nearly the same while other jobs
share the machine (wall time does not), so configurations measured at different moments of a
busy machine get comparable budgets.  ``scripts/quality_table.py --budget_minutes`` uses it.
"""
from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))   # options/ and translate/ from the checkout


def step_cost(model: str, netG: str, netD: str, *, crop_size: int = 128, train_args: str = "",
              steps: int = 8, warmup: int = 2) -> float:
    """Median CPU seconds per training step on one thread."""
    import torch
    from translate.bench import measure
    threads = torch.get_num_threads()
    torch.set_num_threads(1)   # one thread: no CPU time spent spinning in OpenMP barriers
    try:
        with tempfile.TemporaryDirectory() as tmp:
            spec = measure.Spec(model=model, netG=netG, netD=netD, crop_size=crop_size, train_args=train_args)
            runner = measure.TrainRunner(spec, classic=False, checkpoints_dir=tmp)
            for _ in range(warmup):
                runner.step()
            times = []
            for _ in range(steps):
                start = time.process_time()
                runner.step()
                times.append(time.process_time() - start)
    finally:
        torch.set_num_threads(threads)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    from options.commands import step_cost_parser
    from translate.models import TRAINABLE
    args = step_cost_parser(__doc__.split("\n\n")[0], models=TRAINABLE).parse_args(argv)
    from options import OptionsError
    try:
        cost = step_cost(args.model, args.netG, args.netD, crop_size=args.crop_size, train_args=args.train_args,
                         steps=args.steps, warmup=args.warmup)
    except OptionsError as err:   # a flag the networks cannot take: one line, as train.py says it
        sys.exit(f"step_cost: {err}")
    print(f"{args.model} {args.netG}/{args.netD} {args.crop_size}px {args.train_args!r}: "
          f"{cost:.3f} CPU s per step (one thread, median of {args.steps})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
