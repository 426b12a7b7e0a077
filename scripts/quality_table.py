"""One row of the README quality table: train at a fixed budget, test with --metrics, print a row.

    python scripts/quality_table.py --model pix2pix --dataroot ../shared/datasets/facades \
        --iters 2000 --common "--direction BtoA" --train "--netG unet_128 --netD basic" \
        --out quality_table.md

It runs ``train.py --max_iters ITERS`` (wall minutes measured), then
``test.py --metrics`` on the test split (every test image, --eval), reads
metrics.json and prints (and with --out appends) a markdown row per
translation: command, minutes, iterations, FID, KID x 1000 (+- std), and on
paired data L1 / PSNR / SSIM.  --common flags go to both runs (direction,
sizes, --gpu_ids), --train flags to train.py only, --test flags to test.py only.
"""
from __future__ import annotations

import json
import shlex
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HEADER = ("| model | command | budget | minutes | iterations | translation | FID | KID x 1000 | L1 | PSNR (dB) | SSIM |\n"
          "|---|---|---|---|---|---|---|---|---|---|---|\n")


def build_parser():
    sys.path.insert(0, str(ROOT))   # options/ and translate/ from the checkout
    from options.commands import quality_table_parser
    from translate.models import TRAINABLE
    return quality_table_parser(__doc__.split("\n\n")[0], models=TRAINABLE)


def _run(cmd: list[str]) -> None:
    print("$", shlex.join(cmd), flush=True)
    result = subprocess.run(cmd)
    if result.returncode != 0:
        sys.exit(f"quality_table: {Path(cmd[1]).name} failed with exit code {result.returncode}")


def _fmt(value, digits: int = 3) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def budget_iterations(args) -> tuple[int, str]:
    """(--max_iters, the budget column): a fixed iteration count, or a budget in minutes of one core
    turned into iterations with the configuration's step cost (--step_seconds, or measured here by
    scripts/step_cost.py as CPU seconds on one thread), so that rows trained while the machine was
    shared still get the same budget."""
    if args.iters is not None:
        return args.iters, f"{args.iters} iterations"
    seconds = args.step_seconds
    if seconds is None:   # measure it: the networks and flags come from --common and --train
        sys.path.insert(0, str(ROOT / "scripts"))
        from step_cost import step_cost
        print("measuring the CPU seconds of one training step on one thread (scripts/step_cost.py) ...", flush=True)
        seconds = step_cost(args.model, "resnet_9blocks", "basic", train_args=f"{args.common} {args.train}")
    iters = max(1, round(args.budget_minutes * 60 / seconds))
    return iters, f"{args.budget_minutes:g} min at {seconds:.3f} s/step"


def rows(label: str, command: str, budget: str, minutes: float, iters: int, metrics: dict) -> list[str]:
    out = []
    for translation, m in metrics.items():
        kid = "" if m.get("kid") is None else f"{m['kid_x1000']:.2f} +- {m['kid_std_x1000']:.2f}"
        out.append(f"| {label} | `{command}` | {budget} | {minutes:.1f} | {iters} | {translation} vs {m['against']} "
                   f"(n={m['n_fake']}) | {_fmt(m.get('fid'), 1)} | {kid} | {_fmt(m.get('l1'), 4)} | "
                   f"{_fmt(m.get('psnr'), 2)} | {_fmt(m.get('ssim'), 4)} |")
    return out


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    iters, budget = budget_iterations(args)
    name = args.name or f"quality_{args.model}_{iters}"
    common = ["--dataroot", args.dataroot, "--model", args.model, "--name", name,
              "--checkpoints_dir", args.checkpoints_dir, *shlex.split(args.common)]
    train = [sys.executable, str(ROOT / "train.py"), *common, "--max_iters", str(iters), "--display_id", "0",
             *shlex.split(args.train)]
    start = time.perf_counter()
    _run(train)
    minutes = (time.perf_counter() - start) / 60
    test = [sys.executable, str(ROOT / "test.py"), *common, "--phase", "test", "--eval", "--num_test", "1000000",
            "--metrics", "--results_dir", args.results_dir, *shlex.split(args.test)]
    _run(test)
    metrics_file = Path(args.results_dir, name, "test_latest", "metrics.json")
    metrics = json.loads(metrics_file.read_text())
    shown = shlex.join(["train.py", "--model", args.model, *shlex.split(args.common), *shlex.split(args.train),
                        "--max_iters", str(iters)])
    lines = rows(args.label or args.model, shown, budget, minutes, iters, metrics)
    print(HEADER + "\n".join(lines))
    if args.out:
        out = Path(args.out)
        text = ("" if out.exists() else HEADER) + "\n".join(lines) + "\n"
        with open(out, "a", encoding="utf-8") as f:
            f.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
