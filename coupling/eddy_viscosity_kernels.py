r"""Numba kernels of the eddy-viscosity closures (:mod:`coupling.eddy_viscosity`), with NumPy references.

The real fields a closure needs travel in pairs, as complex fields, through planned complex
transforms (:class:`kolmo.fft.ComplexFFT2`; FFTW's complex transform of ``B`` fields is faster than
its real one of ``2B`` at these sizes):

.. math:: \gamma = \omega_x + i\,\omega_y = (\partial_x + i\partial_y)\,\omega, \qquad
          \sigma = (\psi_{yy} - \psi_{xx}) + 2i\,\psi_{xy}, \quad |\sigma| = |S|,

and the flux :math:`F = \nu_t\gamma = \nu_t\omega_x + i\,\nu_t\omega_y`. One call of a closure:

1. :func:`complex_gradients_hat_numba`: the full spectra :math:`\hat\gamma = (ik_x - k_y)\hat\omega`
   and, for Smagorinsky, :math:`\hat\sigma = ((k_x^2 - k_y^2) - 2ik_xk_y)\hat\psi` (multipliers from
   :func:`complex_multipliers`, once per grid; ``ω̂`` unfolded from its ``rfft2`` half by Hermitian
   symmetry) → one inverse complex transform of ``B`` (Leith) or ``2B`` (Smagorinsky) fields;
2. :func:`smagorinsky_flux_numba` / :func:`leith_flux_numba`: ``ν_t = factor·|σ|`` or
   ``factor·|γ|`` and ``F = ν_t γ`` in physical space → one forward complex transform of ``B`` fields;
3. :func:`divergence_hat_numba`: :math:`\hat F_x, \hat F_y` separated by Hermitian symmetry,
   ``Ĥ = i k_x F̂_x + i k_y F̂_y`` on the ``rfft2`` half and, in the same pass, whether each
   member's Ĥ is finite (the solver takes Ĥ spectrally; the physical tendency, for hosts that need
   it, is one more inverse transform of ``B`` real fields).

Before (issue 11) the same fields went through real transforms: 4B (Smagorinsky) or 2B inverse,
2B forward. Conventions as in :mod:`kolmo.kernels`: ``rfft2`` arrays ``(B, N, N//2+1)``; first
derivatives use ``kx_odd``/``ky_odd`` (Nyquist dropped); ``scale`` folds the ``1/N²`` of the
unnormalised inverse transform into the spectral multipliers.
"""

from __future__ import annotations

import numpy as np
from numba import njit


# --------------------------------------------------------------------------------------------
# NumPy references (numpy.fft, allocating): the definitions the kernels are tested against
# --------------------------------------------------------------------------------------------
def eddy_viscosity_tendency_reference(omega_hat: np.ndarray, kx: np.ndarray, ky: np.ndarray, kx_odd: np.ndarray,
                                      ky_odd: np.ndarray, inv_k2: np.ndarray, kind: str,
                                      factor: float) -> tuple[np.ndarray, np.ndarray]:
    r"""``(H, ν_t)``, each ``(B, N, N)``: :math:`H = \nabla\cdot(\nu_t\nabla\omega)` with
    :math:`\nu_t = \mathrm{factor}\,|S|` (``kind="smagorinsky"``, factor :math:`(C_S\Delta)^2`) or
    :math:`\mathrm{factor}\,|\nabla\omega|` (``"leith"``, factor :math:`(C_L\Delta)^3`)."""
    n = omega_hat.shape[-2]
    inv = lambda f: np.fft.irfft2(f, s=(n, n))  # noqa: E731
    ikx, iky = 1j * kx_odd[None, :], 1j * ky_odd[:, None]
    grad = inv(np.stack([ikx * omega_hat, iky * omega_hat]))
    if kind == "smagorinsky":
        psi = omega_hat * inv_k2
        s = inv(np.stack([-(kx_odd[None, :] * ky_odd[:, None]) * psi, (kx[None, :] ** 2 - ky[:, None] ** 2) * psi]))
        nu_t = factor * np.sqrt(4.0 * s[0] ** 2 + s[1] ** 2)
    else:
        nu_t = factor * np.sqrt(grad[0] ** 2 + grad[1] ** 2)
    flux_hat = np.fft.rfft2(nu_t[None] * grad)
    return inv(ikx * flux_hat[0] + iky * flux_hat[1]), nu_t


# --------------------------------------------------------------------------------------------
# Numba kernels (preallocated outputs)
# --------------------------------------------------------------------------------------------
def strain_multiplier(kx: np.ndarray, ky: np.ndarray, kx_odd: np.ndarray, ky_odd: np.ndarray, inv_k2: np.ndarray,
                      scale: float) -> np.ndarray:
    r"""``(N, N//2+1)`` complex: :math:`((k_x^2 - k_y^2) - 2ik_xk_y)/|k|^2` times ``scale`` (Nyquist dropped
    in :math:`k_xk_y`, as in :math:`\hat\psi_{xy}`; 0 at :math:`k = 0`), so that
    :math:`\hat\sigma = ` this :math:`\cdot\,\hat\omega`. Even in :math:`k`."""
    m = ((kx[None, :] ** 2 - ky[:, None] ** 2) - 2j * kx_odd[None, :] * ky_odd[:, None]) * inv_k2 * scale
    return np.ascontiguousarray(m)


@njit(cache=True, fastmath=True)
def complex_gradients_hat_numba(omega_hat, kx_odd, ky_odd, scale, sigma_mult, strain, out):  # pragma: no cover
    r"""Into ``out`` ``(B or 2B, N, N)`` complex: rows ``b``: :math:`\hat\gamma = (ik_x - k_y)\hat\omega`
    (times ``scale``) and, with ``strain``, ``B + b``: :math:`\hat\sigma` (``sigma_mult`` from
    :func:`strain_multiplier`): the full spectra, from :math:`\hat\omega` ``(B, N, N//2+1)``. One pass
    over the ``rfft2`` half; each mode :math:`k` with :math:`0 < k_x < N/2` also writes
    :math:`-k`, using :math:`\hat\omega(-k) = \overline{\hat\omega(k)}` and the parity of the
    multipliers (:math:`ik_x - k_y` odd, ``sigma_mult`` even)."""
    b_count, n, m = omega_hat.shape
    for b in range(b_count):
        for j in range(n):
            jr = n - j if j > 0 else 0
            ky = ky_odd[j] * scale
            for i in range(1, m - 1):  # (ik_x - k_y) is odd: γ̂(-k) = -(ik_x - k_y) conj(ω̂(k))
                w = omega_hat[b, j, i]
                kx = kx_odd[i] * scale
                out[b, j, i] = complex(-kx * w.imag - ky * w.real, kx * w.real - ky * w.imag)
                out[b, jr, n - i] = complex(ky * w.real - kx * w.imag, -ky * w.imag - kx * w.real)
            for i in (0, m - 1):  # self-mirrored columns
                w = omega_hat[b, j, i]
                kx = kx_odd[i] * scale
                out[b, j, i] = complex(-kx * w.imag - ky * w.real, kx * w.real - ky * w.imag)
            if strain:
                for i in range(1, m - 1):
                    w = omega_hat[b, j, i]
                    out[b_count + b, j, i] = sigma_mult[j, i] * w
                    out[b_count + b, jr, n - i] = sigma_mult[j, i] * w.conjugate()
                for i in (0, m - 1):
                    out[b_count + b, j, i] = sigma_mult[j, i] * omega_hat[b, j, i]
    return out


@njit(cache=True, fastmath=True)
def smagorinsky_flux_numba(fields, factor, nu_t, flux):  # pragma: no cover
    r"""From ``fields`` ``(2B, N, N)`` complex = (γ, σ): ``nu_t ← factor·|σ|`` ``(B, N, N)`` and
    ``flux ← ν_t γ`` ``(B, N, N)`` complex."""
    b_count, n, n2 = nu_t.shape
    for b in range(b_count):
        for j in range(n):
            for i in range(n2):
                s = fields[b_count + b, j, i]
                nu = factor * np.sqrt(s.real * s.real + s.imag * s.imag)
                nu_t[b, j, i] = nu
                flux[b, j, i] = nu * fields[b, j, i]
    return flux


@njit(cache=True, fastmath=True)
def leith_flux_numba(fields, factor, nu_t, flux):  # pragma: no cover
    r"""From ``fields`` ``(B, N, N)`` complex = γ: ``nu_t ← factor·|γ|`` and ``flux ← ν_t γ``."""
    b_count, n, n2 = nu_t.shape
    for b in range(b_count):
        for j in range(n):
            for i in range(n2):
                g = fields[b, j, i]
                nu = factor * np.sqrt(g.real * g.real + g.imag * g.imag)
                nu_t[b, j, i] = nu
                flux[b, j, i] = nu * g
    return flux


# no ``nnan``/``ninf`` fast-math flags here: the finiteness check must see NaN and inf
@njit(cache=True, fastmath={"nsz", "arcp", "contract", "afn", "reassoc"})
def divergence_hat_numba(flux_hat, kx_odd, ky_odd, scale, out, finite):  # pragma: no cover
    r"""``out`` ``(B, N, N//2+1)`` ``← scale·(i k_x F̂_x + i k_y F̂_y)`` from ``flux_hat`` ``(B, N, N)``, the
    full spectrum of :math:`F = F_x + iF_y`: with :math:`a = \hat F(k)`, :math:`c = \overline{\hat F(-k)}`,
    :math:`\hat F_x = (a + c)/2` and :math:`\hat F_y = (a - c)/2i`, so
    :math:`\hat H = \tfrac12[ik_x(a + c) + k_y(a - c)]`. ``finite`` ``(B,)`` ``←`` whether member ``b``'s
    output is finite everywhere (the closure protocol's check, in the same pass:
    :math:`\sum 0\cdot x` is 0 unless some ``x`` is NaN or inf)."""
    b_count, n, m = out.shape
    half = 0.5 * scale
    for b in range(b_count):
        acc = 0.0
        for j in range(n):
            kyo = ky_odd[j] * half
            jr = n - j if j > 0 else 0
            h = _divergence_mode(flux_hat[b, j, 0], flux_hat[b, jr, 0], kx_odd[0] * half, kyo)
            out[b, j, 0] = h
            acc += 0.0 * (h.real + h.imag)
            for i in range(1, m):
                h = _divergence_mode(flux_hat[b, j, i], flux_hat[b, jr, n - i], kx_odd[i] * half, kyo)
                out[b, j, i] = h
                acc += 0.0 * (h.real + h.imag)
        finite[b] = acc == 0.0
    return out


@njit(cache=True, fastmath={"nsz", "arcp", "contract", "afn", "reassoc"}, inline="always")
def _divergence_mode(a, mirror, kxo, kyo):  # pragma: no cover
    r""":math:`\tfrac12[ik_x(a + c) + k_y(a - c)]` with :math:`c = \overline{\texttt{mirror}}` (``kxo``, ``kyo``
    carry the ½ and the scale)."""
    c = mirror.conjugate()
    s = a + c
    d = a - c
    return complex(-kxo * s.imag + kyo * d.real, kxo * s.real + kyo * d.imag)
