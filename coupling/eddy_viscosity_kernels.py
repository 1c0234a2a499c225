r"""Numba kernels of the eddy-viscosity closures (:mod:`coupling.eddy_viscosity`), with NumPy references.

One call of a closure is three planned transforms (:class:`kolmo.fft.RealFFT2`) and three
kernels, all into preallocated buffers:

1. :func:`gradients_hat_numba`: spectral ``(ω_x, ω_y)`` and, for Smagorinsky, the strain
   components ``(ψ_xy, ψ_yy − ψ_xx)`` → one inverse transform of ``2B`` or ``4B`` fields;
2. :func:`smagorinsky_flux_numba` / :func:`leith_flux_numba`: ``ν_t`` and the flux
   ``ν_t ∇ω`` in physical space → one forward transform of ``2B`` fields;
3. :func:`divergence_hat_numba`: ``Ĥ = i k_x F̂_x + i k_y F̂_y`` → one inverse transform of
   ``B`` fields (the physical tendency the closure protocol returns).

Conventions as in :mod:`kolmo.kernels`: ``rfft2`` arrays ``(B, N, N//2+1)``; first derivatives
use ``kx_odd``/``ky_odd`` (Nyquist dropped); ``scale`` folds the ``1/N²`` of the unnormalised
inverse transform into the spectral kernel.
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
@njit(cache=True, fastmath=True)
def gradients_hat_numba(omega_hat, kx, ky, kx_odd, ky_odd, inv_k2, scale, strain, out):  # pragma: no cover
    r"""Into ``out`` ``(2B or 4B, N, N//2+1)``, times ``scale``: rows ``b``: :math:`i k_x\hat\omega`,
    ``B + b``: :math:`i k_y\hat\omega`; with ``strain`` also ``2B + b``: :math:`\hat\psi_{xy} = -k_xk_y\hat\psi`
    and ``3B + b``: :math:`\hat\psi_{yy} - \hat\psi_{xx} = (k_x^2 - k_y^2)\hat\psi`."""
    b_count, n, m = omega_hat.shape
    for b in range(b_count):
        for j in range(n):
            kyo = ky_odd[j]
            ky2 = ky[j] * ky[j]
            for i in range(m):
                w = omega_hat[b, j, i]
                wr = w.real * scale
                wi = w.imag * scale
                out[b, j, i] = complex(-kx_odd[i] * wi, kx_odd[i] * wr)
                out[b_count + b, j, i] = complex(-kyo * wi, kyo * wr)
                if strain:
                    p = inv_k2[j, i]
                    cxy = -kx_odd[i] * kyo * p
                    cd = (kx[i] * kx[i] - ky2) * p
                    out[2 * b_count + b, j, i] = complex(cxy * wr, cxy * wi)
                    out[3 * b_count + b, j, i] = complex(cd * wr, cd * wi)
    return out


@njit(cache=True, fastmath=True)
def smagorinsky_flux_numba(fields, factor, nu_t, flux):  # pragma: no cover
    r"""From ``fields`` ``(4B, N, N)`` = (ω_x, ω_y, ψ_xy, ψ_yy − ψ_xx): ``nu_t ← factor·√(4ψ_xy² + (ψ_yy − ψ_xx)²)``
    ``(B, N, N)`` and ``flux ← (ν_t ω_x, ν_t ω_y)`` ``(2B, N, N)``."""
    b_count = nu_t.shape[0]
    n, n2 = nu_t.shape[1], nu_t.shape[2]
    for b in range(b_count):
        for j in range(n):
            for i in range(n2):
                sxy = fields[2 * b_count + b, j, i]
                sd = fields[3 * b_count + b, j, i]
                nu = factor * np.sqrt(4.0 * sxy * sxy + sd * sd)
                nu_t[b, j, i] = nu
                flux[b, j, i] = nu * fields[b, j, i]
                flux[b_count + b, j, i] = nu * fields[b_count + b, j, i]
    return flux


@njit(cache=True, fastmath=True)
def leith_flux_numba(fields, factor, nu_t, flux):  # pragma: no cover
    r"""From ``fields`` ``(2B, N, N)`` = (ω_x, ω_y): ``nu_t ← factor·|∇ω|`` and ``flux ← ν_t ∇ω``."""
    b_count = nu_t.shape[0]
    n, n2 = nu_t.shape[1], nu_t.shape[2]
    for b in range(b_count):
        for j in range(n):
            for i in range(n2):
                wx = fields[b, j, i]
                wy = fields[b_count + b, j, i]
                nu = factor * np.sqrt(wx * wx + wy * wy)
                nu_t[b, j, i] = nu
                flux[b, j, i] = nu * wx
                flux[b_count + b, j, i] = nu * wy
    return flux


@njit(cache=True, fastmath=True)
def divergence_hat_numba(flux_hat, kx_odd, ky_odd, scale, out):  # pragma: no cover
    r"""``out`` ``(B, N, N//2+1)`` ``← scale·(i k_x F̂_x + i k_y F̂_y)`` for ``flux_hat`` ``(2B, N, N//2+1)``."""
    b_count, n, m = out.shape
    for b in range(b_count):
        for j in range(n):
            kyo = ky_odd[j]
            for i in range(m):
                fx = flux_hat[b, j, i]
                fy = flux_hat[b_count + b, j, i]
                re = -(kx_odd[i] * fx.imag + kyo * fy.imag) * scale
                im = (kx_odd[i] * fx.real + kyo * fy.real) * scale
                out[b, j, i] = complex(re, im)
    return out
