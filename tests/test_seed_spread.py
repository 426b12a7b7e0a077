"""scripts/seed_spread.py: the runs' L1, their spread, and the L1 of their mean output."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "seed_spread.py"
sys.path.insert(0, str(ROOT / "scripts"))

from seed_spread import spread  # noqa: E402


def _run(folder: Path, fake_grey: int, names=("1", "2")) -> Path:
    (folder / "images").mkdir(parents=True)
    for name in names:
        Image.new("RGB", (4, 4), (fake_grey,) * 3).save(folder / "images" / f"{name}_fake_B.png")
        Image.new("RGB", (4, 4), (100,) * 3).save(folder / "images" / f"{name}_real_B.png")
    return folder


def test_seeds_scattered_around_the_target_average_to_it(tmp_path):
    # 80 and 120 around a target of 100: each run is 20/255 off, their mean is exact.
    result = spread([_run(tmp_path / "a", 80), _run(tmp_path / "b", 120, names=("1", "2", "3"))])
    assert result["images"] == 2                       # "3" is in one run only
    assert result["runs"] == pytest.approx([20 / 255, 20 / 255])
    assert result["between_runs"] == pytest.approx(40 / 255)
    assert result["of_the_mean"] == pytest.approx(0.0, abs=1e-7)


def test_seeds_with_the_same_bias_gain_nothing_from_their_mean(tmp_path):
    result = spread([_run(tmp_path / "a", 80), _run(tmp_path / "b", 80), _run(tmp_path / "c", 80)])
    assert result["between_runs"] == pytest.approx(0.0)
    assert result["of_the_mean"] == pytest.approx(20 / 255)


def test_command_line_prints_and_refuses_one_folder(tmp_path):
    a, b = _run(tmp_path / "a", 80), _run(tmp_path / "b", 120)
    done = subprocess.run([sys.executable, str(SCRIPT), str(a), str(b)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "L1 of their mean: 0.0000" in done.stdout and "0.0784, 0.0784" in done.stdout
    one = subprocess.run([sys.executable, str(SCRIPT), str(a)], capture_output=True, text=True, timeout=60)
    assert one.returncode != 0 and "two or more" in one.stderr


def test_an_unreadable_image_is_a_one_line_error(tmp_path):
    a, b = _run(tmp_path / "a", 80), _run(tmp_path / "b", 120)
    (b / "images" / "2_fake_B.png").write_bytes(b"not a png")
    done = subprocess.run([sys.executable, str(SCRIPT), str(a), str(b)], capture_output=True, text=True, timeout=60)
    assert done.returncode != 0 and "2_fake_B.png" in done.stderr and "Traceback" not in done.stderr
