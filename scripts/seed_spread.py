"""How much several runs of one configuration (other seeds) differ, and what their average is worth.

    python scripts/seed_spread.py results/vit_s0/test_latest results/vit_s1/test_latest ...

For paired results (test.py's ``images/NAME_fake_B.png`` beside ``NAME_real_B.png``) it prints
each run's L1 against the target, the L1 between the runs' outputs (mean over pairs of runs: how
much the seed changes the picture), and the L1 of the runs' per-pixel mean output. Why: when a
network's L1 is behind, this tells a bias (every seed makes nearly the same picture, and their
mean is no better) from noise (the seeds scatter around the target, and their mean is closer).
L1 on the [0, 1] scale, as test.py --metrics reports it; images every run has.
"""
from __future__ import annotations

import itertools
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))   # options/ and translate/ from the checkout

from translate.metrics.features import read_uint8  # noqa: E402
from translate.metrics.paired import l1  # noqa: E402


def _image(path: Path) -> torch.Tensor:
    """3 x H x W in [0, 1], decoded as test.py --metrics decodes it."""
    return torch.from_numpy(read_uint8(str(path))).permute(2, 0, 1).float() / 255


def spread(folders: list[Path], fake: str = "fake_B", real: str = "real_B") -> dict[str, object]:
    """{"runs": [L1 of each run], "between_runs": mean L1 between two runs' outputs,
    "of_the_mean": L1 of the per-pixel mean output, "images": n}."""
    names = None
    for folder in folders:
        have = {p.name[:-len(f"_{fake}.png")] for p in (folder / "images").glob(f"*_{fake}.png")}
        names = have if names is None else names & have
    if not names:
        raise SystemExit(f"seed_spread: no {fake} image is in every run")
    names = sorted(names)
    fakes = torch.stack([torch.stack([_image(f / "images" / f"{n}_{fake}.png") for n in names]) for f in folders])
    target = torch.stack([_image(folders[0] / "images" / f"{n}_{real}.png") for n in names])
    pairs = list(itertools.combinations(range(len(folders)), 2))
    return {"runs": [l1(run, target).mean().item() for run in fakes],
            "between_runs": float(np.mean([l1(fakes[i], fakes[j]).mean().item() for i, j in pairs])),
            "of_the_mean": l1(fakes.mean(0), target).mean().item(), "images": len(names)}


def main(argv: list[str] | None = None) -> int:
    from options.commands import seed_spread_parser
    parser = seed_spread_parser(__doc__.split("\n\n")[0])
    folders = parser.parse_args(argv).folders
    if len(folders) < 2 or any(not (f / "images").is_dir() for f in folders):
        parser.error("give two or more of test.py's result folders (results/NAME/test_latest)")
    from datasets import DataError
    try:
        result = spread(folders)
    except DataError as err:          # an image that does not decode: say which, no traceback
        raise SystemExit(f"seed_spread: {err}") from None
    print(f"{result['images']} images; L1 of each run: " + ", ".join(f"{v:.4f}" for v in result["runs"]))
    print(f"L1 between runs' outputs: {result['between_runs']:.4f}; L1 of their mean: {result['of_the_mean']:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
