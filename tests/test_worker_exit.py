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


# Accelerate re-creates the loader as its own DataLoader class, keeping our worker_init_fn.
UNDER_ACCELERATE = SCRIPT.replace("iterator = iter(loader)", """
import torch
from accelerate.data_loader import prepare_data_loader
loader = prepare_data_loader(loader, device=torch.device("cpu"), num_processes=1, process_index=0)
iterator = iter(loader)""")


@pytest.mark.parametrize("script", [pytest.param(SCRIPT, id="ours"),
                                    pytest.param(UNDER_ACCELERATE, id="under_accelerate", marks=pytest.mark.slow)])
def test_exit_with_live_workers_does_not_hang(script):
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[0, 1]"
