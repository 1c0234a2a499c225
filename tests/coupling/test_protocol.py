"""The Closure protocol: sums and scalings add tendencies, requirements combine, restart state and
the checks every closure gets (shape, dtype, non-finite policy)."""

from __future__ import annotations

import numpy as np
import pytest

from coupling.eddy_viscosity import Leith, Smagorinsky
from coupling.errors import ClosureShapeError, DtypeError, GridMismatchError, NonFiniteClosureError, TargetMismatchError
from coupling.learned import ArtifactClosure
from coupling.protocol import Closure, NoClosure, ScaledClosure, SumClosure
from kolmo.errors import ConfigurationError
from kolmo.simulation import ClosureHook, Simulation
from tests.coupling.conftest import coarse_state, reduced_config

OMEGA = np.random.default_rng(1).standard_normal((3, 16, 16))


class Constant(Closure):
    """``H = value`` everywhere (any target unless told)."""

    def __init__(self, value: float, target: str = "any", **kw) -> None:  # noqa: ANN003
        super().__init__(**kw)
        self.value, self.target, self.name = value, target, f"const({value:g})"

    def tendency(self, state) -> np.ndarray:  # noqa: ANN001
        return np.full(np.shape(state.omega), self.value)


def test_sum_and_scale_of_closures_add_and_scale_their_tendencies() -> None:
    s, l_ = Smagorinsky(), Leith()
    st = coarse_state(OMEGA, L=2 * np.pi)
    hs, hl = s(st), l_(st)
    combo = s + 2.0 * l_ - 0.5 * s
    assert isinstance(combo, SumClosure) and len(combo.terms) == 3  # flattened
    np.testing.assert_allclose(combo(st), 0.5 * hs + 2.0 * hl, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose((-s)(st), -hs)
    assert sum([s, l_]).name == "smagorinsky + leith"
    np.testing.assert_array_equal((NoClosure() + Constant(2.0))(st), 2.0)
    assert isinstance(3 * s, ScaledClosure) and (3 * s).target == "sgs"
    assert isinstance(combo, ClosureHook)
    assert s.calls == 4 and l_.calls == 2  # each term counts its own calls (s: direct, twice in combo, in -s)


def test_composition_combines_requirements_and_refuses_conflicting_targets(make_artifact) -> None:
    art = ArtifactClosure(make_artifact())
    combo = art + Constant(1.0)
    assert combo.target == "missing-physics-noisy" and combo.grid_n == 16 and combo.preset == "dong2026"
    Simulation(reduced_config(16), closure=combo)  # validates through the terms
    with pytest.raises(TargetMismatchError, match=r"cannot combine closures with targets \['missing-physics-noisy', 'sgs'\]"):
        art + Smagorinsky()
    with pytest.raises(GridMismatchError, match="different grid_n: 16 and 32"):
        art + ArtifactClosure(make_artifact(name="b.pt", grid=32, module=__import__(
            "tests.coupling.conftest", fromlist=["LinearNoise"]).LinearNoise(32)))
    with pytest.raises(TypeError):
        art + 1.5  # only closures (and 0, for sum()) add


def test_composite_restart_state_round_trips_through_its_terms(make_artifact) -> None:
    a = ArtifactClosure(make_artifact(), every=3, jitter=1e-3, seed=4)
    combo = 0.5 * a + Constant(1.0)
    for step in range(4):
        combo(coarse_state(OMEGA, step))
    saved = combo.get_state()
    assert "0.0.held_hat" in saved and saved["calls"] == 4
    expected = [combo(coarse_state(OMEGA, step)) for step in range(4, 8)]
    b = ArtifactClosure(make_artifact(name="same.pt"), every=3, jitter=1e-3, seed=99)
    again = 0.5 * b + Constant(1.0)
    again.set_state(saved)
    for step, h in zip(range(4, 8), expected):
        np.testing.assert_array_equal(again(coarse_state(OMEGA, step)), h)
    assert again.calls == 8 and b.samples == a.samples


def test_every_closure_gets_shape_dtype_and_non_finite_checks() -> None:
    class Bad(Closure):
        name = "bad"

        def __init__(self, out, **kw) -> None:  # noqa: ANN001, ANN003
            super().__init__(**kw)
            self.out = out

        def tendency(self, state):  # noqa: ANN001
            return self.out

    st = coarse_state(OMEGA)
    with pytest.raises(ClosureShapeError, match=r"closure bad returned shape \(16, 16\), expected \(3, 16, 16\)"):
        Bad(np.zeros((16, 16)))(st)
    with pytest.raises(DtypeError, match="closure bad returned dtype complex128, expected a real floating dtype"):
        Bad(np.zeros((3, 16, 16), dtype=complex))(st)
    nan = np.ones((3, 16, 16))
    nan[2, 3, 4] = np.inf
    with pytest.raises(NonFiniteClosureError, match=r"closure bad returned NaN/inf at step 0 \(t = 0\) for member\(s\) \[2\]"):
        Bad(nan)(st)
    zero = Bad(nan, nonfinite="zero-and-count")
    h = zero(st)
    np.testing.assert_array_equal(h[2], 0.0)
    np.testing.assert_array_equal(h[:2], 1.0)
    assert zero.describe()["closure_nonfinite_events"] == 1 and zero.describe()["closure_nonfinite_members"] == 1
    assert np.isinf(nan[2, 3, 4])  # the closure's own array is not modified
    with pytest.raises(ConfigurationError, match="unknown non-finite policy 'ignore'; valid: raise, zero"):
        Bad(nan, nonfinite="ignore")


def test_a_closure_is_the_solvers_hook_itself_not_wrapped_and_not_checked_twice() -> None:
    from kolmo.presets import preset
    from kolmo.simulation import ClosureHook, Simulation

    c = NoClosure()
    assert isinstance(c, ClosureHook)
    assert Simulation(preset("kolmogorov", 16), closure=c).closure is c


class BadHat(Closure):
    """A spectral closure returning a fixed ``rfft2(H)`` (any shape/dtype); never its physical tendency."""

    name, spectral = "badhat", True

    def __init__(self, out, **kw) -> None:  # noqa: ANN001, ANN003
        super().__init__(**kw)
        self.out = out

    def tendency(self, state):  # noqa: ANN001
        raise AssertionError("a spectral closure is called through call_hat, not __call__")

    def tendency_hat(self, state):  # noqa: ANN001
        return self.out


def test_spectral_closures_get_the_same_shape_and_non_finite_checks_through_call_hat() -> None:
    st = coarse_state(OMEGA)
    with pytest.raises(ClosureShapeError, match=r"closure badhat returned spectral float64 \(3, 16, 16\), expected "
                                                r"complex \(3, 16, 9\)"):
        BadHat(np.zeros((3, 16, 16))).call_hat(st)
    nan = np.ones((3, 16, 9), dtype=complex)
    nan[1, 0, 0] = np.nan
    with pytest.raises(NonFiniteClosureError, match=r"for member\(s\) \[1\]"):
        BadHat(nan).call_hat(st)
    zero = BadHat(nan, nonfinite="zero")
    h = zero.call_hat(st)
    assert np.all(h[1] == 0) and np.all(h[0] == 1) and zero.calls == 1 and zero.nonfinite_members == 1


def test_the_solver_takes_the_spectral_path_through_the_hook_and_leaves_the_checks_to_the_closure() -> None:
    from kolmo.presets import preset
    from kolmo.simulation import CallableHook, ClosureHook, Simulation

    nan = np.zeros((2, 16, 9), dtype=complex)
    nan[1, 2, 3] = np.nan
    cfg = preset("kolmogorov", 16, members=2)
    c = BadHat(nan, nonfinite="zero")
    assert isinstance(c, ClosureHook) and not CallableHook(lambda s: s.omega).spectral
    sim = Simulation(cfg, closure=c)
    sim.advance()
    assert c.calls == 1 and c.nonfinite_events == 1 and c.nonfinite_members == 1  # zeroed by the closure's policy
    assert np.isfinite(sim.omega_hat).all()
    with pytest.raises(NonFiniteClosureError, match=r"closure badhat returned NaN/inf at step 0"):
        Simulation(cfg, closure=BadHat(nan)).advance()
