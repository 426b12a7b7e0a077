"""Issue check: vit_siren + vit on facades at 128x128 lowers the L1 to the target, D's gradient stays bounded.

Usage: python scripts/vit_facades_check.py [DATAROOT] [ITERS] [EXTRA TRAIN FLAGS...]
(extra flags override the defaults, e.g. --netG unet_128 --netD basic for the classic pair).
Prints the training L1 of iterations 1-50 next to that of the same images when last seen, the
mean L1 per epoch, the L1 on 32 held-out val images (generator in eval mode, 128x128 resize)
before training and every 100 iterations, and the discriminator's gradient norm. Batch size 1.
"""
from __future__ import annotations

import dataclasses
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from datasets import build_dataset  # noqa: E402
from options import parse_train_options  # noqa: E402
from translate.training.trainer import Trainer  # noqa: E402


def held_out_l1(trainer: Trainer, pairs: list[tuple[torch.Tensor, torch.Tensor]]) -> float:
    """Mean L1 to the target over the held-out pairs, generator in eval mode."""
    gen = trainer.raw_nets[trainer.gen_names[0]]
    gen.eval()
    with torch.no_grad():
        value = statistics.mean(float((gen(a[None]) - b[None]).abs().mean()) for a, b in pairs)
    gen.train()
    return value


def main() -> None:
    root = sys.argv[1] if len(sys.argv) > 1 else "../shared/datasets/facades"
    iters = int(sys.argv[2]) if len(sys.argv) > 2 else 300
    cfg = parse_train_options([
        "--dataroot", root, "--direction", "BtoA", "--model", "pix2pix", "--netG", "vit_siren",
        "--netD", "vit", "--load_size", "143", "--crop_size", "128",   # no --norm: neither vit net has one
        "--vit_patch_size", "16", "--vit_dim", "192", "--vit_depth", "4", "--vit_heads", "6",
        "--gpu_ids", "-1", "--num_threads", "1", "--display_id", "0", "--seed", "0",
        "--name", "vit_facades_check", "--checkpoints_dir", "/tmp/vit_facades_check", *sys.argv[3:]])
    if cfg.data.batch_size != 1:
        sys.exit("vit_facades_check.py compares images one by one: leave --batch_size at 1")
    trainer = Trainer(cfg)
    val = build_dataset(dataclasses.replace(cfg.data, phase="val", load_size=128), is_train=False)
    pairs = [(val[i]["A"], val[i]["B"]) for i in range(32)]
    held_out = [held_out_l1(trainer, pairs)]
    l1, dnorm, seen = [], [], []          # seen: (image path, epoch) of each iteration (batch size 1)
    while len(l1) < iters:
        trainer.sampler.set_epoch(trainer.epoch)
        for batch in trainer.loader:
            logs, _ = trainer.train_step(batch)
            grads = [p.grad for n in trainer.disc_names for p in trainer.raw_nets[n].parameters()
                     if p.grad is not None]
            dnorm.append(float(torch.linalg.vector_norm(torch.stack([g.norm() for g in grads]))))
            l1.append(float(logs["l1"]))
            seen.append((batch["A_paths"][0], trainer.epoch))
            if len(l1) % 100 == 0:
                held_out.append(held_out_l1(trainer, pairs))
            if len(l1) % 50 == 0:
                print(f"iteration {len(l1)}: mean L1 of the last 50 {statistics.mean(l1[-50:]):.4f}, "
                      f"D grad norm max {max(dnorm[-50:]):.3f}", flush=True)
            if len(l1) == iters:
                break
        trainer.epoch += 1
    # A window's mean L1 depends mostly on which images it holds, so the fair comparison is the
    # same images: those of iterations 1-50, at their first sight and at their last one.
    last_sight = {path: value for (path, _), value in zip(seen, l1)}
    first_paths = [path for path, _ in seen[:50]]
    print(f"L1 to the target, mean of iterations 1-50: {statistics.mean(l1[:50]):.4f}; the same 50 images "
          f"when last seen: {statistics.mean(last_sight[p] for p in first_paths):.4f}; "
          f"mean of the last 50 iterations: {statistics.mean(l1[-50:]):.4f}")
    epochs = sorted({e for _, e in seen})
    print("mean L1 per epoch: " + ", ".join(
        f"{statistics.mean(v for (_, e), v in zip(seen, l1) if e == epoch):.4f}" for epoch in epochs))
    print("held-out L1 (32 val images) at iterations 0, 100, ...: "
          + ", ".join(f"{v:.4f}" for v in held_out))
    print(f"discriminator gradient norm: median {statistics.median(dnorm):.3f}, max {max(dnorm):.3f}, "
          f"last 50 max {max(dnorm[-50:]):.3f}")


if __name__ == "__main__":
    main()
