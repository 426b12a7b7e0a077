"""`make demo`'s training command lines must stay valid: a flag change that breaks them fails here, fast.

(Its test.py line reads the network from the trained run, so it is exercised by `make demo` itself.)
"""
import importlib.util
from pathlib import Path

from options import parse_train_options

ROOT = Path(__file__).resolve().parent.parent


def _demo():
    spec = importlib.util.spec_from_file_location("demo", ROOT / "scripts" / "demo.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_demo_command_lines_parse():
    demo = _demo()
    for argv in (demo.TRAIN, demo.UNTRAINED):
        cfg = parse_train_options(argv)
        assert cfg.run.model == "pix2pix" and cfg.run.start_over
    assert parse_train_options(demo.UNTRAINED).optim.max_iters == 1
