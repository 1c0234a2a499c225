r"""Metrics of the a-posteriori (online) evaluation: errors, ensemble scores, distribution distances.

NumPy only (no torch, no matplotlib). Ensembles put the member axis first: ``(B, ...)``.
Each function states its formula; ``tests/kolmo/test_metrics.py`` checks each against hand
computations.

=========================  ==================================================================
function                   definition
=========================  ==================================================================
relative_l2_error          :math:`\|X_b - y\|_2 / \|y\|_2` per member (norm over the last two axes)
ensemble_mean_std          mean and standard deviation over members (``ddof=1``; 0 for B = 1)
spread_skill               :math:`\sqrt{(B+1)/B}\;\mathrm{spread}/\mathrm{RMSE}(\bar X)` (1 = calibrated)
crps_fair                  :math:`\frac1B\sum_i|X_i-y| - \frac{1}{2B(B-1)}\sum_{i,j}|X_i-X_j|`
wasserstein1               :math:`\int_0^1|F_a^{-1}(q)-F_b^{-1}(q)|\,dq` of two empirical samples
isotropic_spectra          shell-sum energy/enstrophy spectra (:mod:`kolmo.diagnostics` normalisation)
log_spectral_error         RMS over shells :math:`0<k\le k_c` of :math:`\log_{10}(S/S_\mathrm{ref})`
blowup_horizon             first time a member is non-finite or its enstrophy exceeds a threshold
similarity                 :math:`1 - d_\mathrm{model}/d_\mathrm{baseline}`
=========================  ==================================================================
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from kolmo.errors import ShapeError

__all__ = ["relative_l2_error", "ensemble_mean_std", "SpreadSkill", "spread_skill", "crps_fair",
           "wasserstein1", "velocity", "isotropic_spectra", "spectral_cutoff", "log_spectral_error",
           "BlowupHorizon", "blowup_horizon", "similarity"]


# ---------------------------------------------------------------------------------------------- errors
def relative_l2_error(fields: np.ndarray, reference: np.ndarray) -> np.ndarray:
    r"""Relative L2 (Frobenius) error :math:`\|X_b - y\|_2/\|y\|_2` of each field.

    Parameters
    ----------
    fields
        ``(..., N, N)``, e.g. ``(B, N, N)`` ensemble members.
    reference
        ``(N, N)`` (or broadcastable to ``fields``), the truth.

    Returns
    -------
    ``fields.shape[:-2]`` errors (dimensionless). ``nan`` where the reference is identically 0.
    """
    x = np.asarray(fields, dtype=np.float64)
    y = np.asarray(reference, dtype=np.float64)
    if x.ndim < 2 or y.shape[-2:] != x.shape[-2:]:
        raise ShapeError(f"fields {x.shape} and reference {y.shape} must share the last two (grid) axes")
    num = np.sqrt(np.sum((x - y) ** 2, axis=(-2, -1)))
    den = np.sqrt(np.sum(y**2, axis=(-2, -1)))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


def ensemble_mean_std(ensemble: np.ndarray, axis: int = 0, ddof: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation over members (axis ``axis``).

    ``ddof=1`` (unbiased variance) by default; a one-member ensemble has std 0.
    """
    x = np.asarray(ensemble, dtype=np.float64)
    b = x.shape[axis]
    mean = x.mean(axis=axis)
    if b - ddof <= 0:
        return mean, np.zeros_like(mean)
    return mean, x.std(axis=axis, ddof=ddof)


# ---------------------------------------------------------------------------------------------- ensemble scores
@dataclass(frozen=True)
class SpreadSkill:
    """Ensemble spread, skill (RMSE of the ensemble mean) and their corrected ratio.

    Attributes
    ----------
    spread
        :math:`\\sqrt{\\langle s^2\\rangle}`, :math:`s^2` the unbiased (``ddof=1``) member variance,
        averaged over all points (units of the field). ``nan`` for B < 2.
    skill
        :math:`\\sqrt{\\langle(\\bar X - y)^2\\rangle}` (units of the field).
    ratio
        :math:`\\sqrt{(B+1)/B}\\;\\mathrm{spread}/\\mathrm{skill}`; ``nan`` when undefined (B < 2 or
        skill 0).
    members
        B.
    """

    spread: float
    skill: float
    ratio: float
    members: int


def spread_skill(ensemble: np.ndarray, truth: np.ndarray) -> SpreadSkill:
    r"""Spread–skill ratio of an ensemble ``(B, ...)`` against one truth ``(...)``.

    For a perfect (statistically exchangeable) ensemble the truth behaves like one more member,
    so :math:`E[(\bar X - y)^2] = \sigma^2(1 + 1/B)` while :math:`E[s^2] = \sigma^2`: the ratio
    :math:`\sqrt{(B+1)/B}\,\sqrt{\langle s^2\rangle}/\sqrt{\langle(\bar X-y)^2\rangle}` is then 1
    (Fortin et al. 2014, *J. Hydrometeor.* 15, 1708). Below 1: under-dispersive (over-confident);
    above 1: over-dispersive.
    """
    x = np.asarray(ensemble, dtype=np.float64)
    y = np.asarray(truth, dtype=np.float64)
    if x.shape[1:] != y.shape:
        raise ShapeError(f"ensemble {x.shape} must be (B, *truth.shape) with truth {y.shape}")
    b = x.shape[0]
    mean = x.mean(axis=0)
    skill = float(np.sqrt(np.mean((mean - y) ** 2)))
    if b < 2:
        return SpreadSkill(float("nan"), skill, float("nan"), b)
    spread = float(np.sqrt(np.mean(x.var(axis=0, ddof=1))))
    ratio = math.sqrt((b + 1) / b) * spread / skill if skill > 0 else float("nan")
    return SpreadSkill(spread, skill, ratio, b)


def crps_fair(ensemble: np.ndarray, observation: np.ndarray | float) -> np.ndarray:
    r"""Fair CRPS of an ensemble ``(B, ...)`` at every point of ``observation`` ``(...)``.

    .. math:: \mathrm{CRPS}_F = \frac1B\sum_i |X_i - y| - \frac{1}{2B(B-1)}\sum_{i,j}|X_i - X_j|

    (Ferro 2014, *Q. J. R. Meteorol. Soc.* 140, 1917, eq. 8; Zamo & Naveau 2018, *Math. Geosci.*
    50, 209): the unbiased estimator of the CRPS of the distribution the members are drawn from.
    For B = 1 the pair term is absent and the score is the absolute error. The pair sum is
    evaluated from the sorted members, :math:`\sum_{i,j}|X_i-X_j| = 2\sum_i (2i - B - 1) X_{(i)}`
    (1-based order statistics), in :math:`O(B\log B)`. Units of the field; lower is better.
    """
    x = np.asarray(ensemble, dtype=np.float64)
    y = np.asarray(observation, dtype=np.float64)
    if x.ndim < 1 or x.shape[1:] != y.shape:
        raise ShapeError(f"ensemble {x.shape} must be (B, *observation.shape) with observation {y.shape}")
    b = x.shape[0]
    skill = np.mean(np.abs(x - y), axis=0)
    if b == 1:
        return skill
    xs = np.sort(x, axis=0)
    coef = (2 * np.arange(1, b + 1) - b - 1).astype(np.float64).reshape((b,) + (1,) * (x.ndim - 1))
    pair_sum = 2.0 * np.sum(coef * xs, axis=0)
    return skill - pair_sum / (2.0 * b * (b - 1))


# ---------------------------------------------------------------------------------------------- distributions
def wasserstein1(a: np.ndarray, b: np.ndarray) -> float:
    r"""Wasserstein-1 distance between the empirical distributions of two 1D samples.

    .. math:: W_1 = \int_0^1 |F_a^{-1}(q) - F_b^{-1}(q)|\,dq

    with the empirical quantile functions (step functions of the sorted samples, jumps at
    ``i/n`` and ``j/m``). Exact for any sizes ``n``, ``m``: on each interval between consecutive
    jump levels both quantile functions are constant. Non-finite values are refused.
    """
    xa = np.sort(np.asarray(a, dtype=np.float64).ravel())
    xb = np.sort(np.asarray(b, dtype=np.float64).ravel())
    if xa.size == 0 or xb.size == 0:
        raise ShapeError(f"wasserstein1 needs two non-empty samples (got sizes {xa.size}, {xb.size})")
    if not (np.isfinite(xa[0]) and np.isfinite(xa[-1]) and np.isfinite(xb[0]) and np.isfinite(xb[-1])):
        from kolmo.errors import NonFiniteError

        raise NonFiniteError("wasserstein1: a sample holds NaN or infinity")
    n, m = xa.size, xb.size
    if n == m:
        return float(np.mean(np.abs(xa - xb)))
    q = np.union1d(np.arange(1, n + 1) / n, np.arange(1, m + 1) / m)
    q[-1] = 1.0
    dq = np.diff(np.concatenate(([0.0], q)))
    mid = q - 0.5 * dq
    ia = np.minimum((mid * n).astype(np.int64), n - 1)  # F_a^{-1}(q) = x_(ceil(qn)) on ((i-1)/n, i/n]
    ib = np.minimum((mid * m).astype(np.int64), m - 1)
    return float(np.sum(dq * np.abs(xa[ia] - xb[ib])))


# ---------------------------------------------------------------------------------------------- spectral
def velocity(omega: np.ndarray, L: float) -> tuple[np.ndarray, np.ndarray]:
    r"""Velocity ``(u, v)`` from vorticity ``(..., N, N)`` on a periodic box of side ``L``.

    Spectral inverse of :math:`-\nabla^2\psi = \omega` (mean of ψ set to 0), then
    :math:`u = \partial_y\psi`, :math:`v = -\partial_x\psi` (the ``kolmo`` convention; Nyquist
    derivatives set to 0). Axis ``-2`` is y, axis ``-1`` is x.
    """
    w = np.asarray(omega, dtype=np.float64)
    n = w.shape[-1]
    if w.ndim < 2 or w.shape[-2] != n:
        raise ShapeError(f"vorticity must be (..., N, N), got {w.shape}")
    ny = np.fft.fftfreq(n, 1.0 / n)
    nx = np.fft.rfftfreq(n, 1.0 / n)
    ky = 2 * np.pi / L * np.where(np.abs(ny) == n // 2, 0.0, ny)[:, None]
    kx = 2 * np.pi / L * np.where(np.abs(nx) == n // 2, 0.0, nx)[None, :]
    k2 = (2 * np.pi / L) ** 2 * (ny[:, None] ** 2 + nx[None, :] ** 2)
    inv = np.zeros_like(k2)
    inv[k2 > 0] = 1.0 / k2[k2 > 0]
    psi_hat = np.fft.rfft2(w) * inv
    u = np.fft.irfft2(1j * ky * psi_hat, s=(n, n))
    v = np.fft.irfft2(-1j * kx * psi_hat, s=(n, n))
    return u, v


def isotropic_spectra(omega: np.ndarray, L: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r"""Isotropic energy and enstrophy spectra of vorticity fields ``(B, N, N)`` (or ``(N, N)``).

    The normalisation of :func:`kolmo.diagnostics.spectra`: shell sums over integer shells
    :math:`|n|\in[m-\frac12, m+\frac12)`, :math:`k_m = 2\pi m/L`, with
    :math:`\sum_m E(k_m) = \frac12\langle|u|^2\rangle` and :math:`\sum_m Z(k_m) = \frac12\langle\omega^2\rangle`.

    Returns
    -------
    k ``(K,)``, E ``(B, K)`` (length²/time² per shell), Z ``(B, K)`` (1/time² per shell).
    """
    from kolmo import diagnostics
    from kolmo.grid import Grid

    w = np.asarray(omega, dtype=np.float64)
    if w.ndim == 2:
        w = w[None]
    if w.ndim != 3 or w.shape[-1] != w.shape[-2]:
        raise ShapeError(f"vorticity must be (B, N, N) or (N, N), got {np.shape(omega)}")
    grid = Grid(int(w.shape[-1]), float(L))
    e, z = diagnostics.spectra(grid, np.fft.rfft2(w))
    return diagnostics.spectrum_wavenumbers(grid), e, z


def spectral_cutoff(n: int, L: float, fraction: float = 2.0 / 3.0) -> float:
    r"""``fraction`` of the Nyquist wavenumber :math:`k_N = \pi N/L` of an ``N``-point grid."""
    return fraction * np.pi * n / L


def log_spectral_error(spectrum: np.ndarray, reference: np.ndarray, k: np.ndarray, k_max: float) -> float:
    r"""Relative log-spectral error below a cutoff.

    .. math:: d = \Big[\frac{1}{|M|}\sum_{m\in M}\log_{10}^2\frac{S(k_m)}{S_\mathrm{ref}(k_m)}\Big]^{1/2},
              \quad M = \{m: 0 < k_m \le k_\mathrm{max},\ S_\mathrm{ref}(k_m) > 0\}

    in decades (0.1 ≈ a typical 26 % mismatch per shell). Scale-free: a spectrum off by a
    constant factor 10 everywhere scores 1. Shells where ``spectrum`` is 0 but the reference is
    not are clipped at ``1e-300`` (a very large, finite error).
    """
    s = np.asarray(spectrum, dtype=np.float64)
    r = np.asarray(reference, dtype=np.float64)
    kk = np.asarray(k, dtype=np.float64)
    if s.shape != r.shape or s.shape[-1:] != kk.shape:
        raise ShapeError(f"spectra {s.shape} and {r.shape} must match, with last axis the wavenumbers {kk.shape}")
    sel = (kk > 0) & (kk <= k_max * (1 + 1e-12)) & (r > 0)
    if not np.any(sel):
        raise ShapeError(f"no shell with 0 < k <= {k_max:.6g} and positive reference spectrum")
    ratio = np.log10(np.maximum(s[..., sel], 1e-300) / r[..., sel])
    return float(np.sqrt(np.mean(ratio**2)))


# ---------------------------------------------------------------------------------------------- stability
@dataclass(frozen=True)
class BlowupHorizon:
    """Per-member blow-up-free horizons.

    Attributes
    ----------
    horizon
        ``(B,)`` the first time a member is non-finite or above the threshold; for a member that
        never is, the last time available (censored).
    blew_up
        ``(B,)`` whether the member was caught.
    threshold
        The enstrophy threshold used.
    """

    horizon: np.ndarray
    blew_up: np.ndarray
    threshold: float


def blowup_horizon(times: np.ndarray, enstrophy: np.ndarray, threshold: float,
                   finite: np.ndarray | None = None) -> BlowupHorizon:
    r"""First time each member's state is non-finite or its enstrophy exceeds ``threshold``.

    Parameters
    ----------
    times
        ``(T,)`` increasing.
    enstrophy
        ``(T, B)`` :math:`Z = \frac12\langle\omega^2\rangle`; NaN/inf count as non-finite.
    threshold
        E.g. a factor (10) times the reference's maximum enstrophy.
    finite
        Optional ``(T, B)`` mask of fully finite states (``False`` also counts as blown up).
    """
    t = np.asarray(times, dtype=np.float64)
    z = np.asarray(enstrophy, dtype=np.float64)
    if z.ndim != 2 or z.shape[0] != t.shape[0] or t.size == 0:
        raise ShapeError(f"enstrophy {z.shape} must be (T, B) with T = len(times) = {t.shape[0]} > 0")
    with np.errstate(invalid="ignore"):
        bad = ~np.isfinite(z) | (z > threshold)
    if finite is not None:
        bad |= ~np.asarray(finite, dtype=bool)
    blew = bad.any(axis=0)
    first = np.argmax(bad, axis=0)
    horizon = np.where(blew, t[first], t[-1])
    return BlowupHorizon(horizon, blew, float(threshold))


# ---------------------------------------------------------------------------------------------- scores
def similarity(d_model: float, d_baseline: float) -> float:
    r"""Similarity score :math:`1 - d_\mathrm{model}/d_\mathrm{baseline}` of a distance ``d``.

    1: perfect (d = 0); 0: as far from the reference as the baseline; negative: worse than the
    baseline. If the baseline itself has ``d = 0`` the score is 1 when the model does too and
    ``nan`` (undefined) otherwise; any non-finite input gives ``nan``.
    """
    dm, db = float(d_model), float(d_baseline)
    if not (math.isfinite(dm) and math.isfinite(db)):
        return float("nan")
    if db == 0.0:
        return 1.0 if dm == 0.0 else float("nan")
    return 1.0 - dm / db
