r"""Eddy-viscosity closures for LES (target ``"sgs"``): Smagorinsky and Leith.

Both model the subgrid term as a down-gradient flux of resolved vorticity with a local eddy
viscosity :math:`\nu_t(x)`:

.. math:: H = \nabla\cdot(\nu_t\,\nabla\omega), \qquad \Delta = L/N,

Smagorinsky (1963)
    :math:`\nu_t = (C_S\Delta)^2\,|S|`, :math:`|S| = \sqrt{2 S_{ij}S_{ij}}
    = \sqrt{4\psi_{xy}^2 + (\psi_{yy} - \psi_{xx})^2}` with :math:`u = \partial_y\psi`,
    :math:`v = -\partial_x\psi`.
Leith (1968, 1996)
    :math:`\nu_t = (C_L\Delta)^3\,|\nabla\omega|`: scaled on the enstrophy cascade of 2D
    turbulence, so it switches off in smooth shear where Smagorinsky still acts.

Coefficients (defaults; conventional literature values, **not tuned** to our presets):

* :data:`SMAGORINSKY_C` = 0.17 — Lilly's (1967) estimate from a Kolmogorov spectrum; values
  0.1–0.2 are in use (pyqg's default is 0.1). For 2D turbulence, Guan et al. (2022, 2025,
  arXiv 2504.09670) find online-learned and Lilly-type estimates of the same order.
* :data:`LEITH_C` = 1/π ≈ 0.318 — the "Λ = 1" value of Fox-Kemper & Menemenlis (2008),
  who write :math:`\nu_t = (\Lambda\Delta/\pi)^3|\nabla\omega|` (Λ = 1–2 in ocean models).

Numerics: derivatives are spectral on the solver's :class:`kolmo.grid.Grid` (first derivatives
drop the Nyquist mode, as the solver's advection does); the products :math:`|S|`,
:math:`\nu_t\nabla\omega` are formed in physical space without dealiasing. Because the spectral
derivative is skew-adjoint on the grid, the enstrophy injection is exactly (to round-off)
:math:`\langle\omega H\rangle = -\langle\nu_t|\nabla\omega|^2\rangle \le 0`; the energy
injection :math:`\langle\psi H\rangle = -\langle\nu_t\nabla\psi\cdot\nabla\omega\rangle` is
negative for turbulent fields but not sign-definite in general.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from coupling.protocol import Closure
from kolmo.errors import ConfigurationError

if TYPE_CHECKING:
    from kolmo.grid import Grid
    from kolmo.simulation import CoarseState

__all__ = ["SMAGORINSKY_C", "LEITH_C", "EddyViscosity", "Smagorinsky", "Leith"]

SMAGORINSKY_C = 0.17
"""Default Smagorinsky coefficient :math:`C_S` (Lilly 1967)."""
LEITH_C = 1.0 / np.pi
"""Default Leith coefficient :math:`C_L` (Λ = 1 of Fox-Kemper & Menemenlis 2008)."""


def _irfft2(field_hat: np.ndarray, n: int) -> np.ndarray:
    return np.fft.irfft2(field_hat, s=(n, n))


class EddyViscosity(Closure):
    """Base of the eddy-viscosity closures: ``H = ∇·(ν_t ∇ω)`` with ``ν_t`` from :meth:`viscosity`.

    Parameters
    ----------
    coefficient
        :math:`C_S` or :math:`C_L` (dimensionless, > 0).
    delta
        Filter width Δ; default: the grid spacing ``L/N`` of the state it is called with.
    nonfinite
        Non-finite policy (see :class:`~coupling.protocol.Closure`).
    """

    target = "sgs"

    def __init__(self, coefficient: float, delta: float | None = None, nonfinite: str = "raise") -> None:
        super().__init__(nonfinite=nonfinite)
        if not (np.isfinite(coefficient) and coefficient > 0):
            raise ConfigurationError(f"{type(self).__name__} coefficient must be positive and finite, "
                                     f"got {coefficient!r}")
        if delta is not None and not (np.isfinite(delta) and delta > 0):
            raise ConfigurationError(f"filter width delta must be positive and finite, got {delta!r}")
        self.coefficient = float(coefficient)
        self.delta = delta
        self.last_viscosity: np.ndarray | None = None

    def viscosity(self, grid: Grid, omega_hat: np.ndarray, grad: np.ndarray, delta: float) -> np.ndarray:
        """Eddy viscosity ``ν_t`` ``(B, N, N)`` (length²/time)."""
        raise NotImplementedError

    def tendency(self, state: CoarseState) -> np.ndarray:
        g = state.grid
        n = g.n
        w = state.omega_hat
        ikx = 1j * g.kx_odd[None, :]
        iky = 1j * g.ky_odd[:, None]
        grad = _irfft2(np.stack([ikx * w, iky * w]), n)  # (2, B, N, N): ω_x, ω_y
        delta = self.delta if self.delta is not None else g.dx
        nu_t = self.viscosity(g, w, grad, delta)
        self.last_viscosity = nu_t
        flux_hat = np.fft.rfft2(nu_t[None] * grad)
        return _irfft2(ikx * flux_hat[0] + iky * flux_hat[1], n)

    def describe(self) -> dict[str, Any]:
        out = super().describe()
        out["closure_coefficient"] = self.coefficient
        if self.delta is not None:
            out["closure_delta"] = self.delta
        return out


class Smagorinsky(EddyViscosity):
    r"""Smagorinsky: :math:`\nu_t = (C_S\Delta)^2\sqrt{4\psi_{xy}^2 + (\psi_{yy}-\psi_{xx})^2}`."""

    name = "smagorinsky"

    def __init__(self, c_s: float = SMAGORINSKY_C, delta: float | None = None, nonfinite: str = "raise") -> None:
        super().__init__(c_s, delta, nonfinite)

    def viscosity(self, grid: Grid, omega_hat: np.ndarray, grad: np.ndarray, delta: float) -> np.ndarray:
        psi = omega_hat * grid.inv_k2
        kx, ky = grid.kx[None, :], grid.ky[:, None]
        s = _irfft2(np.stack([-(grid.kx_odd[None, :] * grid.ky_odd[:, None]) * psi,  # ψ_xy
                              (kx**2 - ky**2) * psi]), grid.n)  # ψ_yy − ψ_xx
        strain = np.sqrt(4.0 * s[0] ** 2 + s[1] ** 2)
        return (self.coefficient * delta) ** 2 * strain


class Leith(EddyViscosity):
    r"""Leith: :math:`\nu_t = (C_L\Delta)^3|\nabla\omega|`."""

    name = "leith"

    def __init__(self, c_l: float = LEITH_C, delta: float | None = None, nonfinite: str = "raise") -> None:
        super().__init__(c_l, delta, nonfinite)

    def viscosity(self, grid: Grid, omega_hat: np.ndarray, grad: np.ndarray, delta: float) -> np.ndarray:
        return (self.coefficient * delta) ** 3 * np.sqrt(grad[0] ** 2 + grad[1] ** 2)
