"""Process helpers for tests that send real signals to real process trees (Linux /proc)."""
from __future__ import annotations

from pathlib import Path


def children(pid: int) -> list[int]:
    """PIDs of the direct children of ``pid`` (from /proc/*/stat's parent field)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found
