"""Translate with a trained model: `python test.py --dataroot DIR --name RUN --model test|pix2pix|cycle_gan`.

Writes results_dir/name/<phase>_<epoch>/images/ and an index.html with input,
output and, for paired data, the ground truth per row.
"""
from __future__ import annotations

import sys
from pathlib import Path

from translate import stop_signals

if __name__ == "__main__":
    stop_signals.exit_during_imports()

from options import OptionsError, parse_test_options
from translate.checkpoint import CheckpointError


def main(argv: list[str] | None = None) -> int:
    try:
        cfg = parse_test_options(argv)
    except OptionsError as err:
        print(f"test.py: error: {err}", file=sys.stderr)
        return 2
    from translate.files import OutputError, check_writable_folder
    try:  # before loading anything: where the results go must be writable
        check_writable_folder(Path(cfg.results_dir) / cfg.run.name, "--results_dir")
    except OutputError as err:
        print(f"test.py: error: {err}", file=sys.stderr)
        return 2
    from datasets import DataError
    from translate.metrics import MetricError
    from translate.metrics.features import InceptionError
    from translate.inference.test_split import run_test
    try:
        run_test(cfg)
    except (DataError, CheckpointError, MetricError, InceptionError) as err:
        print(f"test.py: error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    # Ctrl-C / SIGTERM: exit 130 / 143 without a traceback; during translation run_test()
    # stops between batches and writes the results page of what it translated.
    sys.exit(stop_signals.script_main(main, "test.py", "no half-written image is left"))
