"""ArtifactClosure online: independent members, seeded reproducibility, resampling cadence and jitter,
validation against the solver, non-finite policies, and bit-exact restart."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from coupling.errors import GridMismatchError, NonFiniteClosureError, PresetMismatchError, TargetMismatchError
from coupling.learned import ArtifactClosure
from coupling.normal_stream import NormalStream
from coupling.protocol import ClosureWarning
from kolmo.errors import NonFiniteError, ShapeError
from kolmo.io import partial_path
from kolmo.presets import preset
from kolmo.simulation import Simulation, run_simulation
from tests.coupling.conftest import LinearNoise, NaNFirstMember, TwoStepNoise, coarse_state, reduced_config

OMEGA = np.random.default_rng(0).standard_normal((1, 16, 16))


def test_members_get_independent_samples_with_the_artifacts_spread_never_the_ensemble_mean(make_artifact) -> None:
    """64 members with the SAME vorticity: the member spread is the artifact's noise scale s (the
    reference code's member average would make it 0); members are uncorrelated."""
    s = 1e-2
    c = ArtifactClosure(make_artifact(LinearNoise(16, a=-0.5, s=s)), seed=0)
    omega = np.repeat(OMEGA, 64, axis=0)
    h = c(coarse_state(omega))
    assert h.shape == (64, 16, 16) and h.dtype == np.float64
    spread = h.std(axis=0, ddof=1)
    assert abs(spread.mean() / s - 1) < 0.05
    np.testing.assert_allclose(h.mean(axis=0), -0.5 * OMEGA[0], atol=5 * s / 8)
    dev = (h - h.mean(axis=0)).reshape(64, -1)
    corr = np.corrcoef(dev)[np.triu_indices(64, 1)]
    assert np.abs(corr).mean() < 0.08
    assert c.samples == 1  # one artifact call for all 64 members


def test_a_seed_reproduces_an_ensemble_exactly_and_another_seed_does_not(make_artifact) -> None:
    path = make_artifact(TwoStepNoise(16))
    cfg = reduced_config(16, members=4, t_end=0.03)

    def run(seed: int) -> np.ndarray:
        sim = Simulation(cfg, closure=ArtifactClosure(path, every=5, jitter=5e-5, seed=seed), omega0=OMEGA,
                         planner="estimate")
        for _ in range(cfg.steps):
            sim.advance()
        return sim.vorticity()

    a, b, other = run(11), run(11), run(12)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, other)
    assert not np.allclose(a[0], a[1])  # one broadcast initial condition: members differ by their closure samples


@pytest.mark.parametrize("s, spread", [(1e-2, True), (0.0, False)])
def test_online_member_spread_is_nonzero_for_a_stochastic_artifact_and_zero_for_a_deterministic_one(
        make_artifact, s: float, spread: bool) -> None:
    """Four members from one broadcast snapshot, the reduced model without its own noise (the
    noise-inclusive target), no jitter: only the closure's samples can separate the members."""
    cfg = reduced_config(16, members=4, t_end=0.02)
    closure = ArtifactClosure(make_artifact(LinearNoise(16, a=-0.5, s=s)), every=5, jitter=0.0, seed=3)
    sim = Simulation(cfg, closure=closure, omega0=OMEGA, planner="estimate")
    for _ in range(cfg.steps):
        sim.advance()
    member_std = float(sim.vorticity().std(axis=0).max())
    if spread:
        assert member_std > 1e-6
    else:
        assert member_std == 0.0


@pytest.mark.parametrize("every", [1, 5])
def test_the_artifact_is_called_every_k_steps_and_held_with_jitter_in_between(make_artifact, every: int) -> None:
    """Fresh samples (jumps of order s = 1) exactly at steps 0, k, 2k, ...; between them the held
    sample moves by the jitter only (std σ = 1e-3 per point and step)."""
    sigma = 1e-3
    c = ArtifactClosure(make_artifact(LinearNoise(16, a=0.0, s=1.0)), every=every, jitter=sigma, seed=5)
    omega = np.repeat(OMEGA, 8, axis=0)
    steps = 4 * every + 3
    h = np.stack([c(coarse_state(omega, step)) for step in range(steps)])
    jumps = np.abs(np.diff(h, axis=0)).max(axis=(1, 2, 3))
    resampled = [step for step in range(1, steps) if jumps[step - 1] > 0.5]
    assert resampled == [s for s in range(1, steps) if s % every == 0]
    assert c.samples == len(resampled) + 1 and c.calls == steps
    assert c.jitters == steps - c.samples
    if every > 1:
        held = np.concatenate([np.diff(h[k * every:(k + 1) * every], axis=0) for k in range(4)])
        assert abs(held.std() / sigma - 1) < 0.03
        assert abs(held.mean()) < 0.1 * sigma
    d = c.describe()
    assert d["closure_artifact_calls"] == c.samples and d["closure_every"] == every and d["closure_jitter"] == sigma


def test_the_held_spectrum_gives_the_trajectory_of_the_old_physical_path_without_jitter(make_artifact) -> None:
    """jitter = 0: holding rfft2(H) (one transform per resample, ``call_hat``) gives the trajectory of the
    previous physical path (H returned every step, transformed by the solver every step), to round-off.
    The reference hook below is that path, drawing the sample noise from the same seeded stream."""
    path = make_artifact(TwoStepNoise(16, s=1e-1))
    cfg = reduced_config(16, members=3, t_end=0.03, seed=4)
    module = torch.jit.load(str(path))
    stream = NormalStream(7, "sample noise")  # the closure's seeded stream of sample noise
    held: dict[str, object] = {}

    def physical_path(state) -> np.ndarray:  # noqa: ANN001
        if "h" not in held or state.step - int(held["step"]) >= 5:
            with torch.inference_mode():
                x = torch.from_numpy(state.omega).to(torch.float32)
                noise = torch.from_numpy(stream.fill(np.empty(module.noise_shape(x.shape[0]))).astype(np.float32))
                held.update(h=module.sample(x, noise).to(torch.float64).numpy(), step=state.step)
        return held["h"]  # type: ignore[return-value]

    new = Simulation(cfg, closure=ArtifactClosure(path, every=5, jitter=0.0, seed=7), omega0=OMEGA, planner="estimate")
    old = Simulation(cfg, closure=physical_path, omega0=OMEGA, planner="estimate")
    assert new.closure.spectral and not old.closure.spectral
    for _ in range(cfg.steps):
        new.advance()
        old.advance()
    a, b = new.vorticity(), old.vorticity()
    assert not np.allclose(a[0], a[1])  # the members' samples differ: the comparison is not trivial
    np.testing.assert_allclose(a, b, rtol=0, atol=1e-12 * np.abs(b).max())
    np.testing.assert_allclose(new.scalar_diagnostics()["closure_enstrophy"], old.scalar_diagnostics()["closure_enstrophy"],
                               rtol=1e-10)


def test_grid_mismatch_names_both_grids(make_artifact) -> None:
    c = ArtifactClosure(make_artifact(LinearNoise(32), grid=32))
    with pytest.raises(GridMismatchError, match="is for a 32² grid, but the solver runs 16²") as info:
        Simulation(reduced_config(16), closure=c)
    assert isinstance(info.value, ShapeError)


def test_domain_and_preset_mismatches_name_both_values(make_artifact) -> None:
    with pytest.raises(GridMismatchError, match=r"domain of side L = 6.28319, but the solver's L = 1"):
        Simulation(reduced_config(16), closure=ArtifactClosure(make_artifact(L=6.283185307179586)))
    kolmo_reduced = preset("kolmogorov", 16, L=1.0, advection=False)
    with pytest.raises(PresetMismatchError, match="made for preset 'dong2026', but the solver runs preset 'kolmogorov'"):
        Simulation(kolmo_reduced, closure=ArtifactClosure(make_artifact()))


def test_target_must_match_the_equations_advection(make_artifact) -> None:
    with pytest.raises(TargetMismatchError, match="target 'missing-physics-noisy', which needs advection off, but the "
                                                  "equation has advection=on"):
        Simulation(preset("dong2026", 16), closure=ArtifactClosure(make_artifact()))
    with pytest.raises(TargetMismatchError, match="target 'sgs', which needs advection on, but the equation has "
                                                  "advection=off"):
        Simulation(reduced_config(16), closure=ArtifactClosure(make_artifact(target="sgs")))


def test_a_different_dt_than_trained_warns(make_artifact) -> None:
    with pytest.warns(ClosureWarning, match="trained at dt = 0.001, the solver runs dt = 0.002"):
        Simulation(reduced_config(16, dt=2e-3), closure=ArtifactClosure(make_artifact()))


def test_non_finite_output_raises_by_default(make_artifact) -> None:
    c = ArtifactClosure(make_artifact(NaNFirstMember(16)))
    with pytest.raises(NonFiniteClosureError, match=r"returned NaN/inf at step 0 \(t = 0\) for member\(s\) \[0\]") as info:
        c(coarse_state(np.repeat(OMEGA, 3, axis=0)))
    assert isinstance(info.value, NonFiniteError)


def test_non_finite_output_is_zeroed_and_counted_under_the_zero_policy(make_artifact) -> None:
    c = ArtifactClosure(make_artifact(NaNFirstMember(16)), every=2, jitter=1e-3, nonfinite="zero")
    omega = np.repeat(OMEGA, 3, axis=0)
    h = [c(coarse_state(omega, step)) for step in range(4)]
    for x in h:
        assert np.isfinite(x).all()
        assert np.all(x[1:] != 0)
    np.testing.assert_array_equal(h[0][0], 0.0)  # zeroed at the sample, then only jittered
    assert 0 < np.abs(h[1][0]).max() < 1e-2
    d = c.describe()
    assert d["closure_nonfinite_events"] == 2 and d["closure_nonfinite_members"] == 2  # two resamples, member 0


def test_restart_with_an_artifact_closure_is_bit_exact(make_artifact, tmp_path: Path) -> None:
    """Interrupt at step 100 (last restart state at step 96, mid-way between resamples at 95 and 100),
    resume: snapshots, closure diagnostics and final state equal an uninterrupted run."""
    path = make_artifact(TwoStepNoise(16))
    cfg = reduced_config(16, members=3, t_end=0.128, save_every=0.032, seed=2)

    def closure() -> ArtifactClosure:
        return ArtifactClosure(path, every=5, jitter=5e-5, seed=9)

    full = run_simulation(cfg, tmp_path / "full.h5", closure=closure(), planner="estimate")
    assert full.status == "complete"

    def interrupt(sim, diag) -> None:  # noqa: ANN001
        if sim.step >= 100:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_simulation(cfg, tmp_path / "cut.h5", closure=closure(), planner="estimate", progress=interrupt)
    assert partial_path(tmp_path / "cut.h5").exists()
    with h5py.File(partial_path(tmp_path / "cut.h5")) as h5:
        assert h5["restart"].attrs["step"] == 96 and "held_hat" in h5["restart/closure"]
    resumed = run_simulation(None, resume=tmp_path / "cut.h5", closure=closure(), planner="estimate")
    assert resumed.status == "complete" and resumed.steps == 128 - 96
    with h5py.File(tmp_path / "full.h5") as a, h5py.File(tmp_path / "cut.h5") as b:
        np.testing.assert_array_equal(a["restart/omega_hat"][()], b["restart/omega_hat"][()])
        np.testing.assert_array_equal(a["vorticity"][()], b["vorticity"][()])
        for name in ("closure_energy", "closure_enstrophy", "energy"):
            np.testing.assert_array_equal(a[f"diagnostics/{name}"][()], b[f"diagnostics/{name}"][()])
        np.testing.assert_array_equal(a["restart/closure/held_hat"][()], b["restart/closure/held_hat"][()])
        for key in ("closure_calls", "closure_artifact_calls", "closure_jitter_updates"):
            assert a.attrs[key] == b.attrs[key]
        assert a.attrs["closure_calls"] == 128 and a.attrs["closure_artifact_calls"] == 26
        assert 0 < a.attrs["closure_fraction"] < 1 and a.attrs["closure_device"] == "cpu"


def test_float64_runs_the_artifact_in_float64_and_members_start_from_a_broadcast_snapshot(make_artifact) -> None:
    c = ArtifactClosure(make_artifact(), dtype="float64", seed=1)
    sim = Simulation(reduced_config(16, members=5), closure=c, omega0=OMEGA, planner="estimate")
    for _ in range(3):
        sim.advance()
    probe = torch.ones(1, 16, 16, dtype=torch.float64)
    assert c.artifact.module.forward(probe).dtype == torch.float64 and c.describe()["closure_dtype"] == "float64"
    w = sim.vorticity()
    assert w.shape == (5, 16, 16) and not np.allclose(w[0], w[1])


def test_a_restart_state_holding_the_physical_sample_of_older_run_files_is_held_in_spectral_space(make_artifact) -> None:
    """Run files written before the held sample lived in spectral space store it as ``held`` (B, N, N):
    it is transformed once and held; with jitter 0 the next steps return its rfft2 unchanged."""
    held = np.random.default_rng(1).standard_normal((2, 16, 16))
    c = ArtifactClosure(make_artifact(), every=5, jitter=0.0)
    c.set_state({"calls": 3, "samples": 1, "sample_step": 0, "held": held, "dtype": "float32"})
    omega = np.repeat(OMEGA, 2, axis=0)
    for step in (1, 2):
        np.testing.assert_allclose(c.call_hat(coarse_state(omega, step)), np.fft.rfft2(held), atol=1e-12)
    assert c.samples == 1 and c.calls == 5 and "held_hat" in c.get_state()


def test_the_closures_own_injection_diagnostics_and_compiled_resample_equal_the_solvers_and_the_python_path(
        make_artifact) -> None:
    """``fills_injection``: the closure_energy / closure_enstrophy the closure writes (fused into its jitter
    and resample steps) are those the solver computes from the same Ĥ, bit for bit, on the same
    trajectory; and the resample's compiled kernels (FFTW plans called from Numba) give the trajectory of
    the Python path (the same steps without them) to round-off."""
    path = make_artifact(TwoStepNoise(16, s=1e-1))
    cfg = reduced_config(16, members=3, t_end=0.012, seed=4)

    def run(fused: bool, compiled: bool) -> tuple[np.ndarray, np.ndarray]:
        closure = ArtifactClosure(path, every=5, jitter=1e-2, seed=3)
        if not fused:
            closure.fills_injection = False  # read by the Simulation: the solver computes the diagnostics
        sim = Simulation(cfg, closure=closure, omega0=OMEGA, planner="estimate")
        diags = []
        for _ in range(cfg.steps):
            sim.advance()
            if not compiled:
                closure._buffers.plans = None  # type: ignore[union-attr]
            diags.append(sim._last_closure.copy())
        assert closure.samples == 3 and closure.jitters == cfg.steps - 3
        return sim.omega_hat.copy(), np.array(diags)

    omega_fused, diag_fused = run(True, True)
    omega_solver, diag_solver = run(False, True)
    np.testing.assert_array_equal(omega_fused, omega_solver)
    np.testing.assert_array_equal(diag_fused, diag_solver)
    assert np.all(diag_fused != 0)
    omega_python, diag_python = run(True, False)
    np.testing.assert_allclose(omega_python, omega_fused, rtol=0, atol=1e-12 * np.abs(omega_fused).max())
    np.testing.assert_allclose(diag_python, diag_fused, rtol=1e-9)
