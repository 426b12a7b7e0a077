"""`datasets` and `options` come from the checkout; a shadowing package is a clear error."""
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _run(code: str, cwd: Path, extra_path: Path | None = None) -> subprocess.CompletedProcess:
    env_path = str(extra_path) if extra_path else ""
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True,
                          env={"PYTHONPATH": env_path, "PATH": "/usr/bin:/bin"}, timeout=120)


@pytest.mark.slow
def test_imports_the_checkouts_datasets_from_any_directory(tmp_path):
    code = ("from translate._checkout import import_from_checkout\n"
            "m = import_from_checkout('datasets'); print(m.__file__)")
    result = _run(code, tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(ROOT / "datasets" / "__init__.py")


def test_a_shadowing_datasets_package_is_reported(tmp_path):
    fake = tmp_path / "site" / "datasets"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("NAME = 'huggingface-like'\n")
    code = ("import datasets\n"  # someone imported the other package first
            "from translate._checkout import import_from_checkout\n"
            "import_from_checkout('datasets')")
    result = _run(code, tmp_path, extra_path=tmp_path / "site")
    assert result.returncode != 0
    assert "shadows it" in result.stderr and "Hugging Face" in result.stderr
