"""Training pairs: the closure definitions hold exactly, the reduced model is completed by the true
closure, splits are by trajectory, files round-trip and resume identically, bad input is refused."""

from pathlib import Path

import h5py
import numpy as np
import pytest

from kolmo.coarse import gaussian_filter_hat, subsample, truncate_hat
from kolmo.dataset import (DatasetSpec, build_dataset, coarse_equation, missing_physics_closure_hat,
                           sgs_closure_hat)
from kolmo.errors import ConfigurationError, FileFormatError, OutputExistsError
from kolmo.io import partial_path
from kolmo.pairs import fingerprint, open_pairs, verify
from kolmo.simulation import Simulation


def tiny(**kw) -> DatasetSpec:
    """dong2026 32² → 8², 3 trajectories (the last one test), 4 recordings each, batches of 2."""
    args = dict(preset="dong2026", fine=32, coarse=8, trajectories=3, test_trajectories=1, burn_in=0.01,
                t_end=0.05, every=0.01, members_per_batch=2, seed=3)
    args.update(kw)
    return DatasetSpec(**args)


def build(spec: DatasetSpec, path: Path, **kw):
    return build_dataset(spec, path, planner="estimate", **kw)


@pytest.fixture(scope="module")
def tiny_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("ds") / "tiny.h5"
    build(tiny(), path)
    return path


def read_all(path: Path) -> dict[str, np.ndarray]:
    with h5py.File(path) as h5:
        return {f"{s}/{k}": h5[s][k][()] for s in ("train", "test")
                for k in ("vorticity", "closure", "time", "step", "trajectory")}


# ---------------------------------------------------------------------------------------------- physics
@pytest.mark.parametrize("method", ["sharp", "gaussian"])
def test_sgs_closure_makes_coarse_rhs_equal_the_filtered_fine_rhs_to_roundoff(method: str) -> None:
    """RHS_c(ω̄) − τ = T G RHS_f(ω) for a random (not band-limited) fine field: the definition of τ.

    With the Gaussian filter the coarse model takes the forcing unfiltered, so the identity is
    checked without the forcing (f = sin(4y) is kept exactly by the sharp cutoff).
    """
    spec = DatasetSpec(preset="kolmogorov", fine=64, coarse=16, trajectories=2, test_trajectories=1,
                       members_per_batch=2, filter=method)
    fine = coarse_equation(spec.fine_config(), members=2, planner="estimate")
    coarse = coarse_equation(spec.coarse_config(), members=2, planner="estimate")
    omega = np.random.default_rng(0).standard_normal((2, 64, 64)) * 5.0
    omega_hat = np.fft.rfft2(omega)
    g = gaussian_filter_hat(fine.grid, n_coarse=16) if method == "gaussian" else np.ones(fine.grid.spectral_shape)
    omega_bar_hat, closure_hat = sgs_closure_hat(fine, coarse, omega_hat, None if method == "sharp" else g)
    lhs = coarse.rhs(omega_bar_hat) + closure_hat
    rhs = truncate_hat(g * fine.rhs(omega_hat), 16)
    if method == "gaussian":
        lhs -= coarse.forcing_hat
        rhs -= truncate_hat(g * fine.forcing_hat, 16)
    np.testing.assert_allclose(omega_bar_hat, truncate_hat(g * omega_hat, 16), rtol=0, atol=0)
    assert np.abs(lhs - rhs).max() < 1e-12 * np.abs(rhs).max()
    assert np.abs(closure_hat).max() > 1e-3 * np.abs(rhs).max()  # τ is not trivially zero


@pytest.mark.parametrize("method", ["sharp", "gaussian"])
def test_band_limited_sgs_closure_plus_coarse_rhs_equals_the_truncated_fine_rhs_on_the_resolved_band(
        method: str) -> None:
    """sgs-resolved: P_c[RHS_c(ω̄)] − P_c τ = P_c T G RHS_f(ω) to round-off on |n_x|,|n_y| < N_c/3, and the
    closure is exactly zero outside that band (where the coarse model's own advection is zero too)."""
    spec = DatasetSpec(preset="kolmogorov", fine=64, coarse=16, trajectories=2, test_trajectories=1,
                       members_per_batch=2, filter=method, target="sgs-resolved")
    fine = coarse_equation(spec.fine_config(), members=2, planner="estimate")
    coarse = coarse_equation(spec.coarse_config(), members=2, planner="estimate")
    omega_hat = np.fft.rfft2(np.random.default_rng(1).standard_normal((2, 64, 64)) * 5.0)
    g = gaussian_filter_hat(fine.grid, n_coarse=16) if method == "gaussian" else np.ones(fine.grid.spectral_shape)
    omega_bar_hat, closure_hat = sgs_closure_hat(fine, coarse, omega_hat, None if method == "sharp" else g,
                                                 band_limited=True)
    band = coarse.grid.mask
    lhs = band * (coarse.rhs(omega_bar_hat) - coarse.forcing_hat) + closure_hat
    rhs = band * truncate_hat(g * (fine.rhs(omega_hat) - fine.forcing_hat), 16)
    assert np.abs(lhs - rhs).max() < 1e-12 * np.abs(rhs).max()
    assert np.all(closure_hat[..., band == 0] == 0)
    assert np.abs(closure_hat).max() > 1e-3 * np.abs(rhs).max()


@pytest.mark.parametrize("preset_name,target", [("dong2026", "missing-physics"), ("dong2026", "missing-physics-noisy"),
                                                ("kolmogorov", "sgs"), ("kolmogorov", "sgs-resolved")])
def test_stored_pair_at_the_first_recording_is_the_target_definition_applied_to_the_fine_state(
        tmp_path: Path, preset_name: str, target: str) -> None:
    """Burn-in 0: the first stored pair of trajectory j comes from member j's initial state. The
    noise-free missing-physics H is the fine run's dealiased advection, subsampled, to round-off;
    missing-physics-noisy adds the noise drawn for the step that starts at the recording time;
    sgs-resolved is sgs with the modes outside the coarse 2/3 band zeroed."""
    spec = DatasetSpec(preset=preset_name, fine=32, coarse=8, trajectories=2, test_trajectories=1, burn_in=0.0,
                       t_end=0.2, every=0.1, members_per_batch=2, seed=11, target=target)
    build(spec, tmp_path / "d.h5")
    for split, j in (("train", 0), ("test", 1)):
        pairs = open_pairs(tmp_path / "d.h5", split)
        stored_w, stored_h = pairs.trajectory_pairs(j).vorticity[0], pairs.trajectory_pairs(j).closure[0]
        sim = Simulation(spec.fine_config().replace(members=1, first_member=j), planner="estimate")
        w_hat = sim.omega_hat.copy()
        if target.startswith("missing-physics"):
            sim.advance()
            noise = sim.step_tendency_hat if target == "missing-physics-noisy" else None
            h_hat = missing_physics_closure_hat(sim.equation, w_hat, noise)
            if noise is None:
                np.testing.assert_array_equal(h_hat, -sim.equation.advection_hat(w_hat))
            w = subsample(np.fft.irfft2(w_hat), 8)[0]
            h = subsample(np.fft.irfft2(h_hat), 8)[0]
        else:
            coarse = coarse_equation(spec.coarse_config(), planner="estimate")
            wb, hb = sgs_closure_hat(sim.equation, coarse, w_hat, band_limited=target == "sgs-resolved")
            if target == "sgs-resolved":
                assert np.all(hb[..., coarse.grid.mask == 0] == 0)
            w, h = np.fft.irfft2(wb)[0], np.fft.irfft2(hb)[0]
        np.testing.assert_allclose(stored_w, w, rtol=0, atol=1e-6 * np.abs(w).max())
        np.testing.assert_allclose(stored_h, h, rtol=0, atol=1e-6 * np.abs(h).max())


def _rollout_errors(path: Path, steps: int) -> tuple[np.ndarray, np.ndarray]:
    """Relative L2 error vs the subsampled truth of the reduced coarse model started from the first pair,
    with the stored (true) closure replayed every step, and without closure."""
    traj = open_pairs(path, "train").trajectory_pairs(0)
    pairs = open_pairs(path, "train")
    coarse = pairs.coarse_config.replace(initial="zero")
    assert not coarse.advection and coarse.stepper == "cn-euler"
    assert coarse.noise_sigma == (0 if pairs.attrs["target"] == "missing-physics-noisy" else pairs.config.noise_sigma)

    def replay(state):  # the recording at step k is the closure for the step k -> k+1
        return traj.closure[state.step][None].astype(np.float64)

    errors = []
    for closure in (replay, None):
        sim = Simulation(coarse, closure=closure, omega0=traj.vorticity[:1].astype(np.float64), planner="estimate")
        e = []
        for k in range(1, steps):
            sim.advance()
            e.append(np.linalg.norm(sim.vorticity()[0] - traj.vorticity[k]) / np.linalg.norm(traj.vorticity[k]))
        errors.append(np.array(e))
    return errors[0], errors[1]


@pytest.mark.parametrize("target,noise", [("missing-physics-noisy", 5e-5), ("missing-physics", 0.0)])
def test_reduced_model_with_the_true_closure_is_exact_when_inviscid_and_stepped_like_the_truth(
        tmp_path: Path, target: str, noise: float) -> None:
    """ν = 0 and the truth stepped with cn-euler too: S commutes with forward Euler, so the reduced model
    plus H reproduces the subsampled truth to float32 storage round-off (measured 4e-8 over 30 steps).
    The noise-free target is checked on a noise-free truth (the reduced model's own noise draws are
    other draws than the truth's)."""
    spec = DatasetSpec(preset="dong2026", fine=64, coarse=16, trajectories=1, test_trajectories=0, burn_in=0.5,
                       t_end=0.53, every=1e-3, members_per_batch=1, seed=7, target=target,
                       overrides={"nu": 0.0, "stepper": "cn-euler", "noise_sigma": noise})
    build(spec, tmp_path / "mp.h5")
    with_h, without = _rollout_errors(tmp_path / "mp.h5", 30)
    assert with_h.max() < 1e-6
    assert without.max() > 1e-3


def test_reduced_model_with_the_true_closure_tracks_the_subsampled_truth_while_without_it_drifts(
        tmp_path: Path) -> None:
    """Default dong2026 physics, 64² → 16², after a burn-in of 2, closure recorded every step, 50 steps.

    Tolerance 1e-4 relative (measured 1.3e-5): what remains is (i) time discretisation: the truth
    uses cn-rk3 with advection and noise per stage, the reduced model cn-euler with H held over the
    step (ν = 0 alone: 6e-6); (ii) subsampling does not commute with the viscous term (fine modes
    aliased to low coarse wavenumbers are damped at the coarse rate); (iii) float32 storage. Without
    the closure the reduced model only decays, and errs > 100× more (measured 4e-3).
    """
    spec = DatasetSpec(preset="dong2026", fine=64, coarse=16, trajectories=1, test_trajectories=0, burn_in=2.0,
                       t_end=2.05, every=1e-3, members_per_batch=1, seed=7, target="missing-physics-noisy")
    build(spec, tmp_path / "mp.h5")
    with_h, without = _rollout_errors(tmp_path / "mp.h5", 50)
    assert with_h.max() < 1e-4
    assert without[-1] > 1e-3
    assert without[-1] > 100 * with_h[-1]


# ---------------------------------------------------------------------------------------------- splits, file, reader
def test_train_and_test_splits_share_no_trajectory_and_store_each_one_contiguously_in_time_order(
        tiny_file: Path) -> None:
    spec = tiny()
    t_count = len(spec.record_steps())
    assert t_count == 4
    train, test = open_pairs(tiny_file, "train"), open_pairs(tiny_file, "test")
    assert set(train.trajectories) == {0, 1} and set(test.trajectories) == {2}
    assert set(train.trajectory).isdisjoint(test.trajectory)
    assert len(train) == 2 * t_count and len(test) == t_count
    for p in (train, test):
        for i, j in enumerate(p.trajectories):
            rows = slice(i * t_count, (i + 1) * t_count)
            assert np.all(p.trajectory[rows] == j)
            np.testing.assert_allclose(p.time[rows], 0.01 + 0.01 * np.arange(t_count), rtol=1e-12)
            np.testing.assert_array_equal(p.step[rows], 10 + 10 * np.arange(t_count))
        v, c = p[:]
        assert v.dtype == np.float32 and np.isfinite(v).all() and np.isfinite(c).all()
    with h5py.File(tiny_file) as h5:
        assert h5["train/done"][()].tolist() == [1, 1] and h5["test/done"][()].tolist() == [1]


def test_trajectory_j_is_the_same_whatever_the_batching(tmp_path: Path, tiny_file: Path) -> None:
    """Member j's streams depend only on (seed, j): batches of 1 give the same pairs (to FFTW round-off)."""
    build(tiny(members_per_batch=1), tmp_path / "b1.h5")
    a, b = read_all(tiny_file), read_all(tmp_path / "b1.h5")
    for k in a:
        np.testing.assert_allclose(a[k], b[k], rtol=1e-5, atol=1e-6 * np.abs(a[k]).max())


def test_attributes_and_statistics_round_trip(tiny_file: Path) -> None:
    spec = tiny()
    p = open_pairs(tiny_file, "train")
    a = p.attrs
    assert a["format"] == "kolmo-dataset" and a["status"] == "complete" and a["format_version"] == 2
    assert a["preset"] == "dong2026" and a["target"] == "missing-physics" and a["coarse_graining"] == "subsample"
    assert "sigma_W xi" in a["target_definition"] and "every" in a["coarse_graining_definition"]
    assert a["n_fine"] == 32 and a["n_coarse"] == 8 and a["L"] == 1.0 and a["dt"] == 1e-3 and a["seed"] == 3
    assert a["fine_grid"]["n"] == 32 and a["coarse_grid"]["n"] == 8
    assert p.config == spec.fine_config() and p.coarse_config == spec.coarse_config()
    assert a["build"]["trajectories"] == 3 and a["kolmo_version"]
    v, c = p[:]
    for name, x in (("vorticity", v), ("closure", c)):
        assert p.stats[name]["mean"] == pytest.approx(float(np.mean(x, dtype=np.float64)), rel=1e-9, abs=1e-12)
        assert p.stats[name]["std"] == pytest.approx(float(np.std(x, dtype=np.float64)), rel=1e-9)
    assert p.stats["split"] == "train" and p.stats["pairs"] == len(p)
    assert verify(tiny_file) == a["fingerprint"]


def test_reader_is_lazy_indexable_and_replays_a_test_trajectory_by_time(tiny_file: Path) -> None:
    p = open_pairs(tiny_file, "train")
    v_all, c_all = p[:]
    v0, c0 = p[3]
    assert v0.shape == (8, 8) and np.array_equal(v0, v_all[3]) and np.array_equal(c0, c_all[3])
    v, c = p[np.array([5, 1, 5, -1])]  # unsorted, repeated, negative
    assert np.array_equal(v, v_all[[5, 1, 5, 7]]) and np.array_equal(c, c_all[[5, 1, 5, 7]])
    with pytest.raises(IndexError):
        p[8]
    import pickle

    q = pickle.loads(pickle.dumps(p))
    assert np.array_equal(q[2][1], c_all[2])
    traj = open_pairs(tiny_file, "test").trajectory_pairs(2)
    assert len(traj) == 4 and traj.closure.shape == (4, 8, 8)
    assert np.array_equal(traj.closure_at(0.02), traj.closure[1])
    assert np.array_equal(traj.closure_at(0.0299), traj.closure[1])  # held until the next recording
    assert np.array_equal(traj.closure_at(0.03), traj.closure[2])
    with pytest.raises(ConfigurationError, match="outside"):
        traj.closure_at(0.005)
    with pytest.raises(ConfigurationError, match="not in the test split"):
        open_pairs(tiny_file, "test").trajectory_pairs(0)
    with pytest.raises(ConfigurationError, match="unknown split"):
        open_pairs(tiny_file, "validation")
    with pytest.raises(FileFormatError, match="does not exist"):
        open_pairs(tiny_file.with_name("nope.h5"))


def test_resumed_build_equals_an_uninterrupted_one_without_recomputing_finished_trajectories(
        tmp_path: Path, tiny_file: Path) -> None:
    out = tmp_path / "cut.h5"

    def interrupt_after_first_batch(ev):
        if ev.phase == "batch":
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        build(tiny(), out, progress=interrupt_after_first_batch)
    assert partial_path(out).exists() and not out.exists()
    with h5py.File(partial_path(out)) as h5:
        assert h5.attrs["status"] == "building" and h5["train/done"][()].tolist() == [1, 1]
        assert np.isnan(h5["test/closure"][0]).all()  # preallocated, not yet written
    with pytest.raises(FileFormatError, match="not a finished dataset"):
        open_pairs(partial_path(out))
    summary = build(tiny(), out)
    assert summary.trajectories_resumed == 2 and summary.trajectories_computed == 1
    assert summary.pairs_written == 4 and summary.pairs_total == 12
    assert not partial_path(out).exists()
    a, b = read_all(tiny_file), read_all(out)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
    with h5py.File(tiny_file) as ha, h5py.File(out) as hb:
        assert ha.attrs["fingerprint"] == hb.attrs["fingerprint"] == fingerprint(hb)
        assert ha.attrs["stats"] == hb.attrs["stats"]


# ---------------------------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("kw,match", [
    ({"preset": "taylor-green"}, "unknown preset 'taylor-green'; valid: dong2026, kolmogorov"),
    ({"target": "les"}, "unknown closure target 'les'; valid: missing-physics, missing-physics-noisy, sgs, sgs-resolved"),
    ({"filter": "box"}, "unknown filter 'box'"),
    ({"filter": "gaussian"}, "does not apply to target 'missing-physics'"),
    ({"coarse": 12}, "coarse grid 12 must divide the fine grid 32"),
    ({"test_trajectories": 3}, "train must not be empty"),
    ({"t_end": 0.005}, "after the burn-in"),
    ({"burn_in": 0.0105}, "not a whole number of time steps"),
    ({"overrides": {"seed": 1}}, "set by the dataset arguments"),
])
def test_bad_arguments_raise_a_configuration_error_naming_the_value(tmp_path: Path, kw: dict, match: str) -> None:
    with pytest.raises(ConfigurationError, match=match.replace("(", r"\(")):
        build(tiny(**kw), tmp_path / "d.h5")
    assert list(tmp_path.iterdir()) == []


def test_existing_output_is_refused_and_left_untouched(tmp_path: Path, tiny_file: Path) -> None:
    out = tmp_path / "d.h5"
    out.write_bytes(tiny_file.read_bytes())
    before = out.read_bytes()
    with pytest.raises(OutputExistsError, match="already exists"):
        build(tiny(), out)
    assert out.read_bytes() == before and not partial_path(out).exists()


def test_corrupt_partial_file_gives_a_format_error_and_is_kept(tmp_path: Path) -> None:
    out = tmp_path / "d.h5"
    partial_path(out).write_bytes(b"\x89HDF\r\n\x1a\n" + b"garbage" * 100)
    before = partial_path(out).read_bytes()
    with pytest.raises(FileFormatError, match="corrupt or not HDF5.*left untouched"):
        build(tiny(), out)
    assert partial_path(out).read_bytes() == before and not out.exists()


def test_partial_file_from_other_arguments_is_refused_naming_the_differences(tmp_path: Path) -> None:
    out = tmp_path / "d.h5"
    with pytest.raises(KeyboardInterrupt):
        build(tiny(), out, progress=lambda ev: (_ for _ in ()).throw(KeyboardInterrupt) if ev.phase == "batch" else None)
    before = partial_path(out).read_bytes()
    with pytest.raises(ConfigurationError, match=r"different arguments \(seed: file 3, now 4; trajectories: file 3, now 4\)"):
        build(tiny(seed=4, trajectories=4), out)
    assert partial_path(out).read_bytes() == before
    summary = build(tiny(seed=4), out, overwrite=True)  # explicit: start over
    assert summary.trajectories_resumed == 0 and out.exists()
