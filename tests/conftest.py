"""Shared test settings."""
import pytest
import torch


@pytest.fixture(scope="session", autouse=True)
def one_intra_op_thread():
    # The tests use tiny tensors on a 2-core machine: one intra-op thread is faster than
    # two OpenMP threads that wait on each other (and on other processes).
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
