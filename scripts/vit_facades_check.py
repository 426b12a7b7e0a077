"""Issue check: vit_siren + vit on facades at 128x128 lowers the L1 to the target, D's gradient stays bounded.

Usage: python scripts/vit_facades_check.py [DATAROOT] [ITERS]
Prints the mean L1 of the first and last 50 iterations and the discriminator's gradient norm.
"""
from __future__ import annotations

import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from options import parse_train_options  # noqa: E402
from translate.trainer import Trainer  # noqa: E402


def main() -> None:
    root = sys.argv[1] if len(sys.argv) > 1 else "../shared/datasets/facades"
    iters = int(sys.argv[2]) if len(sys.argv) > 2 else 300
    cfg = parse_train_options([
        "--dataroot", root, "--direction", "BtoA", "--model", "pix2pix", "--netG", "vit_siren",
        "--netD", "vit", "--norm", "instance", "--load_size", "143", "--crop_size", "128",
        "--vit_patch_size", "16", "--vit_dim", "192", "--vit_depth", "4", "--vit_heads", "6",
        "--gpu_ids", "-1", "--num_threads", "1", "--display_id", "0", "--seed", "0",
        "--name", "vit_facades_check", "--checkpoints_dir", "/tmp/vit_facades_check"])
    trainer = Trainer(cfg)
    l1, dnorm = [], []
    while len(l1) < iters:
        trainer.sampler.set_epoch(trainer.epoch)
        for batch in trainer.loader:
            logs, _ = trainer.train_step(batch)
            grads = [p.grad for n in trainer.disc_names for p in trainer.raw_nets[n].parameters()
                     if p.grad is not None]
            dnorm.append(float(torch.linalg.vector_norm(torch.stack([g.norm() for g in grads]))))
            l1.append(float(logs["l1"]))
            if len(l1) % 50 == 0:
                print(f"iteration {len(l1)}: mean L1 of the last 50 {statistics.mean(l1[-50:]):.4f}, "
                      f"D grad norm max {max(dnorm[-50:]):.3f}", flush=True)
            if len(l1) == iters:
                break
        trainer.epoch += 1
    print(f"L1 to the target, mean of iterations 1-50: {statistics.mean(l1[:50]):.4f}; "
          f"of the last 50: {statistics.mean(l1[-50:]):.4f}")
    print(f"discriminator gradient norm: median {statistics.median(dnorm):.3f}, max {max(dnorm):.3f}, "
          f"last 50 max {max(dnorm[-50:]):.3f}")


if __name__ == "__main__":
    main()
