"""Test configuration: writable caches, single-threaded math, small fixtures."""

import os
import tempfile

os.environ.setdefault("NUMBA_CACHE_DIR", os.path.join(tempfile.gettempdir(), "kolmo-numba-cache"))
os.environ.setdefault("KOLMO_CACHE_DIR", os.path.join(tempfile.gettempdir(), "kolmo-cache"))
os.environ.setdefault("OMP_NUM_THREADS", "1")
