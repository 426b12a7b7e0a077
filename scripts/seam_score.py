"""How strongly a run's outputs step at a patch grid: a number for the seams one sees when zooming in.

    python scripts/seam_score.py 8 results/vit_s0/test_latest [results/classic_s0/test_latest ...]

For each folder of test.py results it takes the ``images/*_fake_B.png`` outputs (``--kind`` picks
another suffix), the mean absolute difference between neighbouring pixels (grey levels, both
directions), and prints the mean difference across the lines of a P-pixel grid (between pixel
k*P - 1 and k*P) divided by the mean difference everywhere else. Why: a generator that decodes
P x P patches independently (vit_siren) can step at their borders; such steps add to the
differences on the grid lines only, so the score rises above 1, while image content that has no
relation to the grid gives about 1 (facades photos at P = 8: 0.98). A convolutional generator's
checkerboard also has a period, so compare a score with the same network's score at another
period (P +- 1) and with the targets' (``--kind real_B``), not with 1 alone.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))   # options/ and translate/ from the checkout

from translate.metrics.features import read_uint8  # noqa: E402


def grid_differences(grey: np.ndarray, period: int) -> tuple[float, float, float, float]:
    """For one H x W image: (sum, count) of the |differences| across the grid lines, then (sum, count)
    of the others; sums and counts, so that images of any size pool into one mean."""
    sums = np.zeros(2)
    counts = np.zeros(2)
    for axis in (0, 1):
        diffs = np.abs(np.diff(grey, axis=axis))                     # difference between pixel i and i + 1
        on_grid = (np.arange(1, grey.shape[axis]) % period) == 0      # i + 1 starts a new patch
        per_line = diffs.sum(axis=1 - axis)
        sums += per_line[on_grid].sum(), per_line[~on_grid].sum()
        counts += on_grid.sum() * diffs.shape[1 - axis], (~on_grid).sum() * diffs.shape[1 - axis]
    return sums[0], counts[0], sums[1], counts[1]


def seam_score(folder: Path, period: int, kind: str = "fake_B") -> tuple[float, int]:
    """(mean difference on the grid lines / mean difference elsewhere, number of images)."""
    if period < 2:
        raise ValueError(f"the period must be at least 2 pixels, not {period}")
    paths = sorted((folder / "images").glob(f"*_{kind}.png"))
    if not paths:
        raise SystemExit(f"seam_score: no *_{kind}.png in {folder / 'images'}: give test.py's result folder "
                         "(results/NAME/test_latest)")
    totals = np.zeros(4)
    for path in paths:
        grey = read_uint8(str(path)).astype(np.float64).mean(axis=2)
        if min(grey.shape) <= period:
            raise SystemExit(f"seam_score: {path} is {grey.shape[1]} x {grey.shape[0]}, no larger than the "
                             f"period {period}")
        totals += grid_differences(grey, period)
    on_sum, on_count, off_sum, off_count = totals
    if off_sum == 0:      # flat between the grid lines: any step on them is all seam
        return (float("inf") if on_sum > 0 else float("nan")), len(paths)
    return (on_sum / on_count) / (off_sum / off_count), len(paths)


def main(argv: list[str] | None = None) -> int:
    from options.commands import seam_score_parser
    args = seam_score_parser(__doc__.split("\n\n")[0]).parse_args(argv)
    from datasets import DataError
    for folder in args.folders:
        try:
            score, n = seam_score(folder, args.period, args.kind)
        except DataError as err:          # an image that does not decode: say which, no traceback
            raise SystemExit(f"seam_score: {err}") from None
        print(f"{folder}: {args.kind} at period {args.period}: {score:.3f} ({n} images)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
