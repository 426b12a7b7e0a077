"""`make demo`'s training command lines must stay valid: a flag change that breaks them fails here, fast.

(Its test.py line reads the network from the trained run, so it is exercised by `make demo` itself.)
"""
from options import parse_train_options
from script_module import load_script


def _demo():
    return load_script("demo")


def test_demo_command_lines_parse():
    demo = _demo()
    for argv in (demo.TRAIN, demo.UNTRAINED):
        cfg = parse_train_options(argv)
        assert cfg.run.model == "pix2pix" and cfg.run.start_over
    assert parse_train_options(demo.UNTRAINED).optim.max_iters == 1
