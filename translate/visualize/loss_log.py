"""The run's loss log, in the classic text form and as JSON lines.

``loss_log.txt`` keeps the classic format that people grep and that old
plotting scripts parse::

    ================ Training Loss (Tue Mar  4 10:00:00 2025) ================
    (epoch: 3, iters: 400, time: 0.123, data: 0.004) G_A: 0.512 D_A: 0.250

``loss_log.jsonl`` holds the same facts as one JSON object per line (numbers
that are not finite are written as null), for tools.
"""
from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any


def _finite_or_none(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def format_loss_line(epoch: int, iters: int, losses: dict[str, float], t_comp: float, t_data: float) -> str:
    """The classic one-line summary of a logging step."""
    head = f"(epoch: {int(epoch)}, iters: {int(iters)}, time: {t_comp:.3f}, data: {t_data:.3f})"
    terms = " ".join(f"{name}: {float(value):.3f}" for name, value in losses.items())
    return f"{head} {terms}" if terms else head


class LossLog:
    """Appends to ``run_dir/loss_log.txt`` and ``run_dir/loss_log.jsonl``."""

    def __init__(self, run_dir: str | Path):
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.txt_path = self.run_dir / "loss_log.txt"
        self.jsonl_path = self.run_dir / "loss_log.jsonl"
        stamp = time.strftime("%c")
        with open(self.txt_path, "a", encoding="utf-8") as log:
            log.write(f"================ Training Loss ({stamp}) ================\n")

    def write(
        self,
        epoch: int,
        iters: int,
        losses: dict[str, float],
        t_comp: float,
        t_data: float,
        extra: dict[str, Any] | None = None,
    ) -> str:
        """Append one step to both logs and return the text line."""
        losses = {str(k): float(v) for k, v in losses.items()}
        line = format_loss_line(epoch, iters, losses, t_comp, t_data)
        with open(self.txt_path, "a", encoding="utf-8") as log:
            log.write(line + "\n")
        record: dict[str, Any] = {
            "time": round(time.time(), 3),
            "epoch": int(epoch),
            "iters": int(iters),
            "losses": {k: _finite_or_none(v) for k, v in losses.items()},
            "t_comp": _finite_or_none(float(t_comp)),
            "t_data": _finite_or_none(float(t_data)),
        }
        for key, value in (extra or {}).items():
            record.setdefault(str(key), _finite_or_none(value))
        with open(self.jsonl_path, "a", encoding="utf-8") as log:
            log.write(json.dumps(record, allow_nan=False, default=str) + "\n")
        return line


def format_metrics_line(epoch: int, iters: int, metrics: dict[str, float]) -> str:
    terms = " ".join(f"{name}: {float(value):.4g}" for name, value in metrics.items())
    return f"(epoch: {int(epoch)}, total_iters: {int(iters)}) validation {terms}"


def write_metrics(log: LossLog, epoch: int, total_iters: int, metrics: dict[str, float]) -> str:
    """Append one validation result to both logs ({"metrics": ...} records in the JSON lines)."""
    metrics = {str(k): float(v) for k, v in metrics.items()}
    line = format_metrics_line(epoch, total_iters, metrics)
    with open(log.txt_path, "a", encoding="utf-8") as out:
        out.write(line + "\n")
    record = {"time": round(time.time(), 3), "epoch": int(epoch), "total_iters": int(total_iters),
              "metrics": {k: _finite_or_none(v) for k, v in metrics.items()}}
    with open(log.jsonl_path, "a", encoding="utf-8") as out:
        out.write(json.dumps(record, allow_nan=False) + "\n")
    return line


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """Read a JSON-lines file; a last line cut short (a crash mid-write) is skipped."""
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    records = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            if number == len(lines):
                break
            raise ValueError(f"{path}:{number}: not a JSON object") from None
    return records
