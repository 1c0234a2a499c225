"""Smagorinsky and Leith: enstrophy and energy are removed, the closures vanish where they should,
and scale with amplitude, coefficient and filter width as their formulas say."""

from __future__ import annotations

import numpy as np
import pytest

from coupling.eddy_viscosity import LEITH_C, SMAGORINSKY_C, Leith, Smagorinsky
from coupling.errors import TargetMismatchError
from kolmo import diagnostics
from kolmo.forcing import member_generators
from kolmo.grid import Grid
from kolmo.initial import initial_vorticity
from kolmo.presets import preset
from kolmo.simulation import CoarseState, Simulation, run_simulation

CLOSURES = [Smagorinsky, Leith]


def state(omega: np.ndarray, grid: Grid) -> CoarseState:
    return CoarseState(omega=omega, omega_hat=np.fft.rfft2(omega), step=0, time=0.0, grid=grid, dt=1e-3)


def turbulent(grid: Grid, members: int = 4, seed: int = 0) -> np.ndarray:
    """Gaussian random fields with the dong2026 spectrum (α = 2.5, τ = 7)."""
    return initial_vorticity("grf", grid, member_generators(seed, members), alpha=2.5, tau=7.0)


@pytest.mark.parametrize("cls", CLOSURES)
@pytest.mark.parametrize("L", [1.0, 2 * np.pi])
def test_enstrophy_injection_is_minus_nu_t_grad_omega_squared_never_positive(cls, L: float) -> None:
    g = Grid(32, L)
    omega = turbulent(g)
    c = cls()
    h = c(state(omega, g))
    w_hat = np.fft.rfft2(omega)
    injected = diagnostics.inner_product(g, w_hat, np.fft.rfft2(h))
    wx = np.fft.irfft2(1j * g.kx_odd[None, :] * w_hat, s=(32, 32))
    wy = np.fft.irfft2(1j * g.ky_odd[:, None] * w_hat, s=(32, 32))
    expected = -np.mean(c.last_viscosity * (wx**2 + wy**2), axis=(-2, -1))
    np.testing.assert_allclose(injected, expected, rtol=1e-10)
    assert np.all(injected < 0)


@pytest.mark.parametrize("cls", CLOSURES)
def test_eddy_viscosity_removes_energy_from_turbulent_fields(cls) -> None:
    g = Grid(32, 1.0)
    for seed in range(3):
        omega = turbulent(g, seed=seed)
        w_hat = np.fft.rfft2(omega)
        h = cls()(state(omega, g))
        energy_in = diagnostics.inner_product(g, w_hat * g.inv_k2, np.fft.rfft2(h))  # <ψ H>
        assert np.all(energy_in < 0)


@pytest.mark.parametrize("cls", CLOSURES)
def test_eddy_viscosity_vanishes_at_rest_and_for_uniform_vorticity(cls) -> None:
    g = Grid(16, 1.0)
    for omega in (np.zeros((2, 16, 16)), np.full((2, 16, 16), 3.0)):  # rest / uniform translation; solid-body spin
        h = cls()(state(omega, g))
        np.testing.assert_allclose(h, 0.0, atol=1e-12)


@pytest.mark.parametrize("cls, power", [(Smagorinsky, 2), (Leith, 3)])
def test_tendency_is_quadratic_in_amplitude_and_scales_as_coefficient_times_delta_to_its_power(cls, power) -> None:
    g = Grid(32, 1.0)
    omega = turbulent(g, members=2)
    h = cls(0.2)(state(omega, g))
    np.testing.assert_allclose(cls(0.2)(state(3 * omega, g)), 9 * h, rtol=1e-10, atol=1e-12 * np.abs(h).max())
    np.testing.assert_allclose(cls(0.4)(state(omega, g)), 2**power * h, rtol=1e-10, atol=1e-12 * np.abs(h).max())
    np.testing.assert_allclose(cls(0.2, delta=2 * g.dx)(state(omega, g)), 2**power * h, rtol=1e-10,
                               atol=1e-12 * np.abs(h).max())


def test_default_coefficients_are_the_documented_ones() -> None:
    assert Smagorinsky().coefficient == SMAGORINSKY_C == 0.17
    assert Leith().coefficient == pytest.approx(1 / np.pi) and LEITH_C == pytest.approx(0.3183, abs=1e-4)


def test_an_les_run_with_smagorinsky_records_energy_and_enstrophy_removed_by_the_closure(tmp_path) -> None:
    cfg = preset("kolmogorov", 32, t_end=1.0, save_every=0.5, members=2)
    run_simulation(cfg, tmp_path / "les.h5", closure=Smagorinsky() + 0.5 * Leith(), planner="estimate")
    import h5py

    with h5py.File(tmp_path / "les.h5") as h5:
        e, z = h5["diagnostics/closure_energy"][()], h5["diagnostics/closure_enstrophy"][()]
        assert np.all(z < 0) and np.mean(e) < 0
        assert h5.attrs["closure"] == "smagorinsky + 0.5*(leith)" and h5.attrs["closure_target"] == "sgs"
        assert h5.attrs["closure_calls"] == cfg.steps


def test_eddy_viscosity_in_the_reduced_model_is_a_target_mismatch() -> None:
    with pytest.raises(TargetMismatchError, match="closure smagorinsky has target 'sgs', which needs advection on"):
        Simulation(preset("dong2026", 16, advection=False), closure=Smagorinsky())


@pytest.mark.parametrize("cls", CLOSURES)
@pytest.mark.parametrize("members", [1, 3, 6])  # 6: chunks of 4 + 2 (Smagorinsky) and 5 + 1 (Leith) at 32²
def test_planned_numba_eddy_viscosity_equals_its_numpy_reference(cls, members: int) -> None:
    from coupling.eddy_viscosity_kernels import eddy_viscosity_tendency_reference

    g = Grid(32, 2 * np.pi)
    c = cls(0.3)
    for seed in range(2):  # the second call reuses the planned buffers
        omega = turbulent(g, members=members, seed=seed)
        w_hat = np.fft.rfft2(omega)
        h = c(state(omega, g))
        h_ref, nu_ref = eddy_viscosity_tendency_reference(w_hat, g.kx, g.ky, g.kx_odd, g.ky_odd, g.inv_k2, c.kind,
                                                          c.factor(g.dx))
        np.testing.assert_allclose(h, h_ref, rtol=1e-9, atol=1e-12 * np.abs(h_ref).max())
        np.testing.assert_allclose(c.last_viscosity, nu_ref, rtol=1e-9, atol=1e-12 * nu_ref.max())


@pytest.mark.parametrize("cls", CLOSURES)
def test_the_spectral_path_the_solver_takes_gives_the_physical_path_s_run_to_round_off(cls) -> None:
    cfg = preset("kolmogorov", 32, members=2, t_end=0.5)
    physical = cls(0.2)
    physical.spectral = False  # the solver then transforms the physical tendency itself
    runs = []
    for closure in (cls(0.2), physical):
        sim = Simulation(cfg, closure=closure, planner="estimate")
        for _ in range(20):
            sim.advance()
        runs.append(sim.omega_hat.copy())
        assert closure.calls == 20
    np.testing.assert_allclose(runs[0], runs[1], rtol=0, atol=1e-10 * np.abs(runs[1]).max())
    h_hat = cls(0.2).tendency_hat(state(turbulent(Grid(32, 1.0)), Grid(32, 1.0)))
    np.testing.assert_allclose(np.fft.irfft2(h_hat, s=(32, 32)), cls(0.2)(state(turbulent(Grid(32, 1.0)), Grid(32, 1.0))),
                               atol=1e-12 * np.abs(h_hat).max())


@pytest.mark.parametrize("cls", CLOSURES)
def test_the_spectral_call_checks_finiteness_in_its_kernel_and_applies_the_policy(cls) -> None:
    """A member whose vorticity holds a NaN: the default policy raises naming it; "zero" zeroes its Ĥ,
    counts it and leaves the other members' Ĥ as without it (the check survives fast-math)."""
    from coupling.errors import NonFiniteClosureError

    g = Grid(16, 1.0)
    omega = turbulent(g, members=3)
    bad = state(omega, g)
    bad.omega_hat[1, 2, 3] = np.nan
    with pytest.raises(NonFiniteClosureError, match=r"member\(s\) \[1\]"):
        cls(0.2).call_hat(bad)
    c = cls(0.2, nonfinite="zero")
    h_hat = c.call_hat(bad).copy()
    np.testing.assert_array_equal(h_hat[1], 0.0)
    np.testing.assert_allclose(h_hat[[0, 2]], cls(0.2).call_hat(state(omega, g))[[0, 2]], rtol=1e-12)
    assert c.describe()["closure_nonfinite_members"] == 1 and c.calls == 1
