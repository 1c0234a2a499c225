r"""Initial vorticity fields, seeded per member.

``grf``
    The reference code's Gaussian random field (Li et al.'s ``GaussianRF``): Fourier
    coefficients :math:`\hat\omega_k = A_k \hat g_k` (Hermitian, zero mean, :math:`E|\hat g_k|^2 = 1`: the
    coefficients of :math:`\mathrm{Re}\,\mathrm{ifft2}(A(g_1 + i g_2))` as the reference draws them) with
    :math:`A_k = \sqrt2\,\tau^{\alpha-1}\,N^2\,(|k|^2 + \tau^2)^{-\alpha/2}` (:math:`|k| = 2\pi|n|/L`);
    α = 2.5, τ = 7 in dong2026.
``band``
    Random phases, flat energy in the shell :math:`k_{min} \le |n| \le k_{max}` (index units),
    scaled to the given rms velocity.
``file``
    Snapshot ``index`` (and member) from an HDF5 run file or dataset split (see :mod:`kolmo.io`).
``zero``
    ω = 0.
"""

from __future__ import annotations

import numpy as np

from kolmo.errors import ConfigurationError
from kolmo.grid import Grid


def _hermitian_noise(grid: Grid, rng: np.random.Generator) -> np.ndarray:
    """rfft2 of real white noise divided by N: Hermitian, E|ĝ_k|² = 1 for every mode."""
    return np.fft.rfft2(rng.standard_normal((grid.n, grid.n))) / grid.n


def gaussian_random_field(grid: Grid, rng: np.random.Generator, alpha: float = 2.5,
                          tau: float = 7.0) -> np.ndarray:
    """One GRF sample (physical, ``(N, N)``) with the spectrum of the module docstring."""
    amp = np.sqrt(2.0) * tau ** (alpha - 1.0) * grid.n**2 * (grid.k2 + tau**2) ** (-alpha / 2)
    amp[0, 0] = 0.0
    coeff = amp * _hermitian_noise(grid, rng)
    return np.fft.irfft2(coeff, s=(grid.n, grid.n))


def band_limited_field(grid: Grid, rng: np.random.Generator, k_min: float = 1.0, k_max: float = 8.0,
                       rms_velocity: float = 1.0) -> np.ndarray:
    """Random vorticity with energy in ``k_min <= |n| <= k_max`` and rms velocity ``rms_velocity``."""
    if not 0 < k_min <= k_max:
        raise ConfigurationError(f"band needs 0 < k_min <= k_max, got k_min={k_min}, k_max={k_max}")
    nmag = np.sqrt(grid.k2) * grid.L / (2 * np.pi)
    shell = (nmag >= k_min) & (nmag <= k_max)
    coeff = _hermitian_noise(grid, rng) * shell
    omega = np.fft.irfft2(coeff, s=(grid.n, grid.n))
    w = grid.rfft_weights
    oh = np.fft.rfft2(omega)
    energy = 0.5 * np.sum(w * np.abs(oh) ** 2 * grid.inv_k2) / grid.n**4  # <|u|²>/2
    if energy == 0:
        raise ConfigurationError(f"band [{k_min}, {k_max}] holds no mode on a {grid.n}² grid")
    return omega * (rms_velocity / np.sqrt(2 * energy))


def initial_vorticity(kind: str, grid: Grid, generators: list[np.random.Generator],
                      **params: object) -> np.ndarray:
    """Initial ω of shape ``(B, N, N)``, one member per generator (``file`` is handled by the caller)."""
    if kind == "grf":
        return np.stack([gaussian_random_field(grid, g, **params) for g in generators])  # type: ignore[arg-type]
    if kind == "band":
        return np.stack([band_limited_field(grid, g, **params) for g in generators])  # type: ignore[arg-type]
    if kind == "zero":
        return np.zeros((len(generators), grid.n, grid.n))
    raise ConfigurationError(f"unknown initial condition {kind!r}; valid: grf, band, zero, file")
