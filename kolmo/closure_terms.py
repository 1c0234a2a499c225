"""The closure terms of each dataset target, computed from a fine state (definitions and names:
:mod:`kolmo.targets`; the build loop: :mod:`kolmo.dataset`): the missing-physics and SGS closures and
the recorders that take one recording around the fine step that starts at it."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from kolmo.coarse import gaussian_filter_hat, subsample, truncate_hat
from kolmo.equation import VorticityEquation
from kolmo.fft import RealFFT2
from kolmo.forcing import make_forcing
from kolmo.grid import Grid
from kolmo.presets import Config
from kolmo.simulation import Simulation
from kolmo.targets import get_target

if TYPE_CHECKING:
    from kolmo.dataset import DatasetSpec

__all__ = ["missing_physics_closure_hat", "sgs_closure_hat", "coarse_equation", "coarse_advection_residual", "Recorder",
           "MissingPhysicsRecorder", "SGSRecorder"]


def missing_physics_closure_hat(equation: VorticityEquation, omega_hat: np.ndarray,
                                noise_hat: np.ndarray | None = None) -> np.ndarray:
    r"""Fine-grid :math:`\hat H = -P_f\widehat{u\cdot\nabla\omega}\;[+ \sigma_W\hat\xi]`, ``(B, N, N//2+1)``.

    Without ``noise_hat`` the predictable part (target ``missing-physics``); with it the
    noise-inclusive ``missing-physics-noisy``.

    Parameters
    ----------
    equation
        The fine :class:`VorticityEquation` (its 2/3 rule is :math:`P_f`).
    omega_hat
        Fine state at the recording time, ``(B, N, N//2+1)``.
    noise_hat
        The noise tendency drawn for the step that starts there (:attr:`Simulation.step_tendency_hat`),
        or ``None``.
    """
    h = -equation.advection_hat(omega_hat)
    if noise_hat is not None:
        h += noise_hat
    return h


def sgs_closure_hat(fine_equation: VorticityEquation, coarse_equation: VorticityEquation,
                    omega_hat: np.ndarray, filter_hat: np.ndarray | None = None,
                    band_limited: bool = False) -> tuple[np.ndarray, np.ndarray]:
    r"""Coarse :math:`\hat{\bar\omega} = TG\hat\omega` and closure :math:`-\hat\tau`, each ``(B, N_c, N_c//2+1)``.

    :math:`\tau = TG\,P_f\widehat{u\cdot\nabla\omega} - P_c\widehat{\bar u\cdot\nabla\bar\omega}`
    (``filter_hat`` = G on the fine grid, ``None`` for the sharp cutoff alone). With
    ``band_limited`` the closure is :math:`-P_c\hat\tau` (target ``sgs-resolved``): zero outside
    the coarse model's 2/3 band.
    """
    nc = coarse_equation.grid.n
    adv = fine_equation.advection_hat(omega_hat)
    w = omega_hat
    if filter_hat is not None:
        w = w * filter_hat
        adv *= filter_hat
    omega_bar_hat = truncate_hat(w, nc)
    tau = truncate_hat(adv, nc) - coarse_equation.advection_hat(omega_bar_hat)
    if band_limited:
        tau *= coarse_equation.grid.mask
    return omega_bar_hat, -tau


def coarse_equation(config: Config, members: int = 1, backend: str = "fftw", threads: int = 1,
                    planner: str = "measure") -> VorticityEquation:
    """The :class:`VorticityEquation` of ``config`` (e.g. :meth:`DatasetSpec.coarse_config`) for ``members`` fields."""
    g = Grid(config.n, config.L, config.dealias)
    return VorticityEquation(g, config.nu, config.mu, make_forcing(config.forcing, g, **config.forcing_params),
                             members=members, advection=config.advection, backend=backend, threads=threads,
                             planner=planner)


def coarse_advection_residual(omega: np.ndarray, closure: np.ndarray, config: Config) -> np.ndarray:
    r"""How much of a ``missing-physics`` closure the coarse grid's own advection already explains.

    .. math:: r = \frac{\|H - (-P_c\,\bar u\cdot\nabla\bar\omega)\|}{\|H\|}

    per pair, with :math:`P_c` the coarse grid's 2/3 rule and :math:`\bar u` the velocity of the
    coarse vorticity :math:`\bar\omega`. When the fine product :math:`u\cdot\nabla\omega` carries no
    power outside the coarse 2/3 band (a flow resolved on the coarse grid: dong2026 at 64², to float32
    precision), :math:`H` is this deterministic function of :math:`\bar\omega` and ``r`` is at
    round-off: the conditional law :math:`p(H\mid\bar\omega)` is a point mass, and an ensemble's
    spread can only measure the model's own error. ``r`` bounds the share of :math:`H` that
    :math:`\bar\omega` does not determine from above (for ``missing-physics-noisy`` it is about the
    noise share, :func:`kolmo.targets.noise_floor`).

    Parameters
    ----------
    omega, closure
        Coarse vorticity and closure pairs, ``(B, N, N)`` (1/time and 1/time²).
    config
        The fine run's :class:`~kolmo.presets.Config` (domain, dealiasing, viscosity); its grid size
        is replaced by ``N``.

    Returns
    -------
    numpy.ndarray
        ``(B,)`` relative residuals.
    """
    omega = np.asarray(omega, dtype=np.float64)
    closure = np.asarray(closure, dtype=np.float64)
    if omega.ndim != 3 or omega.shape != closure.shape or omega.shape[1] != omega.shape[2]:
        raise ValueError(f"omega {omega.shape} and closure {closure.shape}: expected two (B, N, N) arrays")
    n = omega.shape[-1]
    g = Grid(n, config.L, config.dealias)
    eq = VorticityEquation(g, config.nu, config.mu, None, members=omega.shape[0], advection=True, backend="numpy")
    fft = RealFFT2(n, omega.shape[0], backend="numpy")
    adv = fft.irfft2(-eq.advection_hat(fft.rfft2(omega)))
    diff = np.sqrt(((closure - adv) ** 2).sum(axis=(1, 2)))
    return diff / np.sqrt((closure ** 2).sum(axis=(1, 2)))


class Recorder:
    """Computes one recording for the batch in two halves around the fine step that starts at it."""

    def before_step(self) -> None:
        raise NotImplementedError

    def after_step(self) -> tuple[np.ndarray, np.ndarray]:
        """``(coarse vorticity, closure)``, each ``(B, N_c, N_c)`` float64."""
        raise NotImplementedError


class MissingPhysicsRecorder(Recorder):
    def __init__(self, sim: Simulation, n_coarse: int, include_noise: bool) -> None:
        self.sim, self.nc, self.include_noise = sim, n_coarse, include_noise
        self._omega_hat = np.empty_like(sim.omega_hat)
        self._omega: np.ndarray | None = None

    def before_step(self) -> None:
        self._omega_hat[...] = self.sim.omega_hat
        self._omega = subsample(self.sim.vorticity(), self.nc)

    def after_step(self) -> tuple[np.ndarray, np.ndarray]:
        sim = self.sim
        noise = sim.step_tendency_hat if self.include_noise else None
        h_hat = missing_physics_closure_hat(sim.equation, self._omega_hat, noise)
        return self._omega, subsample(sim.fft.irfft2(h_hat), self.nc)  # type: ignore[return-value]


class SGSRecorder(Recorder):
    def __init__(self, sim: Simulation, spec: DatasetSpec, backend: str, threads: int, planner: str) -> None:
        self.sim = sim
        b = sim.config.members
        self.coarse_eq = coarse_equation(spec.coarse_config(), b, backend, threads, planner)
        self.fft = RealFFT2(spec.coarse, b, backend=backend, threads=threads, planner=planner)
        self.filter_hat = gaussian_filter_hat(sim.grid, n_coarse=spec.coarse) if spec.filter == "gaussian" else None
        self.band_limited = get_target(str(spec.target)).band_limited
        self._out: tuple[np.ndarray, np.ndarray] | None = None

    def before_step(self) -> None:
        wbar, h = sgs_closure_hat(self.sim.equation, self.coarse_eq, self.sim.omega_hat, self.filter_hat,
                                  self.band_limited)
        self._out = (self.fft.irfft2(wbar), self.fft.irfft2(h))

    def after_step(self) -> tuple[np.ndarray, np.ndarray]:
        return self._out  # type: ignore[return-value]
