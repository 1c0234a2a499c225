r"""Coarse-graining from a fine grid ``N_f`` to a coarse grid ``N_c`` (``N_c`` divides ``N_f``).

* :func:`subsample`: take every ``N_f/N_c``-th grid point (no filter; the dong2026 paper).
* :func:`spectral_truncate`: sharp spectral cutoff keeping the coarse grid's modes
  :math:`|n_x|, |n_y| < N_c/2` (the coarse Nyquist modes are dropped: they have no
  real-valued counterpart); rfft coefficients scale by :math:`(N_c/N_f)^2` with our
  unnormalised convention.
* :func:`gaussian_filter_hat`: optional Gaussian filter :math:`\exp(-|k|^2\Delta^2/24)` with
  width :math:`\Delta = L/N_c` by default, applied before truncation.
"""

from __future__ import annotations

import numpy as np

from kolmo.errors import ConfigurationError, ShapeError
from kolmo.grid import Grid


def coarsening_factor(n_fine: int, n_coarse: int) -> int:
    """``n_fine // n_coarse``, raising if the coarse grid does not divide the fine one."""
    if n_coarse < 4 or n_coarse > n_fine or n_fine % n_coarse:
        raise ConfigurationError(
            f"coarse grid {n_coarse} must divide the fine grid {n_fine} (and be >= 4 and <= it)")
    return n_fine // n_coarse


def subsample(field: np.ndarray, n_coarse: int) -> np.ndarray:
    """Every ``N_f/N_c``-th point of ``field`` ``(..., N_f, N_f)`` → ``(..., N_c, N_c)`` (a copy)."""
    f = coarsening_factor(field.shape[-1], n_coarse)
    return np.ascontiguousarray(field[..., ::f, ::f])


def truncate_hat(field_hat: np.ndarray, n_coarse: int) -> np.ndarray:
    """Sharp cutoff of rfft coefficients ``(..., N_f, N_f//2+1)`` → ``(..., N_c, N_c//2+1)``."""
    nf = field_hat.shape[-2]
    if field_hat.shape[-1] != nf // 2 + 1:
        raise ShapeError(f"expected rfft2 layout (..., {nf}, {nf // 2 + 1}), got {field_hat.shape}")
    coarsening_factor(nf, n_coarse)
    h = n_coarse // 2
    out = np.zeros(field_hat.shape[:-2] + (n_coarse, h + 1), dtype=np.complex128)
    out[..., :h, :h] = field_hat[..., :h, :h]
    out[..., -h + 1:, :h] = field_hat[..., -h + 1:, :h]
    return out * (n_coarse / nf) ** 2


def pad_hat(coarse_hat: np.ndarray, n_fine: int) -> np.ndarray:
    """Inverse of :func:`truncate_hat` on the kept modes: zero-pad to the fine grid."""
    nc = coarse_hat.shape[-2]
    coarsening_factor(n_fine, nc)
    h = nc // 2
    out = np.zeros(coarse_hat.shape[:-2] + (n_fine, n_fine // 2 + 1), dtype=np.complex128)
    out[..., :h, :h] = coarse_hat[..., :h, :h]
    out[..., -h + 1:, :h] = coarse_hat[..., -h + 1:, :h]
    return out * (n_fine / nc) ** 2


def spectral_truncate(field: np.ndarray, n_coarse: int) -> np.ndarray:
    """Sharp spectral truncation of a physical field ``(..., N_f, N_f)`` → ``(..., N_c, N_c)``."""
    return np.fft.irfft2(truncate_hat(np.fft.rfft2(field), n_coarse), s=(n_coarse, n_coarse))


def gaussian_filter_hat(grid: Grid, width: float | None = None, n_coarse: int | None = None) -> np.ndarray:
    r"""Gaussian filter transfer function :math:`\exp(-|k|^2\Delta^2/24)` on ``grid``, ``(N, N//2+1)``.

    ``width`` Δ defaults to the coarse spacing ``L / n_coarse``.
    """
    if width is None:
        if n_coarse is None:
            raise ConfigurationError("gaussian_filter_hat needs a width or a coarse grid size")
        width = grid.L / n_coarse
    return np.exp(-grid.k2 * width**2 / 24.0)
