"""ReplayClosure: zero-order hold between records, range and format errors, and the online upper
bound — the true closure keeps the reduced model on the truth, no closure does not."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest

from coupling.errors import DatasetFormatError, GridMismatchError, ReplayRangeError, TargetMismatchError
from coupling.replay import ReplayClosure
from kolmo.presets import preset
from kolmo.simulation import Simulation
from tests.coupling.conftest import TRUTH, coarse_state, reduced_config, relative_error


def test_replay_holds_the_nearest_earlier_record_between_records(truth_dataset: Path) -> None:
    with h5py.File(truth_dataset) as h5:
        h_true = h5["test/closure"][()].astype(np.float64)
        t = h5["test/time"][()]
    c = ReplayClosure(truth_dataset, start_index=3)
    assert c.start_time == pytest.approx(t[3]) and c.trajectory == 0 and c.spacing == pytest.approx(0.1)
    omega = np.zeros((2, 16, 16))
    for step, record in ((0, 3), (1, 3), (99, 3), (100, 4), (101, 4), (250, 5)):
        h = c(coarse_state(omega, step))
        assert h.shape == (2, 16, 16)
        np.testing.assert_array_equal(h[0], h_true[record])
        np.testing.assert_array_equal(h[1], h_true[record])  # every member gets the true closure
    assert c.target == "missing-physics-noisy" and c.grid_n == 16 and c.grid_L == 1.0 and c.preset == "dong2026"


def test_replay_outside_the_records_is_a_range_error(truth_dataset: Path) -> None:
    c = ReplayClosure(truth_dataset)
    last = int(round((c.times[-1] - c.times[0]) / 1e-3))
    c(coarse_state(np.zeros((1, 16, 16)), last + 99))  # held for one record interval after the last
    with pytest.raises(ReplayRangeError, match=r"past the last record \(6\) by more than one record interval"):
        c(coarse_state(np.zeros((1, 16, 16)), last + 101))


def test_bad_dataset_files_and_choices_are_typed_errors(truth_dataset: Path, tmp_path: Path) -> None:
    with pytest.raises(DatasetFormatError, match="does not exist"):
        ReplayClosure(tmp_path / "nope.h5")
    with pytest.raises(DatasetFormatError, match=r"has no split 'valid'; it holds \['test', 'train'\]"):
        ReplayClosure(truth_dataset, split="valid")
    with pytest.raises(DatasetFormatError, match=r"has no trajectory 7; it holds \[0\]"):
        ReplayClosure(truth_dataset, trajectory=7)
    bare = tmp_path / "bare.h5"
    with h5py.File(bare, "w") as h5:
        h5.create_group("test").create_dataset("vorticity", data=np.zeros((1, 16, 16)))
    with pytest.raises(DatasetFormatError, match=r"lacks \['closure', 'time', 'trajectory'\]"):
        ReplayClosure(bare)


def test_replay_is_validated_against_the_solver(truth_dataset: Path) -> None:
    with pytest.raises(GridMismatchError, match="is for a 16² grid, but the solver runs 32²"):
        Simulation(reduced_config(32), closure=ReplayClosure(truth_dataset))
    with pytest.raises(TargetMismatchError, match="target 'missing-physics-noisy', which needs advection off"):
        Simulation(preset("dong2026", 16), closure=ReplayClosure(truth_dataset))


def test_online_replay_of_the_true_closure_tracks_the_truth_far_better_than_no_closure(truth_dataset: Path) -> None:
    """dong2026 fake truth: 64² fine run (advection + noise, seed 0, burn-in 2), every 4th point →
    16²; the reduced model (no advection, no noise, cn-euler, Δt 1e-3) starts from the record at
    t = 2 and runs 4 time units with the true H replayed from records every 0.1 (held in between).

    Measured (2-core EPYC VM): relative L2 error vs the subsampled truth at +1 / +2 / +3 / +4

    * replayed true closure: 0.022 / 0.023 / 0.021 / 0.020
    * no closure:            0.077 / 0.118 / 0.144 / 0.163

    The replay error is the price of the 0.1-time-unit hold and of the coarse viscous operator
    acting on subsampled (aliased) fields; without a closure the flow only decays under viscosity
    and forcing and drifts steadily away.
    """
    with h5py.File(truth_dataset) as h5:
        truth = h5["test/vorticity"][()].astype(np.float64)
    cfg = reduced_config(16, t_end=TRUTH["span"], members=2)
    every = int(round(TRUTH["every"] / cfg.dt))

    def rollout(closure) -> np.ndarray:  # noqa: ANN001
        sim = Simulation(cfg, closure=closure, omega0=truth[:1], planner="estimate")
        out = [sim.vorticity()]
        while sim.step < cfg.steps:
            sim.advance()
            if sim.step % every == 0:
                out.append(sim.vorticity())
        return np.stack(out)

    replay, none = rollout(ReplayClosure(truth_dataset, start_index=0)), rollout(None)
    checks = [10, 20, 30, 40]  # records at +1, +2, +3, +4
    err_replay = [relative_error(replay[i, 0], truth[i]) for i in checks]
    err_none = [relative_error(none[i, 0], truth[i]) for i in checks]
    np.testing.assert_array_equal(replay[:, 0], replay[:, 1])  # members identical: no noise, same H
    assert max(err_replay) < 0.04
    assert all(r < n / 3 for r, n in zip(err_replay[1:], err_none[1:]))
    assert err_none[-1] > 0.15


def test_the_fake_truth_equals_the_dataset_builders_pairs_and_replay_reads_builder_files(truth_dataset: Path,
                                                                                      tmp_path: Path) -> None:
    """Cross-check of two independent implementations of H = S[-P(u·∇ω) + σ_W ξ]: this test's fake
    truth and ``kolmo dataset`` (trajectory 0 = member 0 of seed 0 in both); then a replay run
    straight from the builder's file."""
    from kolmo.dataset import DatasetSpec, build_dataset

    spec = DatasetSpec(preset="dong2026", fine=TRUTH["fine"], coarse=TRUTH["coarse"], trajectories=2,
                       test_trajectories=1, burn_in=TRUTH["burn_in"], t_end=TRUTH["burn_in"] + 0.35, every=0.1,
                       seed=TRUTH["seed"], target="missing-physics-noisy")
    built = tmp_path / "built.h5"
    build_dataset(spec, built, planner="estimate")
    with h5py.File(truth_dataset) as ours, h5py.File(built) as theirs:
        np.testing.assert_allclose(theirs["train/time"][()], ours["test/time"][:4], rtol=1e-12)
        for name in ("vorticity", "closure"):
            a, b = theirs[f"train/{name}"][()], ours[f"test/{name}"][:4]
            np.testing.assert_allclose(a, b, rtol=0, atol=1e-6 * np.abs(b).max())
    c = ReplayClosure(built)  # test split: trajectory 1, from its first record
    assert c.trajectory == 1 and c.target == "missing-physics-noisy" and c.grid_n == 16 and c.dt == 1e-3
    sim = Simulation(reduced_config(16, t_end=0.3), closure=c, omega0=np.zeros((1, 16, 16)), planner="estimate")
    for _ in range(300):
        sim.advance()
    assert c.calls == 300 and c.last_record == 2  # the last call is at step 299, t = 0.299
