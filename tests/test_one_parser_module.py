"""Only options/ builds command-line parsers (DESIGN.md, "Options become typed configs").

The test reads the source (it imports nothing): a call that makes a parser
(``argparse.ArgumentParser(...)``, ``FlagParser(...)``, ``quiet_parser(...)``,
``subparsers.add_parser(...)``) anywhere outside options/ fails it, naming the file
and the line.  The entry points call options/commands.py's builders instead.
"""
from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SCANNED = ("translate", "datasets", "options", "scripts", "train.py", "test.py")
MAKERS = {"ArgumentParser", "FlagParser", "quiet_parser", "add_parser"}
# file -> why it may build its own parser
ALLOWED = {
    "translate/visualize/viewer.py": "the Visdom server keeps torch out of its process (it starts seconds "
                                     "sooner); importing options/ would import torch and the networks",
}


def _maker(func: ast.expr) -> str | None:
    name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None
    return name if name in MAKERS else None


def parser_constructions(root: Path) -> list[str]:
    """'file:line: Maker(...)' for every parser made outside options/ below ``root``."""
    found = []
    for entry in SCANNED:
        base = root / entry
        for path in sorted([base] if base.is_file() else base.rglob("*.py")):
            relative = path.relative_to(root).as_posix()
            if relative.startswith("options/") or relative in ALLOWED:
                continue
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
            for node in ast.walk(tree):
                if isinstance(node, ast.Call) and _maker(node.func):
                    found.append(f"{relative}:{node.lineno}: {_maker(node.func)}(...)")
    return found


def test_only_options_builds_parsers():
    found = parser_constructions(REPO)
    assert not found, ("parsers are built only in options/ (options/commands.py has one builder per "
                       "command; the run flags are options/run_flags.py's):\n" + "\n".join(found))


def test_the_check_finds_a_parser_and_names_its_file_and_line(tmp_path):
    (tmp_path / "translate").mkdir()
    (tmp_path / "translate" / "tool.py").write_text(
        "import argparse\n\n\ndef main():\n    p = argparse.ArgumentParser()\n    return p\n")
    (tmp_path / "scripts").mkdir()
    (tmp_path / "scripts" / "job.py").write_text("from options.ranges import quiet_parser\np = quiet_parser()\n")
    (tmp_path / "options").mkdir()
    (tmp_path / "options" / "commands.py").write_text("import argparse\nargparse.ArgumentParser()\n")
    assert parser_constructions(tmp_path) == ["translate/tool.py:5: ArgumentParser(...)",
                                              "scripts/job.py:2: quiet_parser(...)"]


def test_the_exemptions_still_build_parsers():
    """An exemption whose file no longer builds a parser is stale: drop it."""
    for relative in ALLOWED:
        tree = ast.parse((REPO / relative).read_text(encoding="utf-8"))
        assert any(isinstance(n, ast.Call) and _maker(n.func) for n in ast.walk(tree)), relative
