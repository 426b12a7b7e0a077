"""Read back what an offline W&B run wrote to its ``run-ID.wandb`` file, for the tests.

The file is W&B's transaction log: a 7-byte header (``:W&B``, a magic number, a version)
and then LevelDB's log format: 32 KiB blocks of chunks, each with a 7-byte header
(CRC32C, little-endian length, type: 1 full, 2 first, 3 middle, 4 last); a block's tail
shorter than a header is padding.  Each whole record is a ``wandb.proto`` ``Record``
message, parsed with wandb's own protobuf classes.  (wandb >= 0.2x no longer ships a
Python reader: its Go core writes and reads these files.)
"""
from __future__ import annotations

import json
import struct
import time
from pathlib import Path
from typing import Any

BLOCK = 32 * 1024
FILE_HEADER = 7
CHUNK_HEADER = 7
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


def read_records(path: str | Path) -> list:
    """Every Record in a .wandb file, in order."""
    from wandb.proto import wandb_internal_pb2 as pb

    data = Path(path).read_bytes()
    if data[:4] != b":W&B":
        raise ValueError(f"{path}: not a W&B transaction log")
    records, pending, offset = [], b"", FILE_HEADER
    while offset + CHUNK_HEADER <= len(data):
        left_in_block = BLOCK - offset % BLOCK
        if left_in_block < CHUNK_HEADER:          # padding at the end of a block
            offset += left_in_block
            continue
        _crc, length, kind = struct.unpack_from("<IHB", data, offset)
        offset += CHUNK_HEADER
        if offset + length > len(data):           # a chunk still being written
            break
        chunk, offset = data[offset:offset + length], offset + length
        if kind == 0 and length == 0:             # zero fill: nothing more in this block
            offset += BLOCK - offset % BLOCK if offset % BLOCK else 0
            continue
        pending = chunk if kind in (FULL, FIRST) else pending + chunk
        if kind in (FULL, LAST):
            record = pb.Record()
            record.ParseFromString(pending)
            records.append(record)
            pending = b""
    return records


def read_finished_run(run_folder: str | Path, timeout_s: float = 60.0) -> list:
    """The records of an offline run once its last one, ``exit``, is on disk.

    Why wait: CI once read a finished run's file and found no run record in it (not seen here,
    also not under load); ``run.finish()`` returns when W&B's core has taken the exit record,
    and the core, a separate process, may write its log a moment later.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        files = sorted(Path(run_folder).glob("run-*.wandb"))
        records = read_records(files[0]) if files else []
        if records and records[-1].WhichOneof("record_type") == "exit":
            return records
        if time.monotonic() > deadline:
            kinds = [r.WhichOneof("record_type") for r in records]
            raise AssertionError(f"{run_folder}: no exit record after {timeout_s} s; records: {kinds}")
        time.sleep(0.2)


def _item_value(item) -> Any:
    kind = item.WhichOneof("value") if "value" in item.DESCRIPTOR.oneofs_by_name else None
    if kind in ("number", "integer", "boolean", "text"):
        return getattr(item, kind)
    if kind == "none":
        return None
    return json.loads(item.json if kind == "json" else item.value_json)


def _item_key(item) -> str:
    return item.key or "/".join(item.nested_key)


def history(records) -> dict[int, dict[str, Any]]:
    """Logged rows by step (rows logged at the same step are merged, as W&B shows them)."""
    rows: dict[int, dict[str, Any]] = {}
    for record in records:
        if record.WhichOneof("record_type") != "history":
            continue
        row = {_item_key(i): _item_value(i) for i in record.history.item}
        step = row.get("_step", record.history.step.num)
        rows.setdefault(int(step), {}).update(row)
    return rows


def run_info(records) -> tuple[Any, dict[str, Any]]:
    """The RunRecord and the run's config (``{key: value}``, later updates win)."""
    run, config = None, {}
    for record in records:
        kind = record.WhichOneof("record_type")
        updates = []
        if kind == "run":
            run = record.run
            updates = record.run.config.update
        elif kind == "config":
            updates = record.config.update
        for item in updates:
            config[_item_key(item)] = json.loads(item.value_json)
    return run, config
