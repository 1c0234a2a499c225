"""Test configuration: writable caches, single-threaded math, small fixtures."""

import os
import tempfile

os.environ.setdefault("NUMBA_CACHE_DIR", os.path.join(tempfile.gettempdir(), "kolmo-numba-cache"))
os.environ.setdefault("KOLMO_CACHE_DIR", os.path.join(tempfile.gettempdir(), "kolmo-cache"))
os.environ.setdefault("OMP_NUM_THREADS", "1")


import pytest  # noqa: E402


@pytest.fixture(scope="session")
def dask_client():
    """One local Dask cluster (2 worker processes x 1 thread, started once, ~3 s) for every test that asks
    for it: the scale-out tests of ``kolmo.cluster`` and the coupling of batched runs."""
    from kolmo.cluster import ClusterOptions, open_client

    with open_client(ClusterOptions(workers=2)) as client:
        yield client
