r"""Numba kernels of the learned closure's resample step (:mod:`coupling.learned`): the casts between
the solver's float64 fields and the artifact's dtype, each one pass into a preallocated buffer.

On a resample step the closure runs a handful of small operations around one network call; on a
CPU shared with other work each distinct library call costs more than its arithmetic (its code and
data are cold after the network), so the casts, the scaling and the finiteness check are fused here
into two calls (:func:`scale_cast_numba` before the network, :func:`cast_and_check_numba` after it).
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["scale_cast_numba", "cast_and_check_numba"]


@njit(cache=True, fastmath=True)
def scale_cast_numba(src, scale, dst):  # pragma: no cover
    """``dst ← scale · src`` ``(B, N, N)``: the product in float64, rounded once to ``dst``'s dtype (the
    network input: ``src`` is ``N² ω`` from the unnormalised inverse transform, ``scale = 1/N²``)."""
    b_count, n, n2 = src.shape
    for b in range(b_count):
        for j in range(n):
            for i in range(n2):
                dst[b, j, i] = src[b, j, i] * scale
    return dst


# no ``nnan``/``ninf`` fast-math flags here: the check must see NaN and inf
@njit(cache=True, fastmath={"nsz", "arcp", "contract", "afn", "reassoc"})
def cast_and_check_numba(src, dst, finite):  # pragma: no cover
    """``dst`` ``(B, N, N)`` float64 ``←`` ``src`` (a fresh sample in any float dtype), and ``finite`` ``(B,)``
    ``←`` whether member ``b``'s values are all finite, in one pass; returns the number of members that
    are not."""
    b_count, n, n2 = src.shape
    bad = 0
    for b in range(b_count):
        acc = 0.0
        for j in range(n):
            for i in range(n2):
                v = np.float64(src[b, j, i])
                dst[b, j, i] = v
                acc += 0.0 * v
        finite[b] = acc == 0.0
        if not finite[b]:
            bad += 1
    return bad
