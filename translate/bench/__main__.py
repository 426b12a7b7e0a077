"""``python -m translate.bench``: the speed benchmark's command line (translate/bench/cli.py)."""
import sys

from translate.bench.cli import main

sys.exit(main())
