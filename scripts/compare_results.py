"""One page with several runs' test results side by side: input, each run's output, target.

    python scripts/compare_results.py compare/ results/classic/test_latest=unet_128 \\
        results/vit/test_latest=vit_siren

Reads test.py's result folders (``images/NAME_real_A.png``, ``NAME_fake_B.png``, ...), one row
per test image that every run has, and writes ``OUT/index.html`` (100 rows a page) with the
pictures linked where they lie, not copied, and each run's metrics.json (test.py --metrics) on top.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))   # options/ and translate/ from the checkout


def _runs(specs: list[str]) -> list[tuple[str, Path]]:
    runs = []
    for spec in specs:
        folder, _, label = spec.partition("=")
        path = Path(folder)
        if not (path / "images").is_dir():
            sys.exit(f"compare_results: {path} has no images/ folder: give test.py's result folder "
                     f"(results/NAME/test_latest)")
        runs.append((label or path.parent.name, path))
    return runs


def comparison_rows(runs: list[tuple[str, Path]], out: Path, translation: str) -> list[tuple[str, list]]:
    """[(image name, [(label, path relative to out), ...])]: input, each run's output, target."""
    source, target = ("real_A", "real_B") if translation.endswith("B") else ("real_B", "real_A")
    names = None
    for _, path in runs:
        have = {p.name[:-len(f"_{translation}.png")] for p in (path / "images").glob(f"*_{translation}.png")}
        names = have if names is None else names & have
    if not names:
        sys.exit(f"compare_results: no {translation} image is in every run")
    first = runs[0][1] / "images"
    rel = lambda p: os.path.relpath(p, out)
    rows = []
    for name in sorted(names, key=lambda n: (len(n), n)):
        cells = [(source, rel(first / f"{name}_{source}.png"))] if (first / f"{name}_{source}.png").exists() else []
        cells += [(label, rel(path / "images" / f"{name}_{translation}.png")) for label, path in runs]
        if (first / f"{name}_{target}.png").exists():
            cells.append((target, rel(first / f"{name}_{target}.png")))
        rows.append((name, cells))
    return rows


def main(argv: list[str] | None = None) -> int:
    from options.commands import compare_results_parser
    from translate.visualize.html import write_results_page
    args = compare_results_parser(__doc__.split("\n\n")[0]).parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    runs = _runs(args.runs)
    metrics = {}
    for label, path in runs:
        file = path / "metrics.json"
        if file.exists():
            values = json.loads(file.read_text()).get(args.translation)
            if values:
                metrics[f"{label}: {args.translation}"] = values
    rows = comparison_rows(runs, out.resolve(), args.translation)
    pages = write_results_page(out, f"{args.translation}: " + " | ".join(label for label, _ in runs), rows,
                               width=args.width, metrics=metrics or None)
    print(f"{len(rows)} images side by side: {pages[0]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
