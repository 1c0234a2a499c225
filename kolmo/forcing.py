r"""Forcing: a registry of deterministic vorticity forcings and the dong2026 Q-Wiener noise.

Deterministic forcings are functions ``(grid, **params) -> f`` returning the vorticity
forcing :math:`f(x, y)` of shape ``(N, N)`` in physical space (vorticity / time units).

Registry
--------
``kolmogorov`` (params ``wavenumber`` n_f = 4, ``amplitude`` A = 1)
    Body force :math:`A \sin(k_f y)\,\hat x` with :math:`k_f = 2\pi n_f / L`; its curl is the
    vorticity forcing :math:`f = -A k_f \cos(k_f y)` (Kochkov et al. 2021 / jax-cfd with
    L = 2π, k_f = 4).
``dong2026`` (params ``wavenumber`` n = 1, ``amplitude`` A = 0.1)
    :math:`f = A[\sin(2\pi n (x + y)/L) + \cos(2\pi n (x + y)/L)]` (Dong, Yang & Wu 2026).
``none``
    :math:`f = 0`.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from kolmo.errors import ConfigurationError
from kolmo.grid import Grid

ForcingFunction = Callable[..., np.ndarray]


def kolmogorov_forcing(grid: Grid, wavenumber: float = 4.0, amplitude: float = 1.0) -> np.ndarray:
    r"""Kolmogorov vorticity forcing :math:`f = -A k_f\cos(k_f y)`, ``(N, N)``."""
    _, y = grid.mesh()
    kf = 2 * np.pi * wavenumber / grid.L
    return -amplitude * kf * np.cos(kf * y)


def dong2026_forcing(grid: Grid, wavenumber: float = 1.0, amplitude: float = 0.1) -> np.ndarray:
    r"""Diagonal forcing :math:`f = A[\sin 2\pi n(x+y)/L + \cos 2\pi n(x+y)/L]`, ``(N, N)``."""
    x, y = grid.mesh()
    phase = 2 * np.pi * wavenumber * (x + y) / grid.L
    return amplitude * (np.sin(phase) + np.cos(phase))


def no_forcing(grid: Grid) -> np.ndarray:
    """Zero forcing, ``(N, N)``."""
    return np.zeros((grid.n, grid.n))


FORCINGS: dict[str, ForcingFunction] = {
    "kolmogorov": kolmogorov_forcing,
    "dong2026": dong2026_forcing,
    "none": no_forcing,
}


def make_forcing(name: str, grid: Grid, **params: float) -> np.ndarray:
    """Evaluate the registered forcing ``name`` on ``grid``; an unknown name lists the valid ones."""
    try:
        fn = FORCINGS[name]
    except KeyError:
        raise ConfigurationError(
            f"unknown forcing {name!r}; valid: {', '.join(sorted(FORCINGS))}") from None
    try:
        return fn(grid, **params)
    except TypeError as exc:
        raise ConfigurationError(f"bad parameters {params} for forcing {name!r}: {exc}") from None


def member_generators(seed: int, members: int, first_member: int = 0,
                      stream: str = "noise") -> list[np.random.Generator]:
    """Independent PCG64 generators, one per member: member ``i`` uses ``SeedSequence([seed, i, s])``.

    ``s`` distinguishes streams (initial condition vs. noise). Because the stream of member
    ``i`` depends only on ``(seed, i)``, member ``i`` of a batch equals a single-member run
    with ``first_member = i``.
    """
    tag = {"initial": 0, "noise": 1, "closure": 2}[stream]
    return [np.random.Generator(np.random.PCG64(np.random.SeedSequence([int(seed), first_member + i, tag])))
            for i in range(members)]


class QWienerForcing:
    r"""Stochastic forcing :math:`\sigma_W \xi` of the dong2026 preset, one draw per step.

    The reference code adds, per step, :math:`\kappa` independent draws of
    :math:`\mathrm{Re}\,\mathrm{ifft2}(b\,\zeta)` with complex normal :math:`\zeta` and
    spectral amplitude

    .. math:: b(k) = e^{-\alpha |k|^2/2}\, \frac{N^2}{L \sqrt{\Delta t}}.

    A sum of :math:`\kappa` independent Gaussians is one Gaussian scaled by
    :math:`\sqrt\kappa`, so we draw once. In ``rfft2`` layout the Fourier coefficient of the
    real part has, for every mode with a distinct conjugate,
    :math:`\hat\xi_k = b(k)\sqrt{\kappa}\,(g_1 + i g_2)/\sqrt 2` with :math:`g_{1,2}\sim N(0,1)`,
    and :math:`\hat\xi_{-k} = \overline{\hat\xi_k}`; that is what we draw.

    Deviations from the reference, both numerically invisible or physical:

    * only modes with :math:`e^{-\alpha|k|^2/2} > 10^{-20}` are drawn (a block of
      ~40 × 20 modes for α = 0.005, L = 1, independent of N); the rest are below round-off;
    * the mean mode :math:`k = 0` is not forced: the circulation of a periodic flow is zero,
      and forcing it would only random-walk a mode that carries no dynamics. Nyquist modes
      are not forced either.

    The step's tendency :math:`\sigma_W\xi` is held constant over the stages of the time
    step, so its increment over a step is :math:`\Delta t\,\sigma_W\xi \propto \sqrt{\Delta t}`
    (Euler–Maruyama for additive noise).

    Parameters
    ----------
    grid, dt
        Grid and time step (the amplitude depends on both).
    sigma
        :math:`\sigma_W` (5e-5 in dong2026).
    alpha
        Spectral decay :math:`\alpha` (0.005).
    kappa
        Number of reference draws per step (10).
    generators
        One numpy generator per member (see :func:`member_generators`).
    """

    def __init__(self, grid: Grid, dt: float, sigma: float, alpha: float, kappa: int,
                 generators: list[np.random.Generator]) -> None:
        if sigma < 0 or alpha < 0 or kappa < 1 or dt <= 0:
            raise ConfigurationError(
                f"stochastic forcing needs sigma >= 0, alpha >= 0, kappa >= 1, dt > 0; got "
                f"sigma={sigma}, alpha={alpha}, kappa={kappa}, dt={dt}")
        self.grid, self.dt, self.sigma, self.alpha, self.kappa = grid, dt, sigma, alpha, kappa
        self.generators = generators
        n = grid.n
        k0 = 2 * np.pi / grid.L
        # largest index with exp(-alpha k^2/2) > 1e-20, clipped below Nyquist
        nmax = int(np.floor(np.sqrt(2 * np.log(1e20) / alpha) / k0)) if alpha > 0 else n // 2 - 1
        nmax = min(nmax, n // 2 - 1)
        self.nmax = nmax
        iy = np.arange(-nmax, nmax + 1)
        ix = np.arange(0, nmax + 1)
        ky, kx = np.meshgrid(iy * k0, ix * k0, indexing="ij")
        amp = np.exp(-alpha * (kx**2 + ky**2) / 2) * n * n / (grid.L * np.sqrt(dt))
        amp *= sigma * np.sqrt(kappa) / np.sqrt(2.0)
        amp[:, 0] = np.where(iy > 0, amp[:, 0], 0.0)  # kx = 0: draw ky > 0 only, mirror the rest
        self._amp = amp
        self._iy = iy % n  # row index in fft order
        self._neg = (-iy[iy > 0]) % n
        self._pos_rows = np.nonzero(iy > 0)[0]

    def sample(self, out: np.ndarray) -> np.ndarray:
        """Write this step's :math:`\\sigma_W\\hat\\xi` for every member into ``out`` ``(B, N, N//2+1)``."""
        nb = self.nmax + 1
        out[...] = 0.0
        for b, rng in enumerate(self.generators):
            g = rng.standard_normal((2, 2 * self.nmax + 1, nb))
            block = self._amp * (g[0] + 1j * g[1])
            out[b, self._iy, :nb] = block
            out[b, self._neg, 0] = np.conj(block[self._pos_rows, 0])
        return out

    def point_std(self) -> float:
        r"""Point standard deviation of the drawn tendency :math:`\sigma_W\xi` in physical space (1/time²).

        The real field :math:`N^{-2}\sum_k \hat\xi_k e^{ik\cdot x}` with :math:`\hat\xi_k = a_k(g_1 + ig_2)`
        drawn on a half plane has variance :math:`4 N^{-4}\sum_{\text{drawn}} a_k^2` (independent of ``N``
        once the spectrum is resolved).
        """
        return float(2.0 * np.sqrt(np.sum(self._amp**2)) / self.grid.n**2)

    def get_state(self) -> list[dict]:
        """RNG states of every member (for exact restarts)."""
        return [g.bit_generator.state for g in self.generators]

    def set_state(self, states: list[dict]) -> None:
        """Restore RNG states saved by :meth:`get_state`."""
        for g, s in zip(self.generators, states, strict=True):
            g.bit_generator.state = s
