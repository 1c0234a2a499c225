"""kolmo: a fast Numba + pyFFTW pseudo-spectral solver for 2D Kolmogorov and dong2026 turbulence.

This package never imports torch. Subpackage :mod:`kolmo.evaluation` holds the offline analysis
of run files (``kolmo evaluate online``); see the README's architecture section for the modules.
"""

import os as _os
from pathlib import Path as _Path

# Numba's cache=True needs a writable folder even when the package is installed read-only.
if "NUMBA_CACHE_DIR" not in _os.environ:
    _os.environ["NUMBA_CACHE_DIR"] = str(_Path.home() / ".cache" / "kolmo" / "numba")

__version__ = "0.1.0"
