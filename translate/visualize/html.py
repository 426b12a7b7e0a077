"""Static HTML pages: the training page of a run and the result pages of test.py.

Pages are built with dominate, which escapes every text node and attribute;
image addresses are also percent-encoded, so a label or file name such as
``<script>`` shows as text and its picture still loads.  Pages are written
atomically (translate/files.py).
"""
from __future__ import annotations

import json
import re
from pathlib import Path, PurePath
from typing import Sequence
from urllib.parse import quote

import dominate
import torch
from dominate import tags
from dominate.util import raw

from translate import files

from .images import save_image
from .svgplot import History, loss_plot_svg

_STYLE = """
body { font-family: sans-serif; margin: 1em 2em; color: #222; }
table.visuals td { vertical-align: top; text-align: center; padding: 4px; }
table.visuals img { image-rendering: auto; border: 1px solid #ccc; }
p.label { margin: 2px 0 8px 0; font-size: 13px; word-break: break-all; }
nav.pager { margin: 1em 0; } nav.pager a, nav.pager span { margin-right: 1em; }
"""

_MANIFEST = "steps.json"


def image_url(relative_path: str | PurePath) -> str:
    """Percent-encode a relative file path for use in src/href (keeps the slashes)."""
    return quote(PurePath(relative_path).as_posix(), safe="/")


def safe_label(label: str) -> str:
    """A file-name-safe version of a label (the page still shows the label itself)."""
    cleaned = re.sub(r"[^A-Za-z0-9_.-]+", "_", str(label)).strip("._")
    return cleaned or "image"


def _new_document(title: str, refresh_s: int | None = None) -> dominate.document:
    doc = dominate.document(title=title)
    with doc.head:
        tags.meta(charset="utf-8")
        if refresh_s:
            tags.meta(http_equiv="refresh", content=str(int(refresh_s)))
        tags.style(_STYLE)
    return doc


def _image_table(cells: Sequence[tuple[str, str]], width: int, per_row: int = 0) -> tags.table:
    """One table of (label, relative path) pictures, each a link to the full-size file."""
    table = tags.table(cls="visuals")
    per_row = per_row if per_row > 0 else max(1, len(cells))
    for start in range(0, len(cells), per_row):
        row = table.add(tags.tr())
        for label, path in cells[start:start + per_row]:
            url = image_url(path)
            with row.add(tags.td()):
                with tags.a(href=url):
                    tags.img(src=url, alt=str(label), width=str(width))
                tags.p(str(label), cls="label")
    return table


class TrainingPage:
    """``web_dir/index.html``: the loss plot and every saved step's pictures, newest first.

    The list of saved steps is kept in ``web_dir/steps.json`` so that a resumed
    run keeps showing the pictures of the earlier one.
    """

    def __init__(self, web_dir: str | Path, title: str, winsize: int = 256, refresh_s: int | None = None):
        self.web_dir = Path(web_dir)
        self.image_dir = self.web_dir / "images"
        self.image_dir.mkdir(parents=True, exist_ok=True)
        self.title = title
        self.winsize = winsize
        self.refresh_s = refresh_s
        self.index_path = self.web_dir / "index.html"
        self._history: list[tuple[float, dict[str, float]]] = []
        self._metrics: list[tuple[float, dict[str, float]]] = []   # (iteration, validation metrics)
        self._steps = self._load_manifest()

    def _load_manifest(self) -> list[dict]:
        try:
            steps = json.loads((self.web_dir / _MANIFEST).read_text(encoding="utf-8"))
            return [s for s in steps if isinstance(s, dict) and "images" in s]
        except (OSError, ValueError):
            return []

    def add_visuals(self, epoch: int, iteration: int, visuals: dict[str, torch.Tensor]) -> list[Path]:
        """Save ``visuals`` as images/epochEEE_iterIIIIIIII_<label>.png and re-render."""
        saved, cells, used = [], [], set()
        for label, tensor in visuals.items():
            stem = safe_label(label)
            while stem in used:  # two labels that clean to the same file name
                stem += "_"
            used.add(stem)
            name = f"epoch{int(epoch):03d}_iter{int(iteration):08d}_{stem}.png"
            saved.append(save_image(tensor, self.image_dir / name))
            cells.append([str(label), f"images/{name}"])
        self._steps = [s for s in self._steps if (s["epoch"], s["iteration"]) != (epoch, iteration)]
        self._steps.append({"epoch": int(epoch), "iteration": int(iteration), "images": cells})
        files.write_text(self.web_dir / _MANIFEST, json.dumps(self._steps, indent=1))
        self.render()
        return saved

    def update_losses(self, history: History) -> None:
        """Replace the plotted history ([(fractional epoch, {name: value})]) and re-render."""
        self._history = [(float(x), dict(losses)) for x, losses in history]
        self.render()

    def update_metrics(self, history: History) -> None:
        """Replace the validation history ([(iteration, {metric: value})]) and re-render."""
        self._metrics = [(float(x), dict(values)) for x, values in history]
        self.render()

    def render(self) -> Path:
        doc = _new_document(self.title, self.refresh_s)
        with doc:
            tags.h1(self.title)
            tags.h2("Losses")
            tags.div(raw(loss_plot_svg(self._history)), cls="plot")
            if self._metrics:
                tags.h2("Validation metrics")
                names = list(dict.fromkeys(n for _, values in self._metrics for n in values))
                for name in names:   # one plot each: their scales differ (PSNR ~20, KID ~0.01)
                    series = [(x, {name: v[name]}) for x, v in self._metrics if name in v]
                    tags.div(raw(loss_plot_svg(series, title=name, x_label="iteration", y_label=name,
                                               height=220)), cls="plot metric-plot")
            tags.h2("Images")
            if not self._steps:
                tags.p("No images saved yet.")
            ordered = sorted(self._steps, key=lambda s: (s["epoch"], s["iteration"]), reverse=True)
            for step in ordered:
                tags.h3(f"epoch {step['epoch']}, iteration {step['iteration']}")
                _image_table([tuple(c) for c in step["images"]], self.winsize)
        return files.write_text(self.index_path, doc.render())


def _page_name(number: int) -> str:
    return "index.html" if number == 1 else f"index_{number}.html"


def _pager(number: int, count: int) -> tags.nav:
    nav = tags.nav(cls="pager")
    if number > 1:
        nav.add(tags.a("first", href=_page_name(1), cls="first"))
        nav.add(tags.a("prev", href=_page_name(number - 1), cls="prev"))
    nav.add(tags.span(f"page {number} of {count}"))
    if number < count:
        nav.add(tags.a("next", href=_page_name(number + 1), cls="next"))
        nav.add(tags.a("last", href=_page_name(count), cls="last"))
    return nav


def _metrics_table(metrics: dict) -> tags.table:
    """test.py --metrics: one row per translation, one column per number."""
    columns = [c for c in ("fid", "kid_x1000", "l1", "psnr", "ssim", "n_fake", "n_real", "n_pairs")
               if any(c in m for m in metrics.values())]
    heads = {"fid": "FID", "kid_x1000": "KID x 1000", "l1": "L1", "psnr": "PSNR (dB)", "ssim": "SSIM",
             "n_fake": "images", "n_real": "real images", "n_pairs": "pairs"}
    table = tags.table(cls="metrics", border="1", style="border-collapse: collapse; margin-bottom: 1em")
    header = table.add(tags.tr())
    header.add(tags.th("translation"), tags.th("against"))
    for c in columns:
        header.add(tags.th(heads[c]))
    for label, values in metrics.items():
        row = table.add(tags.tr())
        row.add(tags.td(str(label)), tags.td(str(values.get("against", ""))))
        for c in columns:
            v = values.get(c)
            row.add(tags.td("" if v is None else (f"{v:.4g}" if isinstance(v, float) else str(v))))
    return table


def write_results_page(
    out_dir: str | Path,
    title: str,
    rows: Sequence[tuple[str, Sequence[tuple[str, str]]]],
    page_size: int = 100,
    width: int = 256,
    metrics: dict | None = None,
) -> list[Path]:
    """Write ``index.html`` (and ``index_2.html`` ... when rows exceed ``page_size``).

    ``rows`` is ``[(name, [(label, image path relative to out_dir), ...]), ...]``;
    ``metrics`` (test.py --metrics: {translation label: {metric: value}}) is shown on the first page.
    Returns the written pages in order.
    """
    if page_size < 1:
        raise ValueError("page_size must be at least 1")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    count = max(1, (len(rows) + page_size - 1) // page_size)
    written = []
    for number in range(1, count + 1):
        chunk = rows[(number - 1) * page_size:number * page_size]
        doc = _new_document(title if count == 1 else f"{title} ({number}/{count})")
        with doc:
            tags.h1(title)
            if metrics and number == 1:
                tags.h2("Metrics")
                _metrics_table(metrics)
                for note in dict.fromkeys(n for m in metrics.values() for n in m.get("notes", [])):
                    tags.p(f"note: {note}", cls="note")
            if count > 1:
                _pager(number, count)
            if not chunk:
                tags.p("No results.")
            for name, cells in chunk:
                tags.h3(str(name))
                _image_table([(str(label), path) for label, path in cells], width)
            if count > 1:
                _pager(number, count)
        written.append(files.write_text(out_dir / _page_name(number), doc.render()))
    for stale in out_dir.glob("index_*.html"):  # pages left from an earlier, longer run
        match = re.fullmatch(r"index_(\d+)\.html", stale.name)
        if match and int(match.group(1)) > count:
            stale.unlink()
    return written
