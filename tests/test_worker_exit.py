"""A process whose DataLoader workers are still alive at exit must exit (workers ignore SIGTERM,
so multiprocessing's own exit hook would wait for them forever; this hung the whole test run)."""
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

SCRIPT = f"""
import sys; sys.path.insert(0, {str(ROOT)!r})
from datasets.loader import CheckedDataLoader
loader = CheckedDataLoader(list(range(100)), batch_size=2, num_workers=2, persistent_workers=True)
iterator = iter(loader)
print(next(iterator).tolist())   # left suspended: the workers are alive when the interpreter exits
"""


def test_exit_with_live_workers_does_not_hang():
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[0, 1]"


REBUILT = f"""
import sys; sys.path.insert(0, {str(ROOT)!r})
import torch
from accelerate.data_loader import prepare_data_loader
from datasets.loader import CheckedDataLoader
loader = CheckedDataLoader(list(range(100)), batch_size=2, num_workers=2, persistent_workers=True)
rebuilt = prepare_data_loader(loader, device=torch.device("cpu"), num_processes=1, process_index=0)
iterator = iter(rebuilt)
print(next(iterator).tolist())   # Accelerate's own iterator: never registered with us
"""


@pytest.mark.slow
def test_exit_with_live_workers_of_a_rebuilt_loader_does_not_hang():
    # Accelerate rebuilds the loader (our worker_init_fn, its own __iter__); this hung CI's pytest
    # for an hour after the last test passed.
    done = subprocess.run([sys.executable, "-c", REBUILT], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[0, 1]"


ORPHAN = f"""
import sys; sys.path.insert(0, {str(ROOT)!r})
import multiprocessing, signal, time
import datasets.loader   # registers the exit hook

def stubborn_worker():   # what a DataLoader worker is once its iterator is gone: daemonic, deaf to SIGTERM
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    time.sleep(600)

worker = multiprocessing.get_context("fork").Process(target=stubborn_worker, daemon=True)
worker.start()
print("started")
"""


def test_exit_with_a_worker_that_outlived_its_iterator_does_not_hang():
    # No iterator left for the heap scan to find (one freed by the cycle collector after a
    # DataError): the hook's last resort must still end the worker, or the exit waits forever.
    done = subprocess.run([sys.executable, "-c", ORPHAN], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "started"
