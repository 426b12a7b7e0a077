"""translate/models.py's MODELS table: its facts are consistent, and it is the only place they are written.

A new ``--model`` is one entry in MODELS; these tests (and tests/test_smoke.py, parametrized
over the table) then cover it without being edited.
"""
import ast
from pathlib import Path

import pytest
import torch

from options import parse_test_options, parse_train_options
from options.config import NetworkConfig
from options.flags import build_parser
from translate.models import MODELS, TRAINABLE, get_model
from translate.networks import build_networks

ROOT = Path(__file__).resolve().parents[1]
DOMAINS = {"a", "b"}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_spec_is_consistent(name):
    spec = MODELS[name]
    assert spec.name == name
    assert "gen_ab" in spec.generators, "test.py and the exports translate with gen_ab"
    for reads, writes in spec.generators.values():
        assert {reads, writes} == DOMAINS
    assert set(spec.discriminators.values()) <= DOMAINS
    networks = set(spec.generators) | set(spec.discriminators)
    classic = list(spec.classic_names.values())
    assert len(set(classic)) == len(classic), f"{name}: two networks share a classic file name"
    assert set(spec.classic_names) <= networks
    assert set(spec.generators) <= set(spec.classic_names), "every generator needs its classic .pth name"
    assert spec.rows and len(set(spec.rows)) == len(spec.rows)
    if spec.trainable:
        assert spec.terms and spec.discriminators


def _dests(parser) -> dict:
    return {a.dest: a for a in parser._actions}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_defaults_are_real_flags_with_valid_values(name):
    spec = MODELS[name]
    for is_train, defaults in ((True, spec.flag_defaults(True)), (False, spec.flag_defaults(False))):
        actions = _dests(build_parser(is_train))
        for flag, value in defaults.items():
            assert flag in actions, f"{name}: default for --{flag}, which {'train' if is_train else 'test'}.py lacks"
            if actions[flag].choices is not None:
                assert value in actions[flag].choices, f"{name}: --{flag} {value!r} is not a choice"
    # And the defaults reach the parsed config.
    parsed = vars(build_parser(spec.trainable, name).parse_args([]))
    assert all(parsed[k] == v for k, v in spec.flag_defaults(spec.trainable).items())


def test_model_choices_and_unknown_names_come_from_the_table():
    for is_train in (True, False):
        assert _dests(build_parser(is_train))["model"].choices == sorted(MODELS)
    with pytest.raises(ValueError, match=", ".join(sorted(MODELS))):
        get_model("no_such_model")


@pytest.mark.parametrize("name", sorted(MODELS))
def test_networks_get_the_channels_the_table_says(name):
    """Built from the table with 1-channel A and 3-channel B, each network takes and returns what its spec says."""
    spec = MODELS[name]
    net = NetworkConfig(netG="resnet_6blocks", netD="basic", input_nc=1, output_nc=3, ngf=4, ndf=4, crop_size=32)
    nets = build_networks(name, net)
    assert set(nets) == set(spec.generators) | set(spec.discriminators)
    nc = {"a": 1, "b": 3}
    with torch.no_grad():
        for gen, (reads, writes) in spec.generators.items():
            assert spec.generator_channels(gen, 1, 3) == (nc[reads], nc[writes])
            out = nets[gen](torch.zeros(1, nc[reads], 32, 32))
            assert out.shape == (1, nc[writes], 32, 32)
        for disc, judged in spec.discriminators.items():
            channels = nc[judged] + (nc["a"] if spec.conditional_d else 0)
            assert spec.discriminator_channels(disc, 1, 3) == channels
            nets[disc](torch.zeros(1, channels, 32, 32))
            with pytest.raises(RuntimeError):   # the channel count is really what it takes
                nets[disc](torch.zeros(1, channels + 1, 32, 32))
    assert set(build_networks(name, net, with_discriminators=False)) == set(spec.generators)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_options_follow_the_spec(name):
    spec = MODELS[name]
    if not spec.trainable:
        from options import OptionsError
        with pytest.raises(OptionsError, match="test.py") as err:
            parse_train_options(["--model", name])
        assert all(m in str(err.value) for m in TRAINABLE)
        assert parse_test_options(["--model", name]).run.model == name
        return
    mode = "aligned" if spec.paired else "unaligned"
    c = parse_train_options(["--model", name, "--dataroot", "d", "--dataset_mode", mode])
    assert (c.loss.lambda_identity > 0) == spec.two_way
    assert (c.loss.lambda_cs > 0) == ("cs_a" in spec.terms)
    from options import OptionsError
    if "cs_a" not in spec.terms:   # the CSGAN weight only where the model has the term
        with pytest.raises(OptionsError, match="--lambda_cs belongs to") as err:
            parse_train_options(["--model", name, "--dataset_mode", "aligned", "--lambda_cs", "3"])
        assert all(f"{m}" in str(err.value) for m in TRAINABLE if "cs_a" in MODELS[m].terms)
    if spec.paired:
        with pytest.raises(OptionsError, match="needs paired data") as err:
            parse_train_options(["--model", name, "--dataset_mode", "unaligned"])
        unpaired = [m for m in TRAINABLE if not MODELS[m].paired]
        assert all(f"--model {m}" in str(err.value) for m in unpaired)


# ---- the table is the only place a model's facts are written ---------------------------------

MODEL_NAMES = frozenset(MODELS)
SCANNED = sorted([*(ROOT / "translate").rglob("*.py"), *(ROOT / "options").rglob("*.py"),
                  *(ROOT / "datasets").rglob("*.py"), ROOT / "train.py", ROOT / "test.py"])
TABLE_FILE = "translate/models.py"

# Strings spelt like a model name that mean something else: (file, string) -> why.
NOT_MODEL_NAMES = {
    # The published downloads live in two collections on the classic server, pix2pix/ and
    # cyclegan/; "pix2pix" there names the collection (its URL folder and --kind), not --model.
    ("datasets/download.py", "pix2pix"): "download collection (--kind pix2pix)",
    ("translate/pretrained.py", "pix2pix"): "download collection (--kind pix2pix)",
    # "test" is also the name of a data split (trainA/testA, --phase test).
    ("datasets/synthetic.py", "test"): "split name: the built-in data's train and test splits",
    ("translate/metrics/validation.py", "test"): "split name: validate on val, else test",
    # The benchmark's standard set names the models it measures: data, not a branch.
    ("translate/bench/cli.py", "cycle_gan"): "STANDARD_NETS: the benchmarked configurations",
    ("translate/bench/cli.py", "pix2pix"): "STANDARD_NETS: the benchmarked configurations",
}

# Model facts still written outside the table, in files other helpers of issue 12 own and
# are rewriting to use MODELS (inference loading/export: helper `infer`; the objective: helper
# `train`).  The lead empties this at merge time; the test below fails once an entry is gone.
STILL_TO_DERIVE: set = set()   # (the inference loader derives its model facts from MODELS now)


def _is_name(node) -> bool:
    return isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in MODEL_NAMES


def _literal_names(node) -> list:
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        return [e for e in node.elts if _is_name(e)]
    return []


def model_name_uses(tree: ast.AST) -> list[tuple[int, str, str]]:
    """(line, name, how) for each place a model name is compared, keyed on or listed."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            for operand in (node.left, *node.comparators):
                if _is_name(operand):   # (a literal list operand is reported as "listed" below)
                    found.append((operand.lineno, operand.value, "compared"))
        elif isinstance(node, ast.Dict):
            found += [(k.lineno, k.value, "a dict key") for k in node.keys if k is not None and _is_name(k)]
        elif isinstance(node, (ast.Tuple, ast.List, ast.Set)):
            found += [(e.lineno, e.value, "listed") for e in _literal_names(node)]
        elif isinstance(node, ast.Subscript) and _is_name(node.slice):
            found.append((node.slice.lineno, node.slice.value, "a subscript"))
        elif isinstance(node, ast.MatchValue) and _is_name(node.value):
            found.append((node.value.lineno, node.value.value, "a match case"))
        elif isinstance(node, ast.IfExp):   # name = "cycle_gan" if ... else "pix2pix"
            found += [(e.lineno, e.value, "chosen by a condition") for e in (node.body, node.orelse) if _is_name(e)]
    return sorted(set(found))


def _scan() -> dict[tuple[str, str], list[str]]:
    hits: dict[tuple[str, str], list[str]] = {}
    for path in SCANNED:
        rel = path.relative_to(ROOT).as_posix()
        if rel == TABLE_FILE:
            continue
        for line, name, how in model_name_uses(ast.parse(path.read_text(), str(path))):
            hits.setdefault((rel, name), []).append(f"{rel}:{line}: {name!r} {how}")
    return hits


def test_model_names_appear_only_in_the_table():
    hits = _scan()
    bad = sorted(where for key, places in hits.items() if key not in NOT_MODEL_NAMES and key not in STILL_TO_DERIVE
           for where in places)
    assert not bad, ("model facts written outside translate/models.py (derive them from MODELS, "
                     "e.g. spec.paired, spec.classic_names, spec.rows):\n" + "\n".join(bad))


def test_known_leftovers_are_still_there():
    """Fails once another helper's change derives them: then remove the entry from STILL_TO_DERIVE."""
    hits = _scan()
    gone = sorted(key for key in STILL_TO_DERIVE | set(NOT_MODEL_NAMES) if key not in hits)
    assert not gone, f"no longer found, remove from STILL_TO_DERIVE / NOT_MODEL_NAMES: {gone}"


@pytest.mark.parametrize("source,expected", [
    ('if model == "pix2pix": pass', [(1, "pix2pix", "compared")]),
    ('x = m not in ("cycle_gan", "csgan")', [(1, "csgan", "listed"), (1, "cycle_gan", "listed")]),
    ('ROWS = {"test": 1}', [(1, "test", "a dict key")]),
    ('TWO = ["cycle_gan"]', [(1, "cycle_gan", "listed")]),
    ('rows = ROWS["csgan"]', [(1, "csgan", "a subscript")]),
    ('m = "cycle_gan" if two else "pix2pix"', [(1, "cycle_gan", "chosen by a condition"),
                                               (1, "pix2pix", "chosen by a condition")]),
    ('p.add_argument("--model", default="cycle_gan", help="pix2pix: paired")', []),
    ('"""cycle_gan and pix2pix."""\nraise ValueError(f"--model {m}: try cycle_gan")', []),
])
def test_the_scanner_sees_branches_not_texts(source, expected):
    assert model_name_uses(ast.parse(source)) == expected


# Built in this order since the first release: the seeded initialization and the optimizer state
# of saved checkpoints depend on it.
BUILD_ORDER = {"cycle_gan": ["gen_ab", "gen_ba", "disc_b", "disc_a"], "csgan": ["gen_ab", "gen_ba", "disc_b", "disc_a"],
               "pix2pix": ["gen_ab", "disc_b"], "test": ["gen_ab"]}


@pytest.mark.parametrize("name", sorted(BUILD_ORDER))
def test_networks_are_built_in_the_order_checkpoints_expect(name):
    net = NetworkConfig(netG="resnet_6blocks", netD="basic", ngf=4, ndf=4, crop_size=32)
    assert list(build_networks(name, net)) == BUILD_ORDER[name]


@pytest.mark.parametrize("name", sorted(MODELS))
@pytest.mark.parametrize("with_b", [True, False])
def test_test_py_rows_are_made_from_the_table(name, with_b):
    """test.py's row images: each generator is a known shift, so every image says how it was made."""
    from translate.inference.test_split import _translate
    spec = MODELS[name]
    shift = {"gen_ab": 1.0, "gen_ba": -10.0}
    calls = []

    def generator(gen):
        def run(x):
            calls.append(gen)
            return x + shift[gen]
        return run

    batch = {"A": torch.zeros(1, 1, 2, 2)} | ({"B": torch.full((1, 1, 2, 2), 100.0)} if with_b else {})
    made = {k: float(v.flatten()[0]) for k, v in _translate(None, {g: generator(g) for g in spec.generators},
                                                            batch, name).items()}
    expected = {"real_A": 0, "real": 0, "fake_B": 1, "fake": 1, "real_B": 100, "rec_A": -9, "fake_A": 90, "rec_B": 91}
    two_way = spec.two_way and with_b   # without B images only A -> B runs
    shown = [r for r in spec.rows if (with_b or r != "real_B") and (two_way or r not in ("rec_A", "fake_A", "rec_B"))]
    assert made == {r: expected[r] for r in shown}
    # The generators run in row order, each image once (dropout / train-mode batch norm see fixed calls).
    assert calls == (["gen_ab", "gen_ba", "gen_ba", "gen_ab"] if two_way else ["gen_ab"])
