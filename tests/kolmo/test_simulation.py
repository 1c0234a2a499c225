"""Runs: batch/member equivalence, bit-exact restart, no silent overwrite, blow-up reporting."""

import json
from pathlib import Path

import h5py
import numpy as np
import pytest

from kolmo.errors import BlowUpError, ConfigurationError, FileFormatError, NonFiniteError, OutputExistsError, ShapeError
from kolmo.io import partial_path
from kolmo.presets import preset
from kolmo.simulation import CallableHook, Simulation, run_simulation


def small_dong(**kw):
    return preset("dong2026", 32, **{"t_end": 0.02, "save_every": 0.005, **kw})


def test_member_i_of_a_batch_equals_a_single_member_run_with_the_same_seed() -> None:
    batch = Simulation(small_dong(members=3, seed=5))
    single = Simulation(small_dong(members=1, seed=5, first_member=2))
    np.testing.assert_array_equal(batch.omega_hat[2], single.omega_hat[0])
    for _ in range(20):
        batch.advance()
        single.advance()
    np.testing.assert_allclose(batch.omega_hat[2], single.omega_hat[0], rtol=0,
                               atol=1e-13 * np.abs(single.omega_hat).max())


def test_members_differ_and_seeds_reproduce() -> None:
    a = Simulation(small_dong(members=2, seed=1))
    b = Simulation(small_dong(members=2, seed=1))
    assert not np.allclose(a.omega_hat[0], a.omega_hat[1])
    for _ in range(10):
        a.advance()
        b.advance()
    np.testing.assert_array_equal(a.omega_hat, b.omega_hat)


def test_restart_is_bit_exact(tmp_path: Path) -> None:
    """Interrupt a run (here at step 12), resume it: snapshots, diagnostics and state equal an uninterrupted run."""
    cfg = small_dong(members=2, seed=3, t_end=0.03)
    full = run_simulation(cfg, tmp_path / "full.h5", planner="estimate")
    assert full.status == "complete"

    def interrupt(sim, diag):
        if sim.step >= 12:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_simulation(cfg, tmp_path / "cut.h5", planner="estimate", progress=interrupt, )
    assert partial_path(tmp_path / "cut.h5").exists() and not (tmp_path / "cut.h5").exists()
    resumed = run_simulation(None, resume=tmp_path / "cut.h5", planner="estimate")
    assert resumed.status == "complete"
    with h5py.File(tmp_path / "full.h5") as a, h5py.File(tmp_path / "cut.h5") as b:
        np.testing.assert_array_equal(a["restart/omega_hat"][()], b["restart/omega_hat"][()])
        np.testing.assert_array_equal(a["vorticity"][()], b["vorticity"][()])
        np.testing.assert_array_equal(a["time"][()], b["time"][()])
        np.testing.assert_array_equal(a["diagnostics/energy"][()], b["diagnostics/energy"][()])
        np.testing.assert_array_equal(a["diagnostics/step"][()], np.arange(1, cfg.steps + 1))
        assert b.attrs["status"] == "complete"


def test_resume_extends_a_finished_run_bit_exactly(tmp_path: Path) -> None:
    cfg = small_dong(members=1, seed=4, t_end=0.02)
    run_simulation(cfg.replace(t_end=0.04), tmp_path / "long.h5", planner="estimate")
    run_simulation(cfg, tmp_path / "short.h5", planner="estimate")
    run_simulation(None, resume=tmp_path / "short.h5", t_end=0.04, planner="estimate")
    with h5py.File(tmp_path / "long.h5") as a, h5py.File(tmp_path / "short.h5") as b:
        np.testing.assert_array_equal(a["restart/omega_hat"][()], b["restart/omega_hat"][()])
        assert b["vorticity"].shape == a["vorticity"].shape


def test_refused_overwrite_leaves_the_old_file_untouched(tmp_path: Path) -> None:
    out = tmp_path / "run.h5"
    run_simulation(small_dong(), out, planner="estimate")
    before = out.read_bytes()
    with pytest.raises(OutputExistsError, match="already exists"):
        run_simulation(small_dong(seed=9), out, planner="estimate")
    assert out.read_bytes() == before
    assert not partial_path(out).exists()


def test_overwrite_replaces_the_old_file_with_the_new_run(tmp_path: Path) -> None:
    out = tmp_path / "run.h5"
    run_simulation(small_dong(), out, planner="estimate")
    run_simulation(small_dong(seed=9), out, planner="estimate", overwrite=True)
    with h5py.File(out) as h5:
        assert h5.attrs["status"] == "complete" and json.loads(h5.attrs["config"])["seed"] == 9
    assert not partial_path(out).exists()


def test_blow_up_names_step_time_and_member_after_the_last_good_snapshot(tmp_path: Path) -> None:
    cfg = preset("kolmogorov", 32, t_end=5.0, dt=0.2, save_every=0.2, check_every=1,
                 initial_params={"k_min": 1.0, "k_max": 8.0, "rms_velocity": 5.0}, members=2)
    with pytest.raises(BlowUpError) as info:
        run_simulation(cfg, tmp_path / "bad.h5", planner="estimate")
    err = info.value
    assert err.step >= 1 and err.member in (0, 1) and np.isclose(err.time, err.step * 0.2)
    assert f"step {err.step}" in str(err) and f"member {err.member}" in str(err)
    with h5py.File(tmp_path / "bad.h5") as h5:
        assert h5.attrs["status"] == "blew-up"
        assert np.all(np.isfinite(h5["vorticity"][()]))
        assert h5["step"][-1] < err.step


def test_config_validation_names_the_field() -> None:
    with pytest.raises(ConfigurationError, match="unknown preset 'foo'; valid: dong2026, kolmogorov"):
        preset("foo")
    with pytest.raises(ConfigurationError, match="invalid dt"):
        preset("kolmogorov", 32, dt=-1.0)
    with pytest.raises(ConfigurationError, match="invalid stepper"):
        preset("kolmogorov", 32, stepper="euler")
    with pytest.raises(ConfigurationError, match="unknown configuration field"):
        preset("kolmogorov", 32, viscosity=1.0)


def test_bad_initial_field_and_missing_files_raise_typed_errors(tmp_path: Path) -> None:
    with pytest.raises(ShapeError, match="expected"):
        Simulation(small_dong(), omega0=np.zeros((1, 16, 16)))
    bad = np.zeros((1, 32, 32))
    bad[0, 3, 4] = np.nan
    with pytest.raises(Exception, match="NaN"):
        Simulation(small_dong(), omega0=bad)
    with pytest.raises(FileFormatError, match="no run file to resume"):
        run_simulation(None, resume=tmp_path / "nothing.h5")
    junk = tmp_path / "junk.h5"
    junk.write_bytes(b"not hdf5 at all")
    with pytest.raises(FileFormatError, match="corrupt"):
        run_simulation(None, resume=junk)
    assert junk.read_bytes() == b"not hdf5 at all" and not partial_path(junk).exists()


def test_run_file_records_parameters_and_is_self_describing(tmp_path: Path) -> None:
    out = tmp_path / "r.h5"
    run_simulation(small_dong(members=2), out, planner="estimate")
    with h5py.File(out) as h5:
        assert h5.attrs["preset"] == "dong2026" and h5.attrs["stepper"] == "cn-rk3"
        assert "2/3" in h5.attrs["dealias_rule"]
        assert h5["vorticity"].dims[0][0].name == "/time"
        assert h5["vorticity"].shape == (5, 2, 32, 32)
        assert h5["diagnostics/cfl"].shape == (20, 2)
        assert h5["spectra/energy"].shape[:2] == (5, 2)


def test_closure_hook_receives_the_state_and_its_tendency_is_applied() -> None:
    """A constant closure H = c adds exactly c·dt per step to a mode-free run (reduced model, no forcing)."""
    calls = []

    def closure(state):
        calls.append(state.step)
        return np.full(state.omega.shape, 0.0) + np.cos(2 * np.pi * np.arange(state.grid.n) / state.grid.n)[None, None, :]

    cfg = preset("dong2026", 16, advection=False, noise_sigma=0.0, forcing="none", forcing_params={}, nu=0.0, mu=0.0,
                 initial="zero", t_end=0.01, save_every=0.01)
    sim = Simulation(cfg, closure=closure)
    for _ in range(10):
        sim.advance()
    assert calls == list(range(10))
    expected = 0.01 * np.cos(2 * np.pi * np.arange(16) / 16)[None, :] * np.ones((16, 1))
    np.testing.assert_allclose(sim.vorticity()[0], expected, atol=1e-14)


def test_a_plain_callable_closure_is_adapted_once_and_its_output_checked() -> None:
    cfg = preset("dong2026", 16, advection=False, noise_sigma=0.0, members=2, t_end=0.01, save_every=0.01)
    sim = Simulation(cfg, closure=lambda state: np.zeros((16, 16)))
    assert isinstance(sim.closure, CallableHook) and sim.closure.name == "function"
    with pytest.raises(ShapeError, match=r"closure function returned shape \(16, 16\), expected \(2, 16, 16\)"):
        sim.advance()
    sim = Simulation(cfg, closure=lambda state: np.full((2, 16, 16), np.nan))
    with pytest.raises(NonFiniteError, match="closure function returned non-finite values at step 0"):
        sim.advance()
    with pytest.raises(ConfigurationError, match="is not callable"):
        Simulation(cfg, closure=3.0)
