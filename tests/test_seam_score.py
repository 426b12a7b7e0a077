"""scripts/seam_score.py: steps at a patch grid raise the score, content unrelated to the grid does not."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "seam_score.py"
sys.path.insert(0, str(ROOT / "scripts"))

from seam_score import seam_score  # noqa: E402


def _results(folder: Path, images: list[np.ndarray], kind: str = "fake_B") -> Path:
    (folder / "images").mkdir(parents=True)
    for i, grey in enumerate(images):
        Image.fromarray(np.repeat(grey[..., None], 3, axis=2).astype(np.uint8)).save(
            folder / "images" / f"{i}_{kind}.png")
    return folder


def _smooth(seed: int, size: int = 64) -> np.ndarray:
    """Noise with no relation to any grid."""
    return np.random.default_rng(seed).integers(100, 121, (size, size)).astype(np.float64)


def _with_seams(image: np.ndarray, period: int, step: float = 20.0) -> np.ndarray:
    """The image plus a constant offset per P x P patch (a checkerboard of +-step/2): every grid line steps."""
    rows, cols = np.indices(image.shape) // period
    return image + np.where((rows + cols) % 2 == 0, step / 2, -step / 2)


def test_noise_scores_about_one_and_patch_offsets_raise_it_at_their_period_only(tmp_path):
    plain = [_smooth(seed) for seed in range(4)]
    assert seam_score(_results(tmp_path / "plain", plain), 8)[0] == pytest.approx(1.0, abs=0.05)
    seamed = _results(tmp_path / "seamed", [_with_seams(image, 8) for image in plain])
    score, n = seam_score(seamed, 8)
    assert n == 4 and score > 2
    assert seam_score(seamed, 7)[0] < 1.1                     # another period misses the grid lines


def test_a_flat_image_with_one_step_on_the_grid_counts_it_exactly(tmp_path):
    # A flat 16 x 16 image whose right half is 40 grey levels brighter: the only nonzero
    # difference lies on the grid line at column 8, so everything else averages 0.
    image = np.full((16, 16), 100.0)
    image[:, 8:] += 40
    image[5, 3] += 10                                          # one off-grid bump: 2 differences of 10
    folder = _results(tmp_path / "r", [image])
    on_grid = 40 * 16 / (16 * 1 + 16 * 1)                    # column line 8 and row line 8, 16 pixels each
    off_grid = 10 * 4 / (2 * 16 * 15 - 32)                   # the bump's four differences over the other 448
    assert seam_score(folder, 8)[0] == pytest.approx(on_grid / off_grid)
    image[5, 3] -= 10                                          # only the step on the grid is left
    assert seam_score(_results(tmp_path / "blocks", [image]), 8)[0] == float("inf")


def test_the_command_line_prints_each_folder_and_bad_input_is_one_line(tmp_path):
    run = _results(tmp_path / "run", [_with_seams(_smooth(0), 8)])
    _results(tmp_path / "run2", [_smooth(1)], kind="fake_A")
    done = subprocess.run([sys.executable, str(SCRIPT), "8", str(run)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"{run}: fake_B at period 8: ") and "(1 images)" in done.stdout
    missing = subprocess.run([sys.executable, str(SCRIPT), "8", str(tmp_path / "run2")], capture_output=True,
                             text=True)
    assert missing.returncode != 0 and "no *_fake_B.png" in missing.stderr and "Traceback" not in missing.stderr
    tiny = subprocess.run([sys.executable, str(SCRIPT), "1", str(run)], capture_output=True, text=True)
    assert tiny.returncode != 0 and "period" in tiny.stderr and "Traceback" not in tiny.stderr
    (run / "images" / "9_fake_B.png").write_bytes(b"not a png")
    broken = subprocess.run([sys.executable, str(SCRIPT), "8", str(run)], capture_output=True, text=True)
    assert broken.returncode != 0 and "9_fake_B.png" in broken.stderr and "Traceback" not in broken.stderr
