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

Cost: one call is two planned FFTW transforms of complex fields (:class:`kolmo.fft.ComplexFFT2`:
the real fields travel in pairs, :math:`\omega_x + i\omega_y` and, for Smagorinsky,
:math:`(\psi_{yy} - \psi_{xx}) + 2i\psi_{xy}`; ``2B`` or ``B`` inverse, ``B`` forward; FFTW's complex
transform of ``B`` fields is cheaper than its real one of ``2B`` at these sizes) and three Numba
kernels on preallocated buffers (:mod:`coupling.eddy_viscosity_kernels`, whose NumPy reference the
tests compare with). The solver takes ``Ĥ`` spectrally (``spectral = True``, :meth:`EddyViscosity.call_hat`,
whose finiteness check is made inside the last kernel); the physical :meth:`~EddyViscosity.tendency`
adds a ``B`` inverse. Step cost against the bare LES step: benchmarks/RESULTS.md §10.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from coupling import eddy_viscosity_kernels as k
from coupling.protocol import Closure
from kolmo.errors import ConfigurationError
from kolmo.fft import ComplexFFT2, RealFFT2

if TYPE_CHECKING:
    from kolmo.grid import Grid
    from kolmo.simulation import CoarseState

__all__ = ["SMAGORINSKY_C", "LEITH_C", "EddyViscosity", "Smagorinsky", "Leith"]

SMAGORINSKY_C = 0.17
"""Default Smagorinsky coefficient :math:`C_S` (Lilly 1967)."""
LEITH_C = 1.0 / np.pi
"""Default Leith coefficient :math:`C_L` (Λ = 1 of Fox-Kemper & Menemenlis 2008)."""
CHUNK_BYTES = 1 << 19
"""Members go through the transforms in chunks whose buffers fit in about this many bytes (a core's
L2 cache): at 64² and 8 members the whole batch at once spills to L3."""


class _Workspace:
    """Planned transforms, buffers and spectral multipliers of one (grid, B, kind); the transforms
    are sized for ``chunk`` members at a time (:data:`CHUNK_BYTES`)."""

    def __init__(self, grid: Grid, members: int, strain: bool, chunk: int) -> None:
        n = grid.n
        self.key = (n, float(grid.L), members, strain)
        self.chunk = chunk
        self.grad = ComplexFFT2(n, (2 if strain else 1) * chunk)  # γ (and σ) spectral -> physical
        self.flux = ComplexFFT2(n, chunk)  # ν_t γ -> spectral
        self.out = RealFFT2(n, members)  # Ĥ (out.spec); H -> physical only for tendency()
        self.nu_t = np.zeros((members, n, n))
        self.finite = np.ones(members, dtype=np.bool_)  # per member: Ĥ finite (from the divergence kernel)
        self.sigma_mult = k.strain_multiplier(grid.kx, grid.ky, grid.kx_odd, grid.ky_odd, grid.inv_k2, 1.0 / (n * n))


class EddyViscosity(Closure):
    """Base of the eddy-viscosity closures: ``H = ∇·(ν_t ∇ω)`` with ``ν_t = factor(Δ) · |S|`` or
    ``factor(Δ) · |∇ω|`` (:attr:`kind`).

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
        self.last_viscosity: np.ndarray | None = None  # ν_t (B, N, N) of the last call (a buffer)
        self._workspace: _Workspace | None = None

    #: ``"smagorinsky"`` or ``"leith"`` (which viscosity the kernels form).
    kind = ""

    def factor(self, delta: float) -> float:
        r"""The prefactor of ``ν_t``: :math:`(C_S\Delta)^2` or :math:`(C_L\Delta)^3`."""
        raise NotImplementedError

    spectral = True  # the solver takes Ĥ from tendency_hat (no transform of H on either side)

    def _divergence_hat(self, state: CoarseState, scale: float) -> _Workspace:
        """``scale · Ĥ`` into the workspace's ``out.spec``, ``ν_t`` into ``last_viscosity`` and which
        members' Ĥ is finite into ``finite``."""
        g = state.grid
        w = state.omega_hat
        strain = self.kind == "smagorinsky"
        ws = self._workspace
        b_count = w.shape[0]
        if ws is None or ws.key != (g.n, float(g.L), b_count, strain):
            per_member = (8 if strain else 6) * 16 * g.n * g.n  # complex N² fields in the transforms' buffers
            chunk = max(1, min(b_count, CHUNK_BYTES // per_member))
            ws = self._workspace = _Workspace(g, b_count, strain, chunk)
        delta = self.delta if self.delta is not None else g.dx
        flux = k.smagorinsky_flux_numba if strain else k.leith_flux_numba
        w = np.ascontiguousarray(w)
        c = ws.chunk
        for b0 in range(0, b_count, c):
            b1 = min(b0 + c, b_count)
            grad_spec, grad_field, flux_field, flux_spec = ws.grad.spec, ws.grad.field, ws.flux.field, ws.flux.spec
            if b1 - b0 < c:  # a last, partial chunk: the transforms run on their whole buffers
                grad_spec[...] = 0.0
            k.complex_gradients_hat_numba(w[b0:b1], g.kx_odd, g.ky_odd, 1.0 / (g.n * g.n), ws.sigma_mult, strain,
                                          grad_spec)
            ws.grad.inverse()
            flux(grad_field, self.factor(delta), ws.nu_t[b0:b1], flux_field)
            ws.flux.forward()
            k.divergence_hat_numba(flux_spec, g.kx_odd, g.ky_odd, scale, ws.out.spec[b0:b1], ws.finite[b0:b1])
        self.last_viscosity = ws.nu_t
        return ws

    def tendency(self, state: CoarseState) -> np.ndarray:
        """``H`` ``(B, N, N)`` (1/time²), a new array."""
        ws = self._divergence_hat(state, 1.0 / (state.grid.n * state.grid.n))
        ws.out.inverse()
        return ws.out.real.copy()

    def tendency_hat(self, state: CoarseState) -> np.ndarray:
        """``rfft2(H)`` ``(B, N, N//2+1)``: a view of an internal buffer, valid until the next call."""
        return self._divergence_hat(state, 1.0).out.spec

    def call_hat(self, state: CoarseState) -> np.ndarray:
        """:meth:`tendency_hat`, checked and counted like :meth:`Closure.call_hat`: the shape and dtype
        are the workspace's own, and finiteness comes from the divergence kernel's pass (no second
        pass over Ĥ); non-finite members get the closure's policy (zeroed in place under ``"zero"``)."""
        ws = self._divergence_hat(state, 1.0)
        bad = self.apply_nonfinite_policy(ws.finite, state)
        if bad.size:
            ws.out.spec[bad] = 0.0
        self.calls += 1
        return ws.out.spec

    def describe(self) -> dict[str, Any]:
        out = super().describe()
        out["closure_coefficient"] = self.coefficient
        if self.delta is not None:
            out["closure_delta"] = self.delta
        return out


class Smagorinsky(EddyViscosity):
    r"""Smagorinsky: :math:`\nu_t = (C_S\Delta)^2\sqrt{4\psi_{xy}^2 + (\psi_{yy}-\psi_{xx})^2}`."""

    name = kind = "smagorinsky"

    def __init__(self, c_s: float = SMAGORINSKY_C, delta: float | None = None, nonfinite: str = "raise") -> None:
        super().__init__(c_s, delta, nonfinite)

    def factor(self, delta: float) -> float:
        return (self.coefficient * delta) ** 2


class Leith(EddyViscosity):
    r"""Leith: :math:`\nu_t = (C_L\Delta)^3|\nabla\omega|`."""

    name = kind = "leith"

    def __init__(self, c_l: float = LEITH_C, delta: float | None = None, nonfinite: str = "raise") -> None:
        super().__init__(c_l, delta, nonfinite)

    def factor(self, delta: float) -> float:
        return (self.coefficient * delta) ** 3
