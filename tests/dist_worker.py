"""Run by torchrun from test_distributed.py: a few real DDP training steps with a trace.

Each rank works in its own folder (relative --checkpoints_dir), so any file a
non-main rank writes would show up in that rank's folder.
"""
import json
import os
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from options import parse_train_options  # noqa: E402
from translate.training.trainer import Trainer  # noqa: E402


def main() -> None:
    out, steps, argv = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3:]
    rank = int(os.environ["RANK"])
    work = out / f"rank{rank}"
    work.mkdir(parents=True, exist_ok=True)
    os.chdir(work)
    trainer = Trainer(parse_train_options(argv))
    trace = []
    trainer.sampler.set_epoch(trainer.epoch, start=trainer.epoch_iter)
    for batch in trainer.loader:
        trainer.train_step(batch)
        trainer.steps += 1
        trainer.epoch_iter += batch["A"].shape[0]
        checksum = sum(float(p.double().sum()) for p in trainer.raw_nets.parameters())
        trace.append({"paths": list(batch["A_paths"]), "checksum": checksum})
        if len(trace) == steps:
            break
    trainer.save("latest")
    (out / f"trace{rank}.json").write_text(json.dumps({
        "trace": trace, "world": trainer.accelerator.num_processes,
        "ddp": type(trainer.objective.nets["gen_ab"]).__name__}))


if __name__ == "__main__":
    main()
