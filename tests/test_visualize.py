"""Pictures, HTML pages, the SVG loss plot, the loss logs and the display facade."""
from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch
from PIL import Image

from options.config import DisplayConfig
from translate.visualize import TrainingDisplay, format_duration
from translate.visualize.html import TrainingPage, write_results_page
from translate.files import write_text as atomic_write_text
from translate.visualize.images import labelled_grid, save_image, tensor_to_image
from translate.visualize.loss_log import LossLog, read_jsonl
from translate.visualize.svgplot import loss_plot_svg, nice_ticks

LOSS_LINE = re.compile(r"^\(epoch: \d+, iters: \d+, time: \d+\.\d{3}, data: \d+\.\d{3}\)( \w+: -?\d+\.\d{3})+$")


def _visuals(size: int = 16) -> dict[str, torch.Tensor]:
    return {
        "real_A": torch.rand(1, 3, size, size) * 2 - 1,
        "fake_B": torch.rand(3, size, size, dtype=torch.bfloat16) * 2 - 1,
        "rec_A": torch.rand(1, 1, size, size) * 2 - 1,
    }


def test_tensor_to_image_range_shapes_and_dtypes():
    t = torch.tensor([-1.0, 0.0, 1.0, 5.0]).view(1, 1, 1, 4)
    image = tensor_to_image(t)
    assert image.shape == (1, 4, 3) and image.dtype == np.uint8
    assert image[0, :, 0].tolist() == [0, 128, 255, 255]   # clipped above 1
    assert (image[..., 0] == image[..., 2]).all()           # gray -> equal RGB channels
    assert tensor_to_image(torch.zeros(3, 5, 7, dtype=torch.bfloat16)).shape == (5, 7, 3)
    assert tensor_to_image(torch.zeros(2, 4, 5, 6)).shape == (5, 6, 3)  # first of the batch
    assert tensor_to_image(torch.full((1, 2, 2), float("nan")))[0, 0, 0] == 0
    with pytest.raises(ValueError):
        tensor_to_image(torch.zeros(5))


def test_save_image_and_text_are_atomic(tmp_path):
    path = save_image(torch.ones(3, 8, 10), tmp_path / "sub" / "white.png")
    with Image.open(path) as img:
        assert img.size == (10, 8) and img.getpixel((0, 0)) == (255, 255, 255)
    save_image(np.zeros((4, 4), dtype=np.uint8), tmp_path / "sub" / "black.jpg")
    atomic_write_text(tmp_path / "page.html", "old")
    atomic_write_text(tmp_path / "page.html", "new ü")
    assert (tmp_path / "page.html").read_text(encoding="utf-8") == "new ü"
    leftovers = [p.name for p in tmp_path.rglob("*") if p.name.endswith(".tmp")]
    assert leftovers == []
    with pytest.raises(ValueError):
        save_image(torch.zeros(3, 4, 4), tmp_path / "x.gif")


def test_labelled_grid_layout():
    pictures = [np.full((10, 20, 3), v, np.uint8) for v in (0, 100, 200)]
    grid = labelled_grid(pictures, ["a", "b", "c"], ncols=2, tile_height=20)
    assert grid.dtype == np.uint8 and grid.ndim == 3
    assert grid.shape[1] > grid.shape[0] > 2 * 20            # two rows of 40x20 tiles
    single_row = labelled_grid(pictures, ["a", "b", "c"], ncols=0)
    assert single_row.shape[1] >= 3 * 20 and single_row.shape[0] < 2 * 10 + 40


def test_svg_plot_one_polyline_per_loss():
    history = [(i / 10, {"G_A": 1 / (i + 1), "D_A": 0.5}) for i in range(20)]
    history.append((2.0, {"G_A": float("nan"), "D_A": 0.4, "idt_A": 0.1}))
    svg = loss_plot_svg(history, title="<b>x</b>")
    assert svg.startswith("<svg") and svg.rstrip().endswith("</svg>")
    assert svg.count("<polyline") == 3
    assert 'data-loss="idt_A"' in svg and "<b>" not in svg
    assert "nan" not in svg.lower().replace("xmlns", "")
    assert "no losses yet" in loss_plot_svg([])
    assert nice_ticks(0.0, 1.0) == [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]


def test_training_page_newest_first_escaped_and_resumable(tmp_path):
    page = TrainingPage(tmp_path / "web", "Experiment name = <run>")
    page.add_visuals(1, 100, _visuals())
    page.add_visuals(2, 250, {"<script>alert(1)</script>": torch.zeros(3, 8, 8)})
    page.update_losses([(0.5, {"G_A": 1.0, "D_A": 0.3}), (1.0, {"G_A": 0.8, "D_A": 0.2})])
    images = sorted(p.name for p in (tmp_path / "web" / "images").iterdir())
    assert "epoch001_iter00000100_real_A.png" in images and len(images) == 4
    text = (tmp_path / "web" / "index.html").read_text(encoding="utf-8")
    assert "<script>" not in text and "&lt;script&gt;" in text and "&lt;run&gt;" in text
    assert text.index("epoch 2, iteration 250") < text.index("epoch 1, iteration 100")
    assert text.count("<polyline") == 2
    for src in re.findall(r'<img[^>]* src="([^"]+)"', text):
        assert (tmp_path / "web" / src).is_file()
    resumed = TrainingPage(tmp_path / "web", "again")
    resumed.add_visuals(3, 300, {"fake_B": torch.zeros(3, 8, 8)})
    text = (tmp_path / "web" / "index.html").read_text(encoding="utf-8")
    assert all(f"epoch {e}," in text for e in (1, 2, 3))


def test_results_pages_paginate_and_escape(tmp_path):
    names = [f"img{i}" for i in range(4)] + ["<script>alert(1)"]
    rows = []
    for name in names:
        save_image(torch.zeros(3, 8, 8), tmp_path / "images" / f"{name}_fake_B.png")
        rows.append((name, [("fake_B", f"images/{name}_fake_B.png")]))
    (tmp_path / "index_9.html").write_text("stale")
    pages = write_results_page(tmp_path, "Results <test>", rows, page_size=2)
    assert [p.name for p in pages] == ["index.html", "index_2.html", "index_3.html"]
    assert not (tmp_path / "index_9.html").exists()
    first, last = (p.read_text(encoding="utf-8") for p in (pages[0], pages[-1]))
    assert 'href="index_2.html"' in first and "prev" not in first
    assert 'href="index_2.html"' in last and "next" not in last and "page 3 of 3" in last
    assert "<script>" not in last and "&lt;script&gt;alert(1)" in last
    assert 'src="images/%3Cscript%3Ealert%281%29_fake_B.png"' in last
    assert len(write_results_page(tmp_path / "one", "r", rows[:1])) == 1


def test_loss_log_formats(tmp_path):
    log = LossLog(tmp_path)
    line = log.write(3, 400, {"G_A": 0.5123, "D_A": 0.25}, 0.1234, 0.0041, {"images_per_s": 12.5})
    assert line == "(epoch: 3, iters: 400, time: 0.123, data: 0.004) G_A: 0.512 D_A: 0.250"
    log.write(3, 500, {"G_A": float("nan")}, 0.1, 0.0, {"time_left_s": None})
    lines = (tmp_path / "loss_log.txt").read_text().splitlines()
    assert re.fullmatch(r"================ Training Loss \(.+\) ================", lines[0])
    assert LOSS_LINE.match(lines[1]) and lines[2].endswith("G_A: nan")
    records = read_jsonl(tmp_path / "loss_log.jsonl")
    assert records[0]["losses"] == {"G_A": 0.5123, "D_A": 0.25} and records[0]["images_per_s"] == 12.5
    assert records[0]["epoch"] == 3 and records[0]["iters"] == 400 and "t_comp" in records[0]
    assert records[1]["losses"]["G_A"] is None
    with open(tmp_path / "loss_log.jsonl", "a") as f:
        f.write('{"epoch": 4, "los')   # a crash mid-write
    assert len(read_jsonl(tmp_path / "loss_log.jsonl")) == 2


def test_training_display_without_visdom_writes_page_and_logs(tmp_path, capsys):
    cfg = DisplayConfig(display_id=0, display_winsize=64)
    display = TrainingDisplay(cfg, tmp_path / "run", "demo", "--name demo\n--lr 0.0002", enabled=True)
    assert display.visdom is None
    display.on_visuals(_visuals(), epoch=1, iteration=1, save_html=True)
    display.on_visuals(_visuals(), epoch=1, iteration=2, save_html=False)
    for i in range(3):
        display.on_losses(1, i * 10, i / 10, {"G_A": 1.0 - i / 10, "D_A": torch.tensor(0.3)},
                          0.01, 0.001, 25.0, 100.0 if i else None)
    display.close()
    run = tmp_path / "run"
    text = (run / "web" / "index.html").read_text(encoding="utf-8")
    assert text.count("<polyline") == 2 and "epoch 1, iteration 1" in text
    assert "iteration 2" not in text
    assert len(list((run / "web" / "images").glob("epoch001_iter00000001_*.png"))) == 3
    assert len(read_jsonl(run / "loss_log.jsonl")) == 3
    assert "(epoch: 1, iters: 20," in capsys.readouterr().out
    assert json.loads((run / "web" / "steps.json").read_text())[0]["iteration"] == 1


def test_restored_history_drops_steps_after_the_checkpoint(tmp_path):
    run = tmp_path / "run"
    first = TrainingDisplay(DisplayConfig(display_id=0), run, "r", "", enabled=True)
    for x in (0.1, 0.2, 0.3):                        # checkpoint at 0.2, crash after 0.3
        first.on_losses(1, 1, x, {"G": x}, 0.0, 0.0, 1.0, None)
    again = TrainingDisplay(DisplayConfig(display_id=0), run, "r", "", enabled=True)
    assert again.restore_history(0.2) == 2 and [x for x, _ in again.history] == [0.1, 0.2]
    for x in (0.3, 0.4):                             # the resumed run repeats 0.3
        again.on_losses(1, 1, x, {"G": 10 * x}, 0.0, 0.0, 1.0, None)
    third = TrainingDisplay(DisplayConfig(display_id=0), run, "r", "", enabled=True)
    assert third.restore_history(0.4) == 4
    assert [(x, v["G"]) for x, v in third.history] == [(0.1, 0.1), (0.2, 0.2), (0.3, 3.0), (0.4, 4.0)]
    assert (run / "web" / "index.html").read_text().count("<polyline") == 1
    fresh = TrainingDisplay(DisplayConfig(display_id=0), tmp_path / "new", "n", "", enabled=True)
    assert fresh.restore_history(5.0) == 0 and fresh.history == []


def test_training_display_disabled_and_no_html(tmp_path):
    off = TrainingDisplay(DisplayConfig(display_id=1), tmp_path / "off", "x", "", enabled=False)
    off.on_visuals(_visuals(), 1, 1, True)
    off.on_losses(1, 1, 0.1, {"G_A": 1.0}, 0.0, 0.0, 1.0, None)
    off.close()
    assert not (tmp_path / "off").exists()
    quiet = TrainingDisplay(DisplayConfig(display_id=0, no_html=True), tmp_path / "q", "x", "", True)
    quiet.on_visuals(_visuals(), 1, 1, True)
    quiet.on_losses(1, 1, 0.1, {"G_A": 1.0}, 0.0, 0.0, 1.0, None)
    assert not (tmp_path / "q" / "web").exists() and (tmp_path / "q" / "loss_log.txt").is_file()


def test_format_duration():
    assert format_duration(3725) == "1:02:05"
    assert format_duration(90000) == "1d 1:00:00"
    assert format_duration(None) == "unknown"
