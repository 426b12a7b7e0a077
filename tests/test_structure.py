"""The layout holds its shape: each part imports only what it may (DESIGN.md, "Layout").

The test reads the source (it imports nothing), so an import inside a function, a relative
import and ``import_from_checkout("options")`` (translate/_checkout.py) all count.  A broken
rule names the file, the line and the rule.
"""
from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SCANNED = ("translate", "datasets", "options")     # the packages whose every .py file is read


@dataclass(frozen=True)
class Rule:
    part: str                  # a folder ("translate/nets/") or one file, relative to the repo root
    forbidden: tuple[str, ...]  # modules it must not import (their submodules are forbidden too)
    why: str


#    part                              must not import                                   because
RULES = (
    Rule("translate/nets/",            ("options", "translate.training", "translate.inference",
                                        "translate.visualize", "accelerate"),            "a network knows no flags and no loop"),
    Rule("translate/training/objective.py", ("translate.training.trainer", "accelerate"), "the loss math knows no mechanics"),
    Rule("datasets/",                  ("translate.nets", "translate.training"),         "data knows no networks and no loop"),
    Rule("translate/visualize/",       ("translate.training",),                          "the viewer is fed, it does not reach in"),
)

# Calls that import the package named by their first (string) argument.
IMPORT_CALLS = ("import_from_checkout", "import_module", "__import__")


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path, root: Path) -> list[tuple[int, str]]:
    """(line, dotted module) for every import in the file, relative imports resolved.

    ``from a import b`` yields ``a`` and ``a.b`` (b may be a submodule).
    """
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    here = module_name(path, root).split(".")
    package = here if path.name == "__init__.py" else here[:-1]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - (node.level - 1)] + ([node.module] if node.module else [])
                module = ".".join(base)
            else:
                module = node.module
            found.append((node.lineno, module))
            found += [(node.lineno, f"{module}.{alias.name}") for alias in node.names if alias.name != "*"]
        elif isinstance(node, ast.Call) and _call_name(node.func) in IMPORT_CALLS and node.args:
            first = node.args[0]
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                found.append((node.lineno, first.value))
    return found


def _call_name(func: ast.expr) -> str | None:
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return None


def _within(module: str, forbidden: str) -> bool:
    return module == forbidden or module.startswith(forbidden + ".")


def _files_of(rule: Rule, root: Path) -> list[Path]:
    target = root / rule.part
    if rule.part.endswith("/"):
        return sorted(target.rglob("*.py"))
    return [target] if target.is_file() else []


def broken_rules(root: Path, rules=RULES, scanned=SCANNED) -> list[str]:
    """One line per forbidden import under ``root``: ``file:line: imports X (rule)``."""
    errors = []
    for rule in rules:
        files = _files_of(rule, root)
        if not files:   # a rule about a part that moved would pass forever: say so
            errors.append(f"{rule.part}: no such part; update RULES in tests/test_structure.py")
        for path in files:
            reported = set()   # one error per import line (``from a import b`` yields a and a.b)
            for line, module in imported_modules(path, root):
                bad = next((f for f in rule.forbidden if _within(module, f)), None)
                if bad and line not in reported:
                    reported.add(line)
                    rel = path.relative_to(root).as_posix()
                    errors.append(f"{rel}:{line}: imports {module}, but {rule.part} must not import "
                                  f"{bad} ({rule.why})")
    for package in scanned:   # every file of the scanned packages must parse for the reading to hold
        for path in sorted((root / package).rglob("*.py")):
            imported_modules(path, root)
    return sorted(set(errors))


def test_the_parts_import_only_what_they_may():
    errors = broken_rules(REPO)
    assert not errors, "forbidden imports (DESIGN.md, Layout):\n" + "\n".join(errors)


def _fake_tree(root: Path, files: dict[str, str]) -> Path:
    for rel, text in {"translate/__init__.py": "", "translate/nets/__init__.py": "",
                      "translate/training/__init__.py": "", "translate/training/objective.py": "",
                      "translate/visualize/__init__.py": "", "datasets/__init__.py": "",
                      "options/__init__.py": "", **files}.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


@pytest.mark.parametrize("rel,source,line,module", [
    ("translate/nets/layers.py", "import torch\nfrom options.config import NetworkConfig\n", 2, "options.config"),
    ("translate/nets/deep/unet.py", "def f():\n    from ...training import losses\n", 2, "translate.training"),
    ("translate/nets/spectral.py", "import accelerate.utils\n", 1, "accelerate.utils"),
    ("translate/training/objective.py", "\n\nfrom .trainer import Trainer\n", 3, "translate.training.trainer"),
    ("translate/training/objective.py", "from translate.training import trainer\n", 1, "translate.training.trainer"),
    ("translate/nets/unet.py", "from translate._checkout import import_from_checkout\n\n"
                               "flags = import_from_checkout('options')\n", 3, "options"),
    ("datasets/paired.py", "import os\nfrom translate.nets.layers import norm_layer\n", 2, "translate.nets.layers"),
    ("translate/visualize/html.py", "import translate.training.trainer as t\n", 1, "translate.training.trainer"),
])
def test_a_forbidden_import_is_reported_with_file_and_line(tmp_path, rel, source, line, module):
    root = _fake_tree(tmp_path, {rel: source})
    errors = broken_rules(root)
    assert len(errors) == 1 and errors[0].startswith(f"{rel}:{line}: imports {module},"), errors


def test_allowed_imports_pass_in_the_fake_tree(tmp_path):
    root = _fake_tree(tmp_path, {"translate/nets/layers.py": "import torch\nfrom . import spectral\n",
                                 "translate/training/objective.py": "from options.config import LossConfig\n"
                                                                    "from . import losses\n",
                                 "datasets/paired.py": "from translate.files import atomic_write\n"})
    assert broken_rules(root) == []


def test_a_rule_about_a_missing_part_fails(tmp_path):
    root = _fake_tree(tmp_path, {})
    (root / "translate/training/objective.py").unlink()
    assert broken_rules(root) == ["translate/training/objective.py: no such part; update RULES in "
                                  "tests/test_structure.py"]
