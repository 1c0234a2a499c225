"""Time steppers reach their nominal orders on closed-form problems (measured slopes)."""

from dataclasses import dataclass

import numpy as np
import pytest

from kolmo.errors import ConfigurationError
from kolmo.stepping import STEPPERS, make_stepper


@dataclass
class Bernoulli:
    """u' = λu + c u²: λ implicit (``linear``), c u² explicit. Exact: 1/u = (1/u0 + c/λ)e^{−λt} − c/λ."""

    lam: float
    c: float

    def __post_init__(self) -> None:
        self.linear = np.full((1, 1), self.lam)

    def explicit_terms(self, u: np.ndarray, out: np.ndarray) -> np.ndarray:
        out[...] = self.c * u * u
        return out

    def exact(self, u0: float, t: float) -> float:
        if self.lam == 0:
            return 1.0 / (1.0 / u0 - self.c * t)
        if self.c == 0:
            return u0 * np.exp(self.lam * t)
        return 1.0 / ((1.0 / u0 + self.c / self.lam) * np.exp(-self.lam * t) - self.c / self.lam)


def measured_order(stepper: str, eq: Bernoulli, tendency: float | None = None, t_end: float = 1.0) -> float:
    errors, dts = [], []
    for m in (20, 40, 80):
        dt = t_end / m
        st = make_stepper(stepper, eq, dt)
        u = np.full((1, 1, 1), 0.5 + 0j)
        s = None if tendency is None else np.full((1, 1, 1), tendency + 0j)
        for _ in range(m):
            st(u, s)
        if tendency is None:
            exact = eq.exact(0.5, t_end)
        else:  # u' = λu + s: u = (u0 + s/λ) e^{λt} − s/λ
            exact = (0.5 + tendency / eq.lam) * np.exp(eq.lam * t_end) - tendency / eq.lam
        errors.append(abs(u[0, 0, 0].real - exact))
        dts.append(dt)
    return float(np.polyfit(np.log(dts), np.log(errors), 1)[0])


# nominal orders: (coupled IMEX, explicit term alone, implicit term alone)
NOMINAL = {"cn-euler": (1, 1, 2), "cn-rk3": (2, 3, 2), "ars343": (3, 3, 3)}


@pytest.mark.parametrize("stepper", list(STEPPERS))
def test_stepper_reaches_nominal_order_on_coupled_problem(stepper: str) -> None:
    order = measured_order(stepper, Bernoulli(lam=-2.0, c=0.8))
    assert abs(order - NOMINAL[stepper][0]) < 0.2, order
    assert STEPPERS[stepper].order == NOMINAL[stepper][0]


@pytest.mark.parametrize("stepper", list(STEPPERS))
def test_stepper_order_on_explicit_term_alone(stepper: str) -> None:
    order = measured_order(stepper, Bernoulli(lam=0.0, c=0.8))
    assert abs(order - NOMINAL[stepper][1]) < 0.2, order


@pytest.mark.parametrize("stepper", list(STEPPERS))
def test_stepper_order_on_implicit_term_alone(stepper: str) -> None:
    order = measured_order(stepper, Bernoulli(lam=-2.0, c=0.0))
    assert abs(order - NOMINAL[stepper][2]) < 0.2, order


@pytest.mark.parametrize("stepper", list(STEPPERS))
def test_step_constant_tendency_is_integrated_with_the_scheme_order(stepper: str) -> None:
    """u' = λu + s with s held over the stages (noise, closure): same order as the implicit part."""
    order = measured_order(stepper, Bernoulli(lam=-2.0, c=0.0), tendency=1.5)
    assert order > NOMINAL[stepper][0] - 0.2, order


def test_unknown_stepper_lists_valid_names() -> None:
    with pytest.raises(ConfigurationError, match="cn-rk3"):
        make_stepper("rk45", Bernoulli(-1.0, 0.0), 0.1)
    with pytest.raises(ConfigurationError, match="positive"):
        make_stepper("cn-rk3", Bernoulli(-1.0, 0.0), 0.0)


def _forced_pair(backend: str, members: int = 2):
    from kolmo.equation import VorticityEquation
    from kolmo.forcing import kolmogorov_forcing
    from kolmo.grid import Grid

    g = Grid(32)
    eq = VorticityEquation(g, 1e-2, 0.1, kolmogorov_forcing(g), members=members, backend=backend)
    wh = np.fft.rfft2(np.random.default_rng(0).standard_normal((members, 32, 32))) * 0.05
    return eq, wh


@pytest.mark.parametrize("stepper", ["cn-euler", "cn-rk3"])
def test_fused_fftw_stepper_equals_generic_numpy_stepper(stepper: str) -> None:
    """The fused FFTW/Numba path (Basdevant products, fused stage kernel) changes no physics."""
    eq_f, wf = _forced_pair("fftw")
    eq_n, wn = _forced_pair("numpy")
    sf, sn = make_stepper(stepper, eq_f, 0.01), make_stepper(stepper, eq_n, 0.01)
    tend = np.fft.rfft2(np.random.default_rng(1).standard_normal((2, 32, 32))) * 0.01
    for i in range(40):
        sf(wf, tend if i % 2 else None)
        sn(wn, tend if i % 2 else None)
    np.testing.assert_allclose(wf, wn, rtol=0, atol=1e-10 * np.abs(wn).max())


@pytest.mark.parametrize("stepper", ["cn-euler", "cn-rk3"])
def test_compiled_step_equals_the_python_loop(stepper: str) -> None:
    """The whole step compiled (FFTW plans executed from Numba) makes the same calls as the Python loop."""
    eq, w = _forced_pair("fftw", members=3)
    st = make_stepper(stepper, eq, 0.01)
    assert eq.numba_plans is not None and st._compiled
    w_py = w.copy()
    tend = np.fft.rfft2(np.random.default_rng(2).standard_normal((3, 32, 32))) * 0.01
    for i in range(20):
        st(w, tend if i % 2 else None)
        speed = eq.speed.copy()
        st._compiled = False
        st(w_py, tend if i % 2 else None)
        st._compiled = True
        np.testing.assert_array_equal(eq.speed, speed)
    np.testing.assert_allclose(w, w_py, rtol=0, atol=1e-13 * np.abs(w_py).max())
