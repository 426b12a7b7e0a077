"""The single error type for bad or missing data, and how it crosses worker processes.

Every problem with the files a user points us at (a missing folder, a folder
without images, an image that does not decode, a broken download) becomes a
``DataError`` whose message names the path(s) and says what to change.

DataLoader workers complicate this.  An exception raised inside a worker
reaches the main process with the worker's whole stack trace pasted into its
message (and, in the PyTorch versions we tried, the workers then take seconds
to shut down).  A user who fed us a corrupt JPEG should read which file is bad,
not our call stack.  So inside a worker a dataset returns an ``ItemFailure``
instead of raising; the collate function turns a batch containing one into a
``FailedBatch``; and the main process raises the DataError (see loader.py).
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple


class DataError(ValueError):
    """Bad or missing data; the message names the path(s) and what to do."""


class ItemFailure(NamedTuple):
    """Returned by a dataset's ``__getitem__`` inside a worker instead of raising."""
    message: str


class FailedBatch(dict):
    """What the collate function returns when an item of the batch failed.

    Our loader raises as soon as it sees one.  Reading any key raises the
    DataError as well: Accelerate re-creates DataLoaders keeping the collate
    function but not our loader class, and the trainer's first ``batch["A"]``
    then still stops with the clean message.  (``.items()`` still works, so
    moving the batch between devices does not fail on the way.)
    """

    def __init__(self, message_or_items: str | Mapping) -> None:
        # Accelerate and pin_memory rebuild mappings from their items.
        items = message_or_items if isinstance(message_or_items, Mapping) \
            else {"error": message_or_items}
        super().__init__(items)

    @property
    def message(self) -> str:
        return dict.__getitem__(self, "error")

    def __getitem__(self, key):
        raise DataError(self.message)
