"""Make the checkout's top-level ``datasets`` and ``options`` packages importable.

Only ``translate`` is installed as a distribution (``pip install -e .``): the
names ``datasets`` and ``options`` are taken on PyPI (Hugging Face's
``datasets`` above all), and installing ours would shadow theirs or be shadowed.
So the entry points and the package import them from the checkout that holds
this file, and fail with a clear message if another package wins.
"""
from __future__ import annotations

import importlib
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def import_from_checkout(name: str):
    """Import the checkout's top-level package ``name`` (``datasets`` or ``options``)."""
    if not (REPO_ROOT / name / "__init__.py").exists():
        raise ImportError(f"translate runs from its git checkout: {REPO_ROOT / name} is missing. "
                          f"Install with `make install` (an editable install) in the checkout.")
    if str(REPO_ROOT) not in sys.path:
        sys.path.insert(0, str(REPO_ROOT))
    module = importlib.import_module(name)
    origin = Path(getattr(module, "__file__", "") or "").resolve()
    if REPO_ROOT not in origin.parents:
        raise ImportError(
            f"`import {name}` found {origin}, not this project's {REPO_ROOT / name}. Another package "
            f"named {name!r} (e.g. Hugging Face datasets) shadows it: run from the checkout, or use "
            f"a separate virtual environment (`make install`).")
    return module
