"""``python -m translate.export``: the entry point (the work is in translate/inference/export.py)."""
from translate import stop_signals

if __name__ == "__main__":
    stop_signals.exit_during_imports()   # a signal during the slow imports: exit 130/143, no traceback

import sys

from translate.inference.export import main

if __name__ == "__main__":
    # The file is written aside and renamed only once checked, so a stopped export leaves nothing.
    sys.exit(stop_signals.script_main(main, "translate.export", "no half-written file is left"))
