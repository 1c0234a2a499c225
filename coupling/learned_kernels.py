r"""Numba kernels of the learned closure's resample step (:mod:`coupling.learned`): the casts between
the solver's float64 fields and the artifact's dtype, each one pass into a preallocated buffer.

On a resample step the closure runs a handful of small operations around one network call; on a
CPU shared with other work each distinct library call costs more than its arithmetic (its code and
data are cold after the network), so the casts, the scaling and the finiteness check are fused here
into two calls (:func:`scale_cast_numba` before the network, :func:`cast_and_check_numba` after it).
Where the closure's transform has FFTW plans callable from Numba (:mod:`kolmo.fftw_numba`), the whole
of each side is one compiled call: :func:`network_input_numba` (ω̂ → ω → the network input, and the
sample noise) and :func:`held_spectrum_numba` (the sample → float64, checked → Ĥ, and the injection
diagnostics of Ĥ).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from coupling.normal_stream import fill_standard_normal_numba
from kolmo.diagnostics import closure_injection_numba
from kolmo.fftw_numba import fftw_execute

__all__ = ["scale_cast_numba", "cast_and_check_numba", "network_input_numba", "held_spectrum_numba"]


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


@njit(cache=True)
def network_input_numba(omega_hat, spec, real, execute, plan_inverse, x, state, raw, rejected, noise):  # pragma: no cover
    """Before the network call, one compiled call: ``spec ← ω̂``, ``real ← N² irfft2(spec)`` (the FFTW
    plan ``plan_inverse`` on these buffers), ``x ← real / N²`` in ``x``'s dtype (:func:`scale_cast_numba`),
    and ``noise`` (1-D view of the sample noise, any float dtype) ← standard normals of the stream
    ``(state, raw, rejected)`` (:func:`~coupling.normal_stream.fill_standard_normal_numba`)."""
    b_count, n, m = spec.shape
    for b in range(b_count):
        for j in range(n):
            for i in range(m):
                spec[b, j, i] = omega_hat[b, j, i]
    fftw_execute(execute, plan_inverse)
    scale_cast_numba(real, 1.0 / (n * n), x)
    fill_standard_normal_numba(state, raw, rejected, noise)
    return x


@njit(cache=True)
def held_spectrum_numba(h, real, finite, execute, plan_forward, spec, omega_hat, inv_k2, scale, injection,
                        with_injection):  # pragma: no cover
    """After the network call, one compiled call: ``real ← h`` in float64 with the per-member finiteness
    check (:func:`cast_and_check_numba`); if every member is finite, ``spec ← rfft2(real)`` (the FFTW plan
    ``plan_forward``) and, if ``with_injection``, ``injection`` ← ⟨ψH⟩, ⟨ωH⟩ of ``spec``
    (:func:`kolmo.diagnostics.closure_injection_numba`). Returns the number of non-finite members (then
    nothing after the cast is done: the caller applies its policy and finishes)."""
    bad = cast_and_check_numba(h, real, finite)
    if bad:
        return bad
    fftw_execute(execute, plan_forward)
    if with_injection:
        closure_injection_numba(omega_hat, spec, inv_k2, scale, injection)
    return 0
