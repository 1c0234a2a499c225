r"""The vorticity equation in the jax-cfd split: explicit terms, implicit terms, implicit solve.

.. math::

    \partial_t\hat\omega = \underbrace{-\widehat{P(u\cdot\nabla\omega)} + \hat f}_{\text{explicit}}
    + \underbrace{-(\nu|k|^2 + \mu)\hat\omega}_{\text{implicit}, \;L\hat\omega}
    + \underbrace{\hat s}_{\text{step-constant}}

where :math:`P` is the dealiasing projection. The *step-constant tendency* :math:`\hat s`
collects what is evaluated once per time step and held over its stages: the stochastic
forcing :math:`\sigma_W\hat\xi` and the closure :math:`\hat H` (see :mod:`kolmo.stepping`).

Step order (written down once, here): **invert** (ψ̂ = ω̂/|k|², velocities and gradients)
→ **advect** (product in physical space, dealias) → **forcing** (deterministic + stochastic)
→ **closure** (hook on the coarse state) → **step** (IMEX update).
"""

from __future__ import annotations

import numpy as np

from kolmo import kernels
from kolmo.errors import ConfigurationError
from kolmo.fft import RealFFT2
from kolmo.fftw_numba import NumbaPlans, numba_plans
from kolmo.grid import Grid


class VorticityEquation:
    """2D incompressible Navier–Stokes in vorticity form on a batch of ``members`` fields.

    Parameters
    ----------
    grid
        The grid.
    nu
        Kinematic viscosity ν (length²/time).
    mu
        Linear drag μ (1/time).
    forcing
        Deterministic vorticity forcing ``(N, N)`` in physical space, or ``None`` for zero.
    members
        Batch size B.
    advection
        Include ``−u·∇ω``. ``False`` gives the dong2026 reduced ("missing physics") model.
    backend, threads, planner
        FFT options (see :class:`kolmo.fft.RealFFT2`).

    Attributes
    ----------
    linear : ndarray ``(N, N//2+1)``
        Diagonal implicit operator :math:`L = -(\\nu|k|^2 + \\mu)`.
    numba_plans : NumbaPlans or None
        The transforms of ``fft2`` as FFTW plans that compiled code executes (one FFTW thread), so
        that a stepper can run a whole step without Python (:mod:`kolmo.fftw_numba`); ``None`` on
        the NumPy backend, with several threads, or without advection.
    velocity_scale : float
        :math:`1/N^2`, the normalisation of the inverse FFT, folded into the velocities.
    speed : ndarray ``(B,)``
        ``max(|u| + |v|)`` per member at the last call that tracked it: in a time step, the
        first stage, i.e. the state at the start of the step (zero without advection).
    """

    def __init__(self, grid: Grid, nu: float, mu: float = 0.0, forcing: np.ndarray | None = None,
                 members: int = 1, advection: bool = True, backend: str = "fftw",
                 threads: int = 1, planner: str = "measure") -> None:
        if nu < 0 or mu < 0:
            raise ConfigurationError(f"viscosity and drag must be >= 0, got nu={nu}, mu={mu}")
        self.grid, self.nu, self.mu, self.members, self.advection = grid, float(nu), float(mu), int(members), advection
        self.backend = backend
        self.linear = -(self.nu * grid.k2 + self.mu)
        if forcing is None:
            forcing = np.zeros((grid.n, grid.n))
        if forcing.shape != (grid.n, grid.n):
            raise ConfigurationError(f"forcing has shape {forcing.shape}, expected {(grid.n, grid.n)}")
        self.forcing = forcing
        self.forcing_hat = np.fft.rfft2(forcing)
        self.speed = np.zeros(self.members)
        self.numba_plans: NumbaPlans | None = None
        if advection:
            self.fft2 = RealFFT2(grid.n, 2 * self.members, backend=backend, threads=threads, planner=planner)
            self.numba_plans = numba_plans(self.fft2, planner)
        self.coef_a, self.coef_c = kernels.advection_coefficients(grid.kx, grid.ky, grid.kx_odd, grid.ky_odd, grid.mask)
        self.velocity_scale = 1.0 / (grid.n * grid.n)

    # --- jax-cfd interface -----------------------------------------------------------------
    def explicit_terms(self, omega_hat: np.ndarray, out: np.ndarray) -> np.ndarray:
        r"""Write :math:`-P\,\widehat{u\cdot\nabla\omega} + \hat f` into ``out`` ``(B, N, N//2+1)``."""
        if not self.advection:
            out[...] = self.forcing_hat
            return out
        pq = self.advection_products_hat(omega_hat)
        if self.backend == "fftw":
            kernels.advection_assemble_numba(pq, self.coef_a, self.coef_c, self.forcing_hat, -1.0, out)
        else:
            b = self.members
            out[...] = self.forcing_hat - (self.coef_a * pq[:b] + self.coef_c * pq[b:])
        return out

    def advection_products_hat(self, omega_hat: np.ndarray, track_speed: bool = True) -> np.ndarray:
        r"""Transforms of the Basdevant products ``(uv, u² − v²)``, ``(2B, N, N//2+1)``: a view of an
        internal buffer, valid until the next call. Records ``speed``.

        Invert (ψ̂ → û, v̂: :meth:`invert`) → 2B inverse FFTs → products in physical space → 2B
        forward FFTs (:meth:`products_hat`). The masked advection is ``coef_a * P̂ + coef_c * Q̂``
        (see :mod:`kolmo.kernels`). ``track_speed=False`` skips updating :attr:`speed` (steppers
        track it once per step).
        """
        self.invert(omega_hat)
        return self.products_hat(track_speed)

    def invert(self, omega_hat: np.ndarray) -> None:
        r"""Write the velocities :math:`(\hat u, \hat v)/N^2` of ``omega_hat`` into ``fft2.spec`` ``(2B, N, N//2+1)``.

        The ``1/N²`` (:attr:`velocity_scale`) folds the normalisation of the unnormalised inverse
        FFT into this pass. :func:`kolmo.kernels.cn_stage_invert_numba` writes the same buffer
        the same way at the end of a stage, so a stepper can skip this call for its next stage.
        """
        g, fft = self.grid, self.fft2
        if self.backend == "fftw":
            kernels.velocity_hat_numba(omega_hat, g.kx_odd, g.ky_odd, g.inv_k2, self.velocity_scale, fft.spec)
        else:
            fft.spec[...] = kernels.velocity_hat(omega_hat, g.kx_odd, g.ky_odd, g.inv_k2,
                                                 self.velocity_scale).reshape(fft.spec.shape)

    def products_hat(self, track_speed: bool = True) -> np.ndarray:
        r"""From the velocities in ``fft2.spec`` (written by :meth:`invert`): 2B inverse FFTs, the
        products ``(uv, u² − v²)`` in physical space, 2B forward FFTs; returns ``fft2.spec``
        ``(2B, N, N//2+1)`` holding their transforms. Records :attr:`speed` if ``track_speed``."""
        fft = self.fft2
        fft.inverse()
        if self.backend == "fftw":
            kernels.basdevant_products_numba(fft.real, self.speed, track_speed)
        else:
            b = self.members
            p, q, speed = kernels.basdevant_products(fft.real[:b], fft.real[b:])
            if track_speed:
                self.speed[:] = speed
            fft.real[:b], fft.real[b:] = p, q
        fft.forward()
        return fft.spec

    def advection_hat(self, omega_hat: np.ndarray) -> np.ndarray:
        r"""Dealiased :math:`P\,\widehat{u\cdot\nabla\omega}` ``(B, N, N//2+1)`` (a new array)."""
        pq = self.advection_products_hat(omega_hat)
        b = self.members
        return self.coef_a * pq[:b] + self.coef_c * pq[b:]

    def implicit_terms(self, omega_hat: np.ndarray) -> np.ndarray:
        r""":math:`L\hat\omega = -(\nu|k|^2+\mu)\hat\omega`."""
        return self.linear * omega_hat

    def implicit_solve(self, rhs_hat: np.ndarray, gamma: float) -> np.ndarray:
        r"""Solve :math:`(1 - \gamma L)\hat x = \hat y` (diagonal), i.e. :math:`\hat x = \hat y/(1-\gamma L)`."""
        return rhs_hat / (1.0 - gamma * self.linear)

    def rhs(self, omega_hat: np.ndarray) -> np.ndarray:
        """Full deterministic tendency (explicit + implicit), a new array (for tests and datasets)."""
        out = np.empty_like(omega_hat)
        self.explicit_terms(omega_hat, out)
        return out + self.implicit_terms(omega_hat)

    def describe(self) -> dict[str, object]:
        return {"nu": self.nu, "mu": self.mu, "advection": self.advection,
                "advection_form": "Basdevant: (dxx - dyy)(uv) + dxdy(v^2 - u^2), products in physical space, 2/3-rule mask on the result"}
