"""Shared fixtures of the closure tests: one torch thread (fast and reproducible on a shared
2-core machine, where torch's default of all cores oversubscribes) and a fixed global seed."""

import pytest
import torch


@pytest.fixture(autouse=True)
def single_thread_seeded():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    yield
    torch.set_num_threads(threads)
