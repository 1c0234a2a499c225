r"""IMEX time steppers for :math:`\dot u = N(u) + s + L u` with diagonal :math:`L`.

Each factory ``stepper(equation, dt) -> Stepper`` returns an object that advances the
spectral state *in place*: ``step(u_hat, tendency_hat)``. ``N`` is
``equation.explicit_terms`` (advection + deterministic forcing), ``L`` is
``equation.linear`` (:math:`-(\nu|k|^2+\mu)`, treated implicitly) and ``s`` is the
*step-constant tendency* (stochastic forcing, closure) evaluated once per step and held
fixed over the stages; every scheme integrates a constant exactly (explicit weights sum to 1).

==========  ======  ====================================================================
name        stages  order (measured in ``tests/kolmo/test_stepping.py``)
==========  ======  ====================================================================
cn-euler    1       1 (Crank–Nicolson on L, forward Euler on N): the reference code's scheme
cn-rk3      3       3 on N alone, 2 on L alone and on the coupled problem
                    (Spalart, Moser & Rogers 1991, J. Comput. Phys. 96, 297, Eq. (20): the
                    low-storage RK3 γ = (8/15, 5/12, 3/4), ζ = (0, −17/60, −5/12)). Default.
                    Not the coefficients of jax-cfd's ``crank_nicolson_rk3``, which uses
                    Williamson's (1980) 2N-storage RK3 (A = 0, −5/9, −153/128;
                    B = 1/3, 15/16, 8/15) with Crank–Nicolson substeps.
ars343      4       3 on the coupled problem; L-stable implicit part
                    (Ascher, Ruuth & Spiteri 1997, Appl. Numer. Math. 25, 151, §2.7)
==========  ======  ====================================================================
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from numba import njit

from kolmo import kernels
from kolmo.errors import ConfigurationError
from kolmo.fftw_numba import fftw_execute


class Equation(Protocol):
    """What a stepper needs from an equation (see :class:`kolmo.equation.VorticityEquation`)."""

    linear: np.ndarray

    def explicit_terms(self, u: np.ndarray, out: np.ndarray) -> np.ndarray: ...


class Stepper:
    """Base class: ``name``, ``order`` (nominal, coupled IMEX), ``evaluations`` of N per step."""

    name: str = ""
    order: int = 0
    evaluations: int = 0

    def __init__(self, equation: Equation, dt: float) -> None:
        if not dt > 0:
            raise ConfigurationError(f"time step dt must be positive, got {dt}")
        self.equation, self.dt = equation, float(dt)
        self._explicit: np.ndarray | None = None
        self._previous: np.ndarray | None = None

    def _buffers(self, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self._explicit is None or self._explicit.shape != u.shape:
            self._explicit = np.zeros_like(u)
            self._previous = np.zeros_like(u)
        return self._explicit, self._previous  # type: ignore[return-value]

    def __call__(self, u: np.ndarray, tendency: np.ndarray | None = None) -> None:
        raise NotImplementedError



class _LowStorageCN(Stepper):
    r"""Stages :math:`u \leftarrow [u + \Delta t(\alpha_k L u + \gamma_k N_k + \zeta_k N_{k-1})]/(1-\Delta t\beta_k L)`.

    The diagonal factors are precomputed once; with a :class:`~kolmo.equation.VorticityEquation`
    on the FFTW backend the mask, forcing and tendency are fused into the stage update, and every
    stage but the last also inverts the updated state for the next stage in the same pass. Where the
    equation has :attr:`~kolmo.equation.VorticityEquation.numba_plans` (one FFTW thread) the whole
    step runs compiled (:func:`_cn_step_compiled`); otherwise the same calls are made from Python.
    """

    alphas: tuple[float, ...] = ()
    betas: tuple[float, ...] = ()
    gammas: tuple[float, ...] = ()
    zetas: tuple[float, ...] = ()

    def __init__(self, equation: Equation, dt: float) -> None:
        super().__init__(equation, dt)
        lin = equation.linear
        # (S, 2, N, N//2+1): explicit gain (1 + αΔtL)/(1 − βΔtL) and implicit gain 1/(1 − βΔtL) of each stage
        self._gain_stack = np.stack([np.stack([(1.0 + a * self.dt * lin) / (1.0 - b * self.dt * lin),
                                               1.0 / (1.0 - b * self.dt * lin)]) for a, b in zip(self.alphas, self.betas)])
        self._gains = [(pair[0], pair[1]) for pair in self._gain_stack]
        self._fused = (getattr(equation, "advection", False) and getattr(equation, "backend", "") == "fftw"
                       and hasattr(equation, "products_hat"))
        self._compiled = self._fused and getattr(equation, "numba_plans", None) is not None
        if self._compiled:
            self._gamma_dt = np.array(self.gammas) * self.dt
            self._zeta_dt = np.array(self.zetas) * self.dt

    def __call__(self, u: np.ndarray, tendency: np.ndarray | None = None) -> None:
        explicit, previous = self._buffers(u)
        use_t = tendency is not None
        t = tendency if use_t else explicit
        eq = self.equation
        if self._compiled:
            g, fft, plans = eq.grid, eq.fft2, eq.numba_plans  # type: ignore[attr-defined]
            _cn_step_compiled(u, t, use_t, previous, fft.spec, fft.real, eq.speed, plans.execute,  # type: ignore[attr-defined]
                              plans.inverse, plans.forward, eq.coef_a, eq.coef_c, eq.forcing_hat,  # type: ignore[attr-defined]
                              g.kx_odd, g.ky_odd, g.inv_k2, eq.velocity_scale, self._gain_stack,  # type: ignore[attr-defined]
                              self._gamma_dt, self._zeta_dt)
            return
        last = len(self._gains) - 1
        for k, ((eg, ig), g, z) in enumerate(zip(self._gains, self.gammas, self.zetas)):
            if self._fused:
                # invert → advect → stage update; every stage but the last also writes the next
                # stage's velocities in the same pass (cn_stage_invert_numba), so only the first
                # stage inverts on its own: ω̂ may change between steps (restarts, set_state).
                if k == 0:
                    eq.invert(u)  # type: ignore[attr-defined]
                pq = eq.products_hat(track_speed=k == 0)  # type: ignore[attr-defined]
                if k < last:
                    gr = eq.grid  # type: ignore[attr-defined]
                    kernels.cn_stage_invert_numba(u, pq, eq.coef_a, eq.coef_c, eq.forcing_hat, t,  # type: ignore[attr-defined]
                                                  previous, eg, ig, g * self.dt, z * self.dt, use_t,
                                                  gr.kx_odd, gr.ky_odd, gr.inv_k2, eq.velocity_scale)  # type: ignore[attr-defined]
                else:
                    kernels.cn_stage_advective_numba(u, pq, eq.coef_a, eq.coef_c, eq.forcing_hat, t,  # type: ignore[attr-defined]
                                                     previous, eg, ig, g * self.dt, z * self.dt, use_t)
            else:
                eq.explicit_terms(u, explicit)
                kernels.cn_stage_numba(u, explicit, t, previous, eg, ig, g * self.dt, z * self.dt, use_t)


@njit(cache=True)
def _cn_step_compiled(u, tendency, use_tendency, previous, spec, real, speed, execute, plan_inverse, plan_forward,
                      coef_a, coef_c, forcing_hat, kx_odd, ky_odd, inv_k2, scale, gains, gamma_dt,
                      zeta_dt):  # pragma: no cover  (compiled)
    """One step of :class:`_LowStorageCN` on the fused path, compiled: the same kernels and transforms,
    in the same order, as its Python loop, with the transforms run by :func:`kolmo.fftw_numba.fftw_execute`
    (``gains`` ``(S, 2, N, N//2+1)``: explicit and implicit gain of each stage)."""
    stages = gains.shape[0]
    kernels.velocity_hat_numba(u, kx_odd, ky_odd, inv_k2, scale, spec)
    for k in range(stages):
        fftw_execute(execute, plan_inverse)
        kernels.basdevant_products_numba(real, speed, k == 0)
        fftw_execute(execute, plan_forward)
        if k < stages - 1:
            kernels.cn_stage_invert_numba(u, spec, coef_a, coef_c, forcing_hat, tendency, previous, gains[k, 0],
                                          gains[k, 1], gamma_dt[k], zeta_dt[k], use_tendency, kx_odd, ky_odd,
                                          inv_k2, scale)
        else:
            kernels.cn_stage_advective_numba(u, spec, coef_a, coef_c, forcing_hat, tendency, previous, gains[k, 0],
                                             gains[k, 1], gamma_dt[k], zeta_dt[k], use_tendency)
    return u


class CrankNicolsonEuler(_LowStorageCN):
    r"""Crank–Nicolson on L, forward Euler on N (first order): the reference code's scheme.

    .. math:: \hat\omega^{n+1} = \frac{\hat\omega^n + \Delta t(N^n + s) + \tfrac12\Delta t L\hat\omega^n}
              {1 - \tfrac12\Delta t L}
    """

    name, order, evaluations = "cn-euler", 1, 1
    alphas, betas, gammas, zetas = (0.5,), (0.5,), (1.0,), (0.0,)


class CrankNicolsonRK3(_LowStorageCN):
    r"""Low-storage RK3 on N with Crank–Nicolson substeps on L (Spalart, Moser & Rogers 1991).

    Coefficients (SMR91 Eq. 20): :math:`\gamma = (8/15, 5/12, 3/4)`,
    :math:`\zeta = (0, -17/60, -5/12)`, :math:`\alpha = (29/96, -3/40, 1/6)`,
    :math:`\beta = (37/160, 5/24, 1/6)`, with :math:`\alpha_k + \beta_k = \gamma_k + \zeta_k`.
    Third order for the explicit terms, second order for the implicit terms and hence for
    the coupled problem (measured in the tests). Three evaluations of N per step.
    """

    name, order, evaluations = "cn-rk3", 2, 3
    alphas = (29 / 96, -3 / 40, 1 / 6)
    betas = (37 / 160, 5 / 24, 1 / 6)
    gammas = (8 / 15, 5 / 12, 3 / 4)
    zetas = (0.0, -17 / 60, -5 / 12)


def _ars343_tableau() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ARS(3,4,3) tableaux (implicit A, explicit Â, weights b = b̂), ARS97 §2.7."""
    roots = np.roots([6.0, -18.0, 9.0, -1.0])  # γ: root of 6x³ − 18x² + 9x − 1 in (1/6, 1/2)
    g = float(np.real(roots[(np.abs(np.imag(roots)) < 1e-12) & (np.real(roots) > 1 / 6)
                            & (np.real(roots) < 0.5)][0]))
    b1 = -1.5 * g * g + 4 * g - 0.25
    b2 = 1.5 * g * g - 5 * g + 1.25
    A = np.array([[0, 0, 0, 0], [0, g, 0, 0], [0, (1 - g) / 2, g, 0], [0, b1, b2, g]], dtype=float)
    a4 = 0.5529291479  # ARS97's â42 = â43; â32 then from the order-3 condition Σ b_i â_ij c_j = 1/6
    c3 = (1 + g) / 2
    a32 = (1 / 6 - g * a4 * (g + c3)) / (b2 * g)  # = 0.3966543747… as printed in ARS97
    E = np.array([[0, 0, 0, 0], [g, 0, 0, 0], [(1 + g) / 2 - a32, a32, 0, 0], [1 - 2 * a4, a4, a4, 0]])
    b = np.array([0.0, b1, b2, g])
    return A, E, b


class ARS343(Stepper):
    r"""Third-order L-stable IMEX Runge–Kutta ARS(3,4,3) (Ascher, Ruuth & Spiteri 1997).

    Stages :math:`Y_i = [u + \Delta t\sum_{j<i}(\hat a_{ij}N_j + a_{ij}LY_j)]/(1-\Delta t a_{ii}L)`,
    :math:`u^{n+1} = u + \Delta t\sum_j b_j(N_j + LY_j)`, with :math:`N_j = N(Y_j) + s`.
    Four evaluations of N per step; third order on the coupled problem.
    """

    name, order, evaluations = "ars343", 3, 4

    def __init__(self, equation: Equation, dt: float) -> None:
        super().__init__(equation, dt)
        self.A, self.E, self.b = _ars343_tableau()
        self._stack: np.ndarray | None = None

    def __call__(self, u: np.ndarray, tendency: np.ndarray | None = None) -> None:
        if self._stack is None or self._stack.shape[1:] != u.shape:
            self._stack = np.zeros((8,) + u.shape, dtype=u.dtype)  # N_1..4, LY_1..4
        nst, lst = self._stack[:4], self._stack[4:]
        lin, dt = self.equation.linear, self.dt
        y = u.copy()
        for i in range(4):
            if i > 0:
                y[...] = u
                for j in range(i):
                    y += dt * (self.E[i, j] * nst[j] + self.A[i, j] * lst[j])
                y /= 1.0 - dt * self.A[i, i] * lin
            self.equation.explicit_terms(y, nst[i])
            if tendency is not None:
                nst[i] += tendency
            np.multiply(lin, y, out=lst[i])
        for j in range(4):
            if self.b[j] != 0.0:
                u += dt * self.b[j] * (nst[j] + lst[j])


STEPPERS: dict[str, type[Stepper]] = {
    "cn-euler": CrankNicolsonEuler,
    "cn-rk3": CrankNicolsonRK3,
    "ars343": ARS343,
}
DEFAULT_STEPPER = "cn-rk3"


def make_stepper(name: str, equation: Equation, dt: float) -> Stepper:
    """Build the stepper ``name``; an unknown name lists the valid ones."""
    try:
        cls = STEPPERS[name]
    except KeyError:
        raise ConfigurationError(f"unknown time stepper {name!r}; valid: {', '.join(STEPPERS)}") from None
    return cls(equation, dt)
