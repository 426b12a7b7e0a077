"""Does mixed precision train as well as fp32?  pix2pix on facades, same seed, fp32 vs bf16.

    python scripts/check_mixed_precision.py                      # 300 iterations each, CPU or GPU
    python scripts/check_mixed_precision.py --iters 50 --precisions no bf16 fp16 --device cuda

Each precision trains ``--iters`` iterations of pix2pix (unet_128, 128x128,
--direction BtoA) with train.py's ``main``, from the same seed (same initial
weights, same data order).  ``--resume`` continues runs that were interrupted
(train.py saves a checkpoint on SIGTERM / Ctrl-C).  Then both final generators are evaluated
the same way: fp32, eval mode, L1 to the target on the val split, in [-1, 1]
units (the logged ``l1`` term's scale).  Also reported: the mean of the logged
``l1`` term over the last 50 iterations.  The check passes when every
precision's val L1 is within --tolerance (default 5%) of fp32's.

Not part of the test suite: it trains for minutes (tens of minutes on a CPU).
"""
from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from options import parse_test_options  # noqa: E402
from options.commands import check_mixed_precision_parser  # noqa: E402
from translate import devices  # noqa: E402
from translate._checkout import import_from_checkout  # noqa: E402
from translate.inference.loading import load_generators  # noqa: E402
from translate.visualize.loss_log import read_jsonl  # noqa: E402

def net_flags(args) -> list[str]:
    """The networks both precisions train (pix2pix unet_128 at 128x128 unless the flags say otherwise)."""
    return ["--model", "pix2pix", "--netG", args.netG, "--direction", "BtoA", "--ngf", str(args.ngf),
            "--ndf", str(args.ndf)]


def train(args, precision: str) -> tuple[Path, float]:
    name = f"mp_{precision}"
    argv = ["--dataroot", args.dataroot, "--name", name,
            "--checkpoints_dir", str(args.workdir), *net_flags(args),
            # The classic facades recipe: load 286 and crop 256, here scaled to the crop size.
            "--load_size", str(round(args.crop_size * 286 / 256)), "--crop_size", str(args.crop_size),
            "--max_iters", str(args.iters), "--seed", str(args.seed), "--mixed_precision", precision,
            "--display_id", "0", "--no_html", "--print_freq", "1", "--num_threads", str(args.num_threads),
            "--save_latest_freq", "100000", "--gpu_ids", "0" if args.device == "cuda" else "-1"]
    if args.channels_last:
        argv.append("--channels_last")
    run_dir = args.workdir / name
    if args.resume and (run_dir / "ckpt_latest").exists():
        argv.append("--continue_train")  # an interrupted run goes on where it stopped
    elif run_dir.exists():
        import shutil
        shutil.rmtree(run_dir)
    print("$ python train.py", " ".join(argv), flush=True)
    start = time.perf_counter()
    import train as train_entry  # in this process: the Trainer starts Accelerate afresh for each run
    code = train_entry.main(argv)
    if code != 0:
        raise SystemExit(f"train.py {' '.join(argv)} exited with {code}")
    return run_dir, time.perf_counter() - start


def _finished(run_dir: Path, iters: int) -> bool:
    if not (run_dir / "loss_log.jsonl").exists():
        return False
    records = read_jsonl(run_dir / "loss_log.jsonl")
    return bool(records) and records[-1]["iters"] >= iters


def logged_l1(run_dir: Path, last: int = 50) -> float:
    records = read_jsonl(run_dir / "loss_log.jsonl")
    values = [r["losses"]["l1"] for r in records if r["losses"].get("l1") is not None][-last:]
    return statistics.fmean(values)


@torch.no_grad()
def val_l1(args, run_dir: Path) -> float:
    datasets = import_from_checkout("datasets")
    size = str(args.crop_size)
    cfg = parse_test_options(["--dataroot", args.dataroot, *net_flags(args), "--phase", args.phase,
                              "--load_size", size, "--crop_size", size, "--gpu_ids", "-1", "--name", run_dir.name,
                              "--checkpoints_dir", str(args.workdir)])
    loaded = load_generators(run_dir, "latest", model="pix2pix", net=cfg.net)
    gen = loaded.generators["gen_ab"].float().eval()
    dataset = datasets.build_dataset(cfg.data, is_train=False)
    loader = datasets.build_dataloader(dataset, cfg.data, is_train=False)
    total, count = 0.0, 0
    for batch in loader:
        total += (gen(batch["A"]) - batch["B"]).abs().mean(dim=(1, 2, 3)).sum().item()
        count += batch["A"].shape[0]
    return total / count


def main(argv: list[str] | None = None) -> int:
    p = check_mixed_precision_parser(__doc__.split("\n")[0], root=ROOT, default_device=devices.default_device())
    args = p.parse_args(argv)
    if "no" not in args.precisions:
        args.precisions.insert(0, "no")
    results = {}
    for precision in args.precisions:
        run_dir = args.workdir / f"mp_{precision}"
        if (args.keep or args.resume) and _finished(run_dir, args.iters):
            seconds = None
        else:
            run_dir, seconds = train(args, precision)
        results[precision] = {"val_l1": val_l1(args, run_dir), "logged_l1_last50": logged_l1(run_dir),
                              "train_seconds": seconds}
    ref = results["no"]
    ok = True
    print(f"\npix2pix {args.netG} {args.crop_size}x{args.crop_size} facades BtoA, {args.iters} iterations, seed {args.seed}, "
          f"{args.device}, channels_last={args.channels_last}; L1 in [-1, 1] units")
    print(f"| precision | val L1 ({args.phase}, fp32 eval) | vs fp32 | "
          f"logged l1, last 50 it | vs fp32 | train s |")
    print("|---|---|---|---|---|---|")
    for precision, r in results.items():
        rel_val = r["val_l1"] / ref["val_l1"] - 1
        rel_log = r["logged_l1_last50"] / ref["logged_l1_last50"] - 1
        r.update(val_l1_rel=rel_val, logged_l1_rel=rel_log)
        ok &= abs(rel_val) <= args.tolerance
        seconds = "-" if r["train_seconds"] is None else f"{r['train_seconds']:.0f}"
        print(f"| {precision} | {r['val_l1']:.4f} | {rel_val:+.1%} | {r['logged_l1_last50']:.4f} | "
              f"{rel_log:+.1%} | {seconds} |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"iters": args.iters, "seed": args.seed, "device": args.device,
                                    "channels_last": args.channels_last, "tolerance": args.tolerance,
                                    "passed": ok, "results": results}, indent=2))
    print(f"{'PASS' if ok else 'FAIL'}: val L1 within {args.tolerance:.0%} of fp32; wrote {args.out}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
