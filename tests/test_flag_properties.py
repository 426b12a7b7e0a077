"""Every numeric flag of every entry point, given an edge-case value, either stops at start-up
with a one-line error that names the flag (exit 2 / OptionsError), or gives a run that works.

The flags are enumerated from the parsers' actions, so a new flag is covered by being
defined.  Every value is parsed for every flag; a bounded sample of the accepted ones
then really runs: one training iteration, one test.py translation, one folder
translation, one export (tiny networks, 32 px, built-in data).
"""
import argparse
import contextlib
import io
import json
import math
import warnings
from functools import cache
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

import test as test_entry
import train as train_entry
from datasets import download as download_entry
from datasets import synthetic as synthetic_entry
from options import OptionsError, parse_test_options, parse_train_options
from options.flags import build_parser as build_options_parser
from options.ranges import NumberRange
from translate import __main__ as folder_entry
from translate.bench import cli as bench_entry
from translate.inference import export as export_entry
from translate.metrics import __main__ as metrics_entry

EDGES = ["0", "-1", "nan", "inf", "-inf", "1e30", str(10**30), "abc", "0.5", ""]
TINY = ["--netG", "resnet_6blocks", "--ngf", "8", "--ndf", "8", "--crop_size", "32", "--load_size", "32",
        "--gpu_ids", "-1", "--num_threads", "0"]
# One epoch of one image: one iteration that is a whole epoch, so the epoch's end (the
# learning-rate scheduler, the checkpoints) runs too; --max_iters would stop before it.
TRAIN_BASE = TINY + ["--display_id", "0", "--n_epochs", "1", "--n_epochs_decay", "0",
                     "--max_dataset_size", "1", "--print_freq", "1", "--name", "run"]
# Flags that only matter in some set-ups are tried in them (key: the flag's name or its prefix).
CONTEXT = {
    "vit_": ["--netG", "vit_siren", "--netD", "vit", "--vit_dim", "32", "--vit_heads", "2", "--vit_depth", "1",
             "--vit_patch_size", "8", "--vit_pixel_skip", "4"],
    "num_D": ["--netD", "multiscale", "--num_D", "2", "--crop_size", "64", "--load_size", "64"],
    "n_layers_D": ["--netD", "n_layers", "--n_layers_D", "2"],
    "lr_decay_iters": ["--lr_policy", "step"],
    "max_dataset_size": ["--max_iters", "1"],  # inf, 1e30: the whole built-in set is an epoch
    "lambda_L1": ["--model", "pix2pix"],
    "lambda_cs": ["--model", "csgan"],
    "lambda_cutmix": ["--netD", "unet"],
    "lambda_gp": ["--gan_mode", "wgangp"],
    "lo_": ["--netG", "vit_siren", "--netD", "vit", "--vit_dim", "32", "--vit_heads", "2", "--vit_depth", "1",
            "--vit_patch_size", "8", "--vit_pixel_skip", "4", "--vit_noise", "8", "--latent_optimization"],
}
# A valid value for flags whose default is None and that the base command line does not set.
VALID = {"--lr_D": "0.0002", "--max_iters": "1", "--max_megapixels": "10", "--size": "32", "--rounds": "1", "--threads": "1",
         "--train_iters": "1", "--train_warmup": "0", "--infer_iters": "1", "--infer_warmup": "0",
         "--load_size": "32", "--crop_size": "32"}


def _train_base(argv):
    """TRAIN_BASE, less --ngf / --ndf in the vit context: the vit networks take neither, and a
    network flag that no network takes is an error."""
    if "vit_siren" not in argv:
        return TRAIN_BASE
    widths = ("--ngf", "--ndf")
    return [a for i, a in enumerate(TRAIN_BASE) if a not in widths and not (i and TRAIN_BASE[i - 1] in widths)]


def _start_train(argv):
    parse_train_options(_train_base(argv) + argv)


def _start_test(argv):
    parse_test_options(TINY + ["--model", "cycle_gan", "--name", "run", "--num_test", "1"] + argv)


FOLDER_BASE = ["in", "--name", "run", "--output", "out", "--num_workers", "0", "--gpu_ids", "-1", "--no_progress"]


def _sub(parser, name):
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return action.choices[name]


# entry point -> (its parser, what it does at start-up with extra flags, base command line)
ENTRY_POINTS = {
    "train.py": (lambda: build_options_parser(True, "cycle_gan"), _start_train, TRAIN_BASE),
    "test.py": (lambda: build_options_parser(False), _start_test, TINY),
    "python -m translate": (folder_entry.build_parser, lambda a: folder_entry.parse_args(FOLDER_BASE + a),
                            FOLDER_BASE),
    "python -m translate.export": (export_entry.build_parser,
                                   lambda a: export_entry.build_parser().parse_args(
                                       ["--name", "run", "--format", "onnx", *a]), []),
    **{f"python -m translate.bench {mode}": (
        lambda mode=mode: _sub(bench_entry.build_parser(), mode),
        lambda a, mode=mode: bench_entry.build_parser().parse_args([mode, *a]), [])
       for mode in ("train", "infer", "standard")},
    "python -m translate.metrics": (metrics_entry.build_parser,
                                    lambda a: metrics_entry.build_parser().parse_args(["fake", "real", *a]), []),
    "python -m datasets.synthetic": (synthetic_entry.build_parser,
                                     lambda a: synthetic_entry.build_parser().parse_args(a), []),
    "python -m datasets.download": (download_entry.build_parser,
                                    lambda a: download_entry.build_parser().parse_args(["facades", *a]), []),
}


def _numeric_actions(parser):
    return [a for a in parser._actions if a.option_strings and (isinstance(a.type, NumberRange)
                                                                 or a.type in (int, float))]


def _flags(entry):
    return [a.option_strings[0] for a in _numeric_actions(ENTRY_POINTS[entry][0]())]


@cache
def _option_strings(entry):
    return {o for a in ENTRY_POINTS[entry][0]()._actions for o in a.option_strings}


def _context_argv(flag, entry="train.py"):
    """The set-up ``flag`` is tried in, where ``entry`` has all its flags."""
    argv = next((argv for key, argv in CONTEXT.items() if flag.lstrip("-").startswith(key)), [])
    return argv if {a for a in argv if a.startswith("--")} <= _option_strings(entry) else []


def _valid_value(entry, flag):
    base = ENTRY_POINTS[entry][2] + _context_argv(flag, entry)
    if flag in base:
        return base[len(base) - 1 - base[::-1].index(flag) + 1]
    action = next(a for a in _numeric_actions(ENTRY_POINTS[entry][0]()) if flag in a.option_strings)
    return VALID.get(flag, str(action.default) if action.default is not None else "1")


def _start(entry, flag, value):
    """Start-up only: None if the value is accepted, else the one-line error."""
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err):
            ENTRY_POINTS[entry][1](_context_argv(flag, entry) + [flag, value])
    except OptionsError as error:
        return str(error)
    except SystemExit as exit_:
        assert exit_.code == 2, f"{entry} {flag} {value!r}: exit {exit_.code}"
        lines = err.getvalue().strip().splitlines()
        assert len(lines) == 1, f"{entry} {flag} {value!r}: not a one-line error:\n{err.getvalue()}"
        return lines[0]
    return None


CASES = [(entry, flag) for entry in ENTRY_POINTS for flag in _flags(entry)]


def test_every_numeric_flag_declares_its_range():
    """A bare type=int / type=float flag would skip the range check: each must be a NumberRange."""
    bare = [(entry, a.option_strings[0]) for entry, (parser, _, _) in ENTRY_POINTS.items()
            for a in _numeric_actions(parser()) if not isinstance(a.type, NumberRange)]
    assert not bare
    assert len(CASES) > 80  # the enumeration really finds the flags


@pytest.mark.slow   # every flag x every edge value; the random sample below stays in the fast set
@pytest.mark.parametrize("entry,flag", CASES, ids=[f"{e}:{f}" for e, f in CASES])
def test_edge_values_give_a_clean_error_naming_the_flag_or_are_in_range(entry, flag):
    action = next(a for a in _numeric_actions(ENTRY_POINTS[entry][0]()) if flag in a.option_strings)
    for value in EDGES + [_valid_value(entry, flag)]:
        error = _start(entry, flag, value)
        if error is not None:
            assert flag in error, f"{entry} {flag} {value!r}: the error does not name the flag: {error}"
            continue
        parsed = action.type(value)
        assert not math.isnan(parsed) and action.type.contains(parsed)
    assert _start(entry, flag, _valid_value(entry, flag)) is None, f"{entry} {flag}: the valid value is refused"


@cache
def _accepted(entry):
    """(flag, value) pairs of ``entry`` that pass start-up: the edge cases first (the ones a run
    could choke on: 0, inf, 1e30 ...), else the valid values."""
    pairs = dict.fromkeys((flag, value) for flag in _flags(entry) for value in EDGES + [_valid_value(entry, flag)]
                          if _start(entry, flag, value) is None)
    edges = [pair for pair in pairs if pair[1] in EDGES]
    return edges or list(pairs)


ANY_TEXT = st.one_of(st.integers(-2**70, 2**70).map(str), st.floats().map(repr), st.text(max_size=6))


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(case=st.sampled_from(CASES), value=ANY_TEXT)
def test_random_values_give_a_clean_error_naming_the_flag_or_are_in_range(case, value):
    entry, flag = case
    error = _start(entry, flag, value)
    assert error is None or flag in error, f"{entry} {flag} {value!r}: {error}"


RUNS = settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck), database=None)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A one-iteration run to translate with, and a folder of two small images."""
    root = tmp_path_factory.mktemp("flags")
    assert train_entry.main(TRAIN_BASE + ["--checkpoints_dir", str(root / "ck")]) == 0
    (root / "in").mkdir()
    for i, size in enumerate([(32, 32), (40, 24)]):
        Image.new("RGB", size, (40 * i, 90, 200)).save(root / "in" / f"{i}.png")
    return root


def _fresh(root, kind):
    folder = root / f"{kind}_{len(list(root.glob(kind + '_*')))}"
    folder.mkdir()
    return folder


@RUNS
@given(data=st.data())
@pytest.mark.slow
def test_accepted_training_values_complete_an_iteration(trained, data):
    flag, value = data.draw(st.sampled_from(_accepted("train.py")))
    ck = _fresh(trained, "train")
    argv = _context_argv(flag) + [flag, value, "--checkpoints_dir", str(ck)]
    assert train_entry.main(_train_base(argv) + argv) == 0
    assert (ck / "run" / "ckpt_latest").is_dir(), f"{flag} {value}: no checkpoint after one iteration"
    assert (ck / "run" / "loss_log.jsonl").exists(), f"{flag} {value}: no iteration was logged"
    log = [json.loads(line) for line in (ck / "run" / "loss_log.jsonl").read_text().splitlines()]
    losses = [v for entry in log for v in entry["losses"].values()]
    assert log and all(math.isfinite(v) for v in losses), f"{flag} {value}: the iteration did not train: {log}"


@settings(RUNS, max_examples=4)
@given(data=st.data())
@pytest.mark.slow
def test_accepted_test_values_translate(trained, data):
    flag, value = data.draw(st.sampled_from(_accepted("test.py")))
    results = _fresh(trained, "results")
    argv = TINY + ["--model", "cycle_gan", "--name", "run", "--num_test", "1", "--checkpoints_dir",
                   str(trained / "ck"), "--results_dir", str(results), flag, value]
    assert test_entry.main(argv) == 0, f"{flag} {value}"
    assert list(results.rglob("*.png")), f"{flag} {value}: no images written"


@settings(RUNS, max_examples=4)
@given(data=st.data())
def test_accepted_folder_translation_values_translate(trained, data):
    flag, value = data.draw(st.sampled_from(_accepted("python -m translate")))
    out = _fresh(trained, "out")
    argv = [str(trained / "in"), "--name", "run", "--checkpoints_dir", str(trained / "ck"), "--output",
            str(out), "--num_workers", "0", "--gpu_ids", "-1", "--no_progress", flag, value]
    limit = Image.MAX_IMAGE_PIXELS  # --max_megapixels sets PIL's global limit
    try:
        assert folder_entry.main(argv) == 0, f"{flag} {value}"
    finally:
        Image.MAX_IMAGE_PIXELS = limit
    assert len(list(out.rglob("*.png"))) == 2


def test_accepted_export_sizes_export(trained, tmp_path):
    for flag, value in _accepted("python -m translate.export"):
        out = tmp_path / f"g{value}.pt"
        argv = ["--name", "run", "--checkpoints_dir", str(trained / "ck"), "--format", "torchscript",
                "--output", str(out), flag, value]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch.jit's deprecation notices
            assert export_entry.main(argv) == 0, f"{flag} {value}"
        assert Path(out).exists()
