r"""Scalar diagnostics and isotropic spectra, with one normalisation everywhere.

All scalar quantities are **domain averages** :math:`\langle\cdot\rangle = L^{-2}\int\cdot\,dA`:

================  ===================================================  =================
name              definition                                           units
================  ===================================================  =================
energy            :math:`E = \tfrac12\langle|u|^2\rangle`              length²/time²
enstrophy         :math:`Z = \tfrac12\langle\omega^2\rangle`           1/time²
palinstrophy      :math:`P = \tfrac12\langle|\nabla\omega|^2\rangle`   1/(length² time²)
dissipation       :math:`\varepsilon = 2\nu Z + 2\mu E` (energy loss)  length²/time³
cfl               :math:`\Delta t\,\max(|u| + |v|)/\Delta x`           —
================  ===================================================  =================

The CFL number is not recomputed for the diagnostics: it is the speed the advection already
measured (:attr:`kolmo.equation.VorticityEquation.speed`), i.e. the state at the **first**
stage of the step just taken (the state at the start of that step) for ``cn-rk3`` and
``cn-euler`` on the FFTW backend; ``ars343`` and the ``numpy`` backend record every advection
evaluation, so there it is the step's last stage.

From ``rfft2`` coefficients (Parseval): :math:`\langle f^2\rangle = N^{-4}\sum_k w_k|\hat f_k|^2`,
with :math:`w_k` the rfft multiplicity (:attr:`kolmo.grid.Grid.rfft_weights`).

Spectra: shell sums over :math:`|n| \in [m - \tfrac12, m + \tfrac12)` (integer shells in index
units, wavenumber :math:`k_m = 2\pi m / L`), normalised so that
:math:`\sum_m E(k_m) = E` and :math:`\sum_m Z(k_m) = Z` exactly. Shells with
:math:`m > N/2` are only partly inside the grid (the square's corners).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from kolmo.grid import Grid

SCALARS = ("energy", "enstrophy", "palinstrophy", "dissipation", "cfl")
UNITS = {
    "energy": ("length^2/time^2", "E = <|u|^2>/2, domain mean"),
    "enstrophy": ("1/time^2", "Z = <omega^2>/2, domain mean"),
    "palinstrophy": ("1/(length^2 time^2)", "P = <|grad omega|^2>/2, domain mean"),
    "dissipation": ("length^2/time^3", "energy loss rate 2 nu Z + 2 mu E"),
    "cfl": ("1", "dt * max(|u|+|v|) / dx over the grid, of the state at the start of the step just taken "
                 "(first stage; ars343 and the numpy backend: its last advection evaluation)"),
    "closure_energy": ("length^2/time^3", "energy injected by the closure <psi H>"),
    "closure_enstrophy": ("1/time^3", "enstrophy injected by the closure <omega H>"),
}


@njit(cache=True)
def _moments(omega_hat, k2, inv_k2, weights, out):  # pragma: no cover
    b_count, n, m = omega_hat.shape
    for b in range(b_count):
        e = 0.0
        z = 0.0
        p = 0.0
        for j in range(n):
            for i in range(m):
                w = omega_hat[b, j, i]
                a = weights[j, i] * (w.real * w.real + w.imag * w.imag)
                e += a * inv_k2[j, i]
                z += a
                p += a * k2[j, i]
        out[b, 0] = e
        out[b, 1] = z
        out[b, 2] = p
    return out


def spectral_moments(grid: Grid, omega_hat: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """``(B, 3)`` array of (E, Z, P) for ``omega_hat`` ``(B, N, N//2+1)``."""
    if out is None:
        out = np.empty((omega_hat.shape[0], 3))
    _moments(omega_hat, grid.k2, grid.inv_k2, grid.rfft_weights, out)
    out *= 0.5 / float(grid.n) ** 4
    return out


def energy(grid: Grid, omega_hat: np.ndarray) -> np.ndarray:
    """Mean kinetic energy per member, ``(B,)``."""
    return spectral_moments(grid, omega_hat)[:, 0]


def enstrophy(grid: Grid, omega_hat: np.ndarray) -> np.ndarray:
    """Mean enstrophy per member, ``(B,)``."""
    return spectral_moments(grid, omega_hat)[:, 1]


@njit(cache=True)
def closure_injection_numba(omega_hat, h_hat, inv_k2, scale, out):  # pragma: no cover
    r""":func:`closure_injection` from compiled code: ``out[0, b]`` ← ``scale`` Σ w ψ̂*Ĥ, ``out[1, b]`` ←
    ``scale`` Σ w ω̂*Ĥ (``w`` the rfft weight, ``scale = 1/N⁴``), summed in a fixed order (rows, then
    columns; strict arithmetic, no fast-math), so the same call gives the same bits wherever it is made.
    Two members at a time, each with its own accumulators: each member's sums keep that order (the same
    bits as one member at a time) without waiting on a single chain of additions."""
    b_count, n, m = omega_hat.shape
    for b0 in range(0, b_count - 1, 2):
        e0 = z0 = e1 = z1 = 0.0
        for j in range(n):
            for i in range(m):
                w = 1.0 if (i == 0 or i == m - 1) else 2.0
                k2 = inv_k2[j, i]
                a = omega_hat[b0, j, i]
                h = h_hat[b0, j, i]
                p = w * (a.real * h.real + a.imag * h.imag)
                e0 += p * k2
                z0 += p
                a = omega_hat[b0 + 1, j, i]
                h = h_hat[b0 + 1, j, i]
                p = w * (a.real * h.real + a.imag * h.imag)
                e1 += p * k2
                z1 += p
        out[0, b0], out[1, b0] = e0 * scale, z0 * scale
        out[0, b0 + 1], out[1, b0 + 1] = e1 * scale, z1 * scale
    if b_count % 2:
        b = b_count - 1
        e = z = 0.0
        for j in range(n):
            for i in range(m):
                w = 1.0 if (i == 0 or i == m - 1) else 2.0
                a = omega_hat[b, j, i]
                h = h_hat[b, j, i]
                p = w * (a.real * h.real + a.imag * h.imag)
                e += p * inv_k2[j, i]
                z += p
        out[0, b], out[1, b] = e * scale, z * scale
    return out


def closure_injection(grid: Grid, omega_hat: np.ndarray, h_hat: np.ndarray,
                      out: np.ndarray | None = None) -> np.ndarray:
    r"""Energy and enstrophy injected by a closure tendency H, ``(2, B)``: :math:`\langle\psi H\rangle`
    (length²/time³) and :math:`\langle\omega H\rangle` (1/time³), in one pass without temporaries
    (:func:`closure_injection_numba`)."""
    if out is None:
        out = np.empty((2, omega_hat.shape[0]))
    closure_injection_numba(omega_hat, h_hat, grid.inv_k2, 1.0 / float(grid.n) ** 4, out)
    return out


def inner_product(grid: Grid, a_hat: np.ndarray, b_hat: np.ndarray) -> np.ndarray:
    r"""Domain mean :math:`\langle a b\rangle` per member from rfft coefficients, ``(B,)``."""
    w = grid.rfft_weights
    return np.sum(w * np.real(np.conj(a_hat) * b_hat), axis=(-2, -1)) / float(grid.n) ** 4


def shell_index(grid: Grid) -> np.ndarray:
    """Integer shell ``round(|n|)`` of every rfft mode, ``(N, N//2+1)``."""
    nmag = np.sqrt(grid.k2) * grid.L / (2 * np.pi)
    return np.floor(nmag + 0.5).astype(np.int64)


def spectrum_wavenumbers(grid: Grid) -> np.ndarray:
    """Shell-centre wavenumbers :math:`k_m = 2\\pi m/L`, ``m = 0 … max shell``."""
    return 2 * np.pi / grid.L * np.arange(int(shell_index(grid).max()) + 1)


def spectra(grid: Grid, omega_hat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Isotropic energy and enstrophy spectra ``(B, K)`` each (see module docstring)."""
    shells = shell_index(grid).ravel()
    nshell = int(shells.max()) + 1
    w = grid.rfft_weights * 0.5 / float(grid.n) ** 4
    power = (w * np.abs(omega_hat) ** 2).reshape(omega_hat.shape[0], -1)
    e_w = (power * grid.inv_k2.ravel())
    z = np.stack([np.bincount(shells, weights=row, minlength=nshell) for row in power])
    e = np.stack([np.bincount(shells, weights=row, minlength=nshell) for row in e_w])
    return e, z
