"""DataLoader construction with the classic settings and clean data errors.

See errors.py for why a failing item travels as a value (ItemFailure ->
FailedBatch) rather than as an exception out of a worker process.
"""
from __future__ import annotations

import atexit
import multiprocessing
import signal
import time

import torch
from torch.utils.data import DataLoader, Dataset, default_collate

from .errors import DataError, FailedBatch, ItemFailure


def collate(items: list):
    """default_collate, except that a batch with a failed item becomes a FailedBatch."""
    for item in items:
        if isinstance(item, ItemFailure):
            return FailedBatch(item.message)
    return default_collate(items)


def ignore_stop_signals(_worker_id: int | None = None) -> None:
    """worker_init_fn: workers ignore SIGINT and SIGTERM; the main process stops them.

    A terminal's Ctrl-C (and SLURM's or ``timeout``'s SIGTERM) reaches the whole
    process group.  Workers that died of it would make the main process fail with
    "DataLoader worker exited unexpectedly" before it could save; ignoring it lets
    the main process finish its step, save, and shut the workers down itself.
    """
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)


def _chain_worker_init(worker_init_fn):
    """ignore_stop_signals, then the caller's own worker_init_fn (if any)."""
    if worker_init_fn is None:
        return ignore_stop_signals
    return _ChainedInit(worker_init_fn)


class _ChainedInit:  # a class, not a closure: picklable for spawned workers
    def __init__(self, then):
        self.then = then

    def __call__(self, worker_id: int) -> None:
        ignore_stop_signals(worker_id)
        self.then(worker_id)


@atexit.register
def _shutdown_live_workers() -> None:
    """Stop every DataLoader's workers still alive at interpreter exit.

    Workers ignore SIGTERM, so multiprocessing's own exit hook (terminate, then join every
    daemonic child) would wait for them forever.  This hook is registered after
    multiprocessing's (torch imports it first) and so runs before it, and stops them the polite
    way (the end-of-data sentinel through their queues).  The iterators are found by a scan of
    the heap rather than a registry: a loader that Accelerate or a user rebuilt from ours keeps
    our worker_init_fn but iterates with its own code, so we never see its iterator.
    """
    import gc

    from torch.utils.data.dataloader import _MultiProcessingDataLoaderIter
    for obj in gc.get_objects():
        # type(), not isinstance(): isinstance reads __class__, which some lazy module proxies
        # answer with a deprecation warning.
        if issubclass(type(obj), _MultiProcessingDataLoaderIter):
            obj._shutdown_workers()
    # Workers can outlive their iterator: one freed by the cycle collector stops them through
    # queues that may be finalized already (seen with Accelerate's loader after a DataError).
    # They still ignore SIGTERM: terminate what is left, and kill what ignores it.
    leftovers = [p for p in multiprocessing.active_children() if p.daemon]
    for process in leftovers:
        process.terminate()
    deadline = time.monotonic() + 0.5
    for process in leftovers:
        process.join(max(0.0, deadline - time.monotonic()))
        if process.is_alive():
            process.kill()


class CheckedDataLoader(DataLoader):
    """A DataLoader that raises DataError in the main process for a FailedBatch.

    Its workers ignore SIGINT/SIGTERM (see ignore_stop_signals).
    """

    def __init__(self, *args, worker_init_fn=None, **kwargs):
        super().__init__(*args, worker_init_fn=_chain_worker_init(worker_init_fn), **kwargs)

    def shutdown_workers(self) -> None:
        """Stop persistent workers now (a stopped run exits without waiting for the garbage collector)."""
        iterator = getattr(self, "_iterator", None)
        shutdown = getattr(iterator, "_shutdown_workers", None)
        if shutdown is not None:
            shutdown()
        self._iterator = None

    def __iter__(self):
        iterator = super().__iter__()
        for batch in iterator:
            if isinstance(batch, FailedBatch):
                # Stop the workers now: left to the garbage collector, their
                # shutdown can stall for seconds per worker.
                shutdown = getattr(iterator, "_shutdown_workers", None)
                if shutdown is not None:
                    shutdown()
                    self._iterator = None   # a persistent iterator is not reusable now
                raise DataError(batch.message)
            yield batch


def build_dataloader(dataset: Dataset, cfg, *, is_train: bool, sampler=None) -> DataLoader:
    """A DataLoader with the classic settings.

    Shuffles when training unless --serial_batches; a ``sampler`` (for example a
    DistributedSampler) replaces shuffling.  The shuffle order and the worker
    seeds (which drive random crops and flips) come from ``cfg.seed``.  Keep
    ``collate_fn=collate`` if you build your own loader for these datasets.
    """
    workers = cfg.num_threads
    return CheckedDataLoader(
        dataset,
        batch_size=cfg.batch_size,
        shuffle=sampler is None and is_train and not cfg.serial_batches,
        sampler=sampler,
        num_workers=workers,
        collate_fn=collate,
        pin_memory=torch.cuda.is_available(),
        persistent_workers=workers > 0,
        drop_last=False,
        generator=torch.Generator().manual_seed(getattr(cfg, "seed", 0)),
    )
