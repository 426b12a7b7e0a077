"""``python -m translate.viewer``: the offline Visdom server (the work is in translate/visualize/viewer.py)."""
import sys

from translate.visualize.viewer import main

if __name__ == "__main__":
    sys.exit(main())
