"""A loss plot drawn as inline SVG, so the HTML pages need no plotting library.

``loss_plot_svg(history)`` takes ``[(fractional_epoch, {loss_name: value}), ...]``
and returns one ``<svg>`` element: axes with round-number ticks, one
``<polyline class="loss">`` per loss name (in first-seen order) and a legend.
Non-finite values are left out; long histories are thinned to ``max_points``.
"""
from __future__ import annotations

import math
from html import escape
from typing import Iterable, Sequence

# Ten well-separated colours (the usual categorical palette of plotting tools).
PALETTE = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
    "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
)

History = Sequence[tuple[float, dict[str, float]]]


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick positions (steps of 1, 2 or 5 times a power of ten) covering [low, high]."""
    span = high - low
    if not math.isfinite(span) or span <= 0:
        return [low]
    raw = span / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    first = math.ceil(low / step - 1e-9) * step
    ticks, value = [], first
    while value <= high + step * 1e-9:
        ticks.append(round(value, 12))
        value += step
    return ticks


def _thin(indices: list[int], max_points: int) -> list[int]:
    if len(indices) <= max_points:
        return indices
    stride = len(indices) / (max_points - 1)
    picked = [indices[int(i * stride)] for i in range(max_points - 1)]
    return picked + [indices[-1]]


def _series(history: History) -> dict[str, list[tuple[float, float]]]:
    series: dict[str, list[tuple[float, float]]] = {}
    for x, losses in history:
        for name, value in losses.items():
            points = series.setdefault(str(name), [])
            value = float(value)
            if math.isfinite(float(x)) and math.isfinite(value):
                points.append((float(x), value))
    return series


def _range(values: Iterable[float], pad_fraction: float) -> tuple[float, float]:
    values = list(values)
    low, high = min(values), max(values)
    if high - low < 1e-12:
        half = max(abs(low) * 0.1, 0.5)
        return low - half, high + half
    pad = (high - low) * pad_fraction
    return low - pad, high + pad


def loss_plot_svg(
    history: History,
    width: int = 720,
    height: int = 320,
    title: str = "Training losses",
    max_points: int = 1000,
    x_label: str = "epoch",
    y_label: str = "loss",
) -> str:
    """Return an ``<svg>`` string plotting every loss of ``history`` against the epoch."""
    series = _series(history)
    left, right, top, bottom = 56, 150, 28, 42
    plot_w, plot_h = width - left - right, height - top - bottom
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="loss-plot" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{escape(title)}" font-family="sans-serif" font-size="11">',
        f'<rect x="0" y="0" width="{width}" height="{height}" fill="#ffffff"/>',
        f'<text x="{left}" y="18" font-size="13" font-weight="bold">{escape(title)}</text>',
    ]
    points = [p for pts in series.values() for p in pts]
    if not points:
        out.append(f'<text x="{left + 10}" y="{top + plot_h // 2}" fill="#777">no losses yet</text>')
        out.append("</svg>")
        return "\n".join(out)

    x_low, x_high = _range((p[0] for p in points), 0.0)
    y_low, y_high = _range((p[1] for p in points), 0.05)

    def sx(x: float) -> float:
        return left + (x - x_low) / (x_high - x_low) * plot_w

    def sy(y: float) -> float:
        return top + plot_h - (y - y_low) / (y_high - y_low) * plot_h

    out.append(f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" '
               'fill="none" stroke="#444"/>')
    for y in nice_ticks(y_low, y_high):
        py = sy(y)
        out.append(f'<line x1="{left}" y1="{py:.1f}" x2="{left + plot_w}" y2="{py:.1f}" stroke="#e4e4e4"/>')
        out.append(f'<text x="{left - 6}" y="{py + 4:.1f}" text-anchor="end">{y:g}</text>')
    for x in nice_ticks(x_low, x_high):
        px = sx(x)
        out.append(f'<line x1="{px:.1f}" y1="{top + plot_h}" x2="{px:.1f}" y2="{top + plot_h + 5}" stroke="#444"/>')
        out.append(f'<text x="{px:.1f}" y="{top + plot_h + 18}" text-anchor="middle">{x:g}</text>')
    out.append(f'<text x="{left + plot_w / 2:.1f}" y="{height - 6}" text-anchor="middle">{escape(x_label)}</text>')
    out.append(f'<text x="14" y="{top + plot_h / 2:.1f}" text-anchor="middle" '
               f'transform="rotate(-90 14 {top + plot_h / 2:.1f})">{escape(y_label)}</text>')

    for index, (name, pts) in enumerate(series.items()):
        colour = PALETTE[index % len(PALETTE)]
        keep = _thin(list(range(len(pts))), max_points)
        coords = " ".join(f"{sx(pts[i][0]):.1f},{sy(pts[i][1]):.1f}" for i in keep)
        out.append(f'<polyline class="loss" data-loss="{escape(name)}" fill="none" '
                   f'stroke="{colour}" stroke-width="1.5" points="{coords}"/>')
        if len(pts) == 1:  # a single point draws no line: mark it
            out.append(f'<circle cx="{sx(pts[0][0]):.1f}" cy="{sy(pts[0][1]):.1f}" r="3" fill="{colour}"/>')
        ly = top + 10 + index * 16
        lx = left + plot_w + 12
        out.append(f'<rect x="{lx}" y="{ly - 8}" width="14" height="4" fill="{colour}"/>')
        out.append(f'<text x="{lx + 20}" y="{ly - 2}">{escape(name)}</text>')
    out.append("</svg>")
    return "\n".join(out)
