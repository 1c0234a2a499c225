r"""White Gaussian noise drawn directly in ``rfft2`` space: the jitter of a held closure sample.

Between resamples a learned closure perturbs its held sample by :math:`\sigma_J\eta`, with
:math:`\eta(x)` i.i.d. :math:`N(0, 1)` at every grid point (:mod:`coupling.learned`). The solver
needs :math:`\hat H = \mathrm{rfft2}(H)`, so instead of drawing :math:`\eta` and transforming it
every step, this module draws :math:`\hat\eta = \mathrm{rfft2}(\sigma_J\eta)` directly, with
exactly the same law.

The law of the transform (unnormalised, as :mod:`kolmo.fft`): for :math:`\eta` white with
variance :math:`s^2` on an :math:`N\times N` grid and :math:`\hat\eta(k) = \sum_x \eta(x)
e^{-2\pi i k\cdot x/N}`,

.. math:: E[\hat\eta(k)\overline{\hat\eta(k')}] = s^2N^2\,\delta_{k,k'}, \qquad
          E[\hat\eta(k)\hat\eta(k')] = s^2N^2\,\delta_{k,-k'},

i.e. the modes are independent except for Hermitian symmetry :math:`\hat\eta(-k) =
\overline{\hat\eta(k)}`; a mode with :math:`k \ne -k` has independent real and imaginary parts
of variance :math:`s^2N^2/2` each; a self-conjugate mode (:math:`k \equiv -k \bmod N`) is real
with variance :math:`s^2N^2`. In the ``rfft2`` layout ``(N, N//2+1)`` (rows :math:`k_y`, columns
:math:`k_x`; :math:`N` even) that is:

* columns :math:`1 \le k_x < N/2`: every entry complex, :math:`\frac{sN}{\sqrt2}(z_r + i z_i)`;
* columns :math:`k_x = 0` and :math:`k_x = N/2`: rows :math:`1 \le k_y < N/2` complex as above,
  rows :math:`N - k_y` their complex conjugates, rows :math:`k_y = 0` and :math:`k_y = N/2` (the
  mean, the three Nyquist corners) real, :math:`sN z_r`;

with :math:`z` i.i.d. :math:`N(0,1)`. This counts exactly :math:`N^2` independent real Gaussians
(the transform is orthogonal up to the factor :math:`N`), so :math:`\hat\eta` has the law of
``rfft2`` of the physical-space noise: equal in distribution, not a cheaper approximation. No
mode is masked, as none is on the physical path (the solver adds the whole ``rfft2`` of the
closure term to the step's tendency; :mod:`kolmo.stepping`).

The draws are ``z`` of shape ``(B, N, N//2+1, 2)`` (:math:`N^2 + 2N` numbers per member; the
:math:`2N` that the symmetric entries do not use are drawn and discarded, so the stream does
not depend on the values). :func:`add_spectral_white_noise_numba` adds :math:`\hat\eta` to a
held spectrum in place, one pass, no temporaries; :func:`spectral_white_noise_reference` is
its NumPy definition. :func:`jitter_step_numba` is a whole jitter step in one compiled call and
one pass over the spectrum: the draws (:mod:`coupling.normal_stream`), the addition, and the
solver's injection diagnostics of the result (the sums of
:func:`kolmo.diagnostics.closure_injection_numba`, in the same order).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from coupling.normal_stream import fill_standard_normal_numba

__all__ = ["noise_draw_shape", "spectral_white_noise_reference", "add_spectral_white_noise_numba",
           "jitter_step_numba"]


def noise_draw_shape(batch: int, n: int) -> tuple[int, int, int, int]:
    """Shape of the standard-normal draws ``z`` for ``batch`` spectra of an ``n``² grid."""
    return (int(batch), int(n), int(n) // 2 + 1, 2)


def spectral_white_noise_reference(z: np.ndarray, std: float) -> np.ndarray:
    r"""``rfft2`` of white noise of standard deviation ``std`` per point, ``(B, N, N//2+1)`` complex,
    from standard normals ``z`` ``(B, N, N//2+1, 2)`` (the layout of the module docstring)."""
    z = np.asarray(z, dtype=np.float64)
    n, m = z.shape[1], z.shape[2]
    out = (std * n / np.sqrt(2.0)) * (z[..., 0] + 1j * z[..., 1])
    half = n // 2
    for col in (0, m - 1):
        out[:, half + 1:, col] = np.conj(out[:, half - 1:0:-1, col])
        for row in (0, half):
            out[:, row, col] = std * n * z[:, row, col, 0]
    return out


@njit(cache=True, fastmath=True)
def add_spectral_white_noise_numba(held, z, std):  # pragma: no cover
    r"""``held`` ``(B, N, N//2+1)`` ``+=`` :func:`spectral_white_noise_reference` ``(z, std)``, in place."""
    b_count, n, m = held.shape
    half = n // 2
    general = std * n / np.sqrt(2.0)
    real = std * n
    for b in range(b_count):
        for j in range(n):
            for i in range(1, m - 1):
                held[b, j, i] += complex(general * z[b, j, i, 0], general * z[b, j, i, 1])
        for col in (0, m - 1):
            for row in (0, half):
                held[b, row, col] += real * z[b, row, col, 0]
            for j in range(1, half):
                re = general * z[b, j, col, 0]
                im = general * z[b, j, col, 1]
                held[b, j, col] += complex(re, im)
                held[b, n - j, col] += complex(re, -im)
    return held



@njit(cache=True)
def jitter_step_numba(state, raw, rejected, z, held, std, omega_hat, inv_k2, scale, injection,
                      with_injection):  # pragma: no cover
    r"""One jitter step in one pass, compiled: ``held += rfft2(std η)`` with the standard normals ``z``
    ``(B, N, N//2+1, 2)`` that :func:`~coupling.normal_stream.fill_standard_normal_numba` would draw from
    the stream ``(state, raw, rejected)`` (the same numbers, the same layout as
    :func:`add_spectral_white_noise_numba`), and, if ``with_injection``, ``injection`` ``(2, B)`` ← ⟨ψH⟩,
    ⟨ωH⟩ of the new ``held`` (the sums of :func:`kolmo.diagnostics.closure_injection_numba`, in its order,
    ``scale = 1/N⁴``: the same bits).

    The normals are drawn into ``z`` first (vectorised fast path); then one pass adds them and sums a
    row's injection terms as soon as the row is final (rows ``N - j`` of the :math:`k_x = 0` and Nyquist
    columns are written with row ``j < N/2``, before them). No fast-math in that pass: the sums must be
    those of :func:`~kolmo.diagnostics.closure_injection_numba` to the bit."""
    b_count, n, m = held.shape
    half = n // 2
    general = std * n / np.sqrt(2.0)
    real = std * n
    fill_standard_normal_numba(state, raw, rejected, z.reshape(-1))
    for b in range(b_count):
        e = 0.0
        s = 0.0
        for j in range(n):
            for i in (0, m - 1):  # the kx = 0 and Nyquist columns: real, Hermitian pairs, or unused
                if j == 0 or j == half:
                    held[b, j, i] += real * z[b, j, i, 0]
                elif j < half:
                    zr = general * z[b, j, i, 0]
                    zi = general * z[b, j, i, 1]
                    held[b, j, i] += complex(zr, zi)
                    held[b, n - j, i] += complex(zr, -zi)
            if with_injection:  # row j is final once its own entries are added: its terms in order
                a = omega_hat[b, j, 0]
                h = held[b, j, 0]
                p = 1.0 * (a.real * h.real + a.imag * h.imag)
                e += p * inv_k2[j, 0]
                s += p
            for i in range(1, m - 1):
                h = held[b, j, i] + complex(general * z[b, j, i, 0], general * z[b, j, i, 1])
                held[b, j, i] = h
                if with_injection:
                    a = omega_hat[b, j, i]
                    p = 2.0 * (a.real * h.real + a.imag * h.imag)
                    e += p * inv_k2[j, i]
                    s += p
            if with_injection:
                a = omega_hat[b, j, m - 1]
                h = held[b, j, m - 1]
                p = 1.0 * (a.real * h.real + a.imag * h.imag)
                e += p * inv_k2[j, m - 1]
                s += p
        if with_injection:
            injection[0, b] = e * scale
            injection[1, b] = s * scale
    return held
