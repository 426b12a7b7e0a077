"""scripts/compare_results.py: several runs' test results on one page, side by side."""
from __future__ import annotations

import html.parser
import json
import subprocess
import sys
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "compare_results.py"


def _result_folder(root: Path, names: list[str], colour: tuple[int, int, int], fid: float) -> Path:
    folder = root / "test_latest"
    (folder / "images").mkdir(parents=True)
    for name in names:
        for kind in ("real_A", "fake_B", "real_B"):
            Image.new("RGB", (8, 8), colour).save(folder / "images" / f"{name}_{kind}.png")
    (folder / "metrics.json").write_text(json.dumps({"fake_B": {"against": "real_B", "fid": fid, "n_fake": len(names)}}))
    return folder


class _Images(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.images, self.text = [], []

    def handle_starttag(self, tag, attrs):
        if tag == "img":
            self.images.append(dict(attrs))

    def handle_data(self, data):
        self.text.append(data)


def test_two_runs_side_by_side_with_their_metrics(tmp_path):
    a = _result_folder(tmp_path / "results" / "classic", ["1", "2", "10"], (255, 0, 0), 300.5)
    b = _result_folder(tmp_path / "results" / "vit", ["1", "2", "10", "11"], (0, 0, 255), 280.25)
    out = tmp_path / "compare"
    result = subprocess.run([sys.executable, str(SCRIPT), str(out), f"{a}=unet", f"{b}=vit"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "3 images side by side" in result.stdout   # "11" is in one run only
    page = _Images()
    page.feed((out / "index.html").read_text())
    labels = [img["alt"] for img in page.images]
    assert labels == ["real_A", "unet", "vit", "real_B"] * 3
    # Each picture is linked where it lies (relative to the page), in image order 1, 2, 10.
    shown = [(out / img["src"]).resolve() for img in page.images]
    assert all(p.exists() for p in shown)
    assert shown[1] == (a / "images" / "1_fake_B.png").resolve() and shown[2] == (b / "images" / "1_fake_B.png").resolve()
    assert shown[-3] == (a / "images" / "10_fake_B.png").resolve()
    text = " ".join(page.text)
    assert "unet: fake_B" in text and "300.5" in text and "280.2" in text


def test_a_folder_without_images_is_a_one_line_error(tmp_path):
    result = subprocess.run([sys.executable, str(SCRIPT), str(tmp_path / "out"), str(tmp_path)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0 and "has no images/ folder" in result.stderr
    assert "Traceback" not in result.stderr
