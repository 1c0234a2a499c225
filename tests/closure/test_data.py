"""closure.data: train-statistics normalisation for every split, validation split of whole trajectories."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest
import torch

from closure.data import ClosurePairs, Normalisation, read_info, split_trajectories
from kolmo.errors import ConfigurationError, FileFormatError
from tests.closure.synthetic import write_synthetic_dataset


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return write_synthetic_dataset(tmp_path_factory.mktemp("data") / "d.h5", train_trajectories=5)


def test_info_reads_grid_domain_fingerprint_and_train_statistics(data):
    info = read_info(data)
    with h5py.File(data) as h5:
        omega = np.asarray(h5["train/vorticity"], dtype=np.float64)
        closure = np.asarray(h5["train/closure"], dtype=np.float64)
        fp = h5.attrs["fingerprint"]
    assert (info.grid, info.L, info.dt, info.preset, info.target) == (16, 1.0, 1e-3, "dong2026", "missing-physics")
    assert info.fingerprint == fp
    assert info.normalisation.omega_mean == pytest.approx(omega.mean(), abs=1e-12)
    assert info.normalisation.closure_std == pytest.approx(closure.std(), rel=1e-12)
    assert info.train_trajectories == [0, 1, 2, 3, 4] and info.test_trajectories == [5, 6]


def test_every_split_is_normalised_with_the_train_statistics(data):
    info = read_info(data)
    norm = info.normalisation
    test = ClosurePairs(data, "test", norm)
    with h5py.File(data) as h5:
        raw = np.asarray(h5["test/closure"], dtype=np.float64)
    expected = (raw - norm.closure_mean) / norm.closure_std
    np.testing.assert_allclose(test.closure[:, 0].numpy(), expected, rtol=1e-6, atol=1e-6)
    train = ClosurePairs(data, "train", norm)
    assert float(train.omega.mean()) == pytest.approx(0.0, abs=1e-6)
    assert float(train.closure.std(unbiased=False)) == pytest.approx(1.0, abs=1e-5)
    np.testing.assert_allclose(norm.closure_physical(test.closure[:, 0].double()).numpy(), raw, rtol=1e-5, atol=1e-5)


def test_validation_split_takes_whole_training_trajectories_never_snapshots(data):
    info = read_info(data)
    train_ids, val_ids = split_trajectories(info.train_trajectories, 0.2, seed=3)
    assert len(val_ids) == 1 and not set(train_ids) & set(val_ids)
    assert sorted(train_ids + val_ids) == info.train_trajectories
    assert split_trajectories(info.train_trajectories, 0.2, seed=3) == (train_ids, val_ids)
    val = ClosurePairs(data, "train", info.normalisation, trajectories=val_ids)
    train = ClosurePairs(data, "train", info.normalisation, trajectories=train_ids)
    assert set(val.trajectory.tolist()) == set(val_ids) and len(val) == 20  # all 20 snapshots of it
    assert not set(train.trajectory.tolist()) & set(val.trajectory.tolist())
    assert len(train) + len(val) == 5 * 20
    assert not set(val.trajectory.tolist()) & set(info.test_trajectories)


def test_a_single_training_trajectory_cannot_give_a_validation_split():
    with pytest.raises(ConfigurationError, match="at least 2 are needed"):
        split_trajectories([7], 0.1)
    with pytest.raises(ConfigurationError, match=r"expected a number in \(0, 1\)"):
        split_trajectories([1, 2], 1.5)


def test_unknown_trajectories_and_rows_selection(data):
    norm = read_info(data).normalisation
    with pytest.raises(ConfigurationError, match=r"trajectories \[42\] are not in the train split"):
        ClosurePairs(data, "train", norm, trajectories=[42])
    rows = ClosurePairs(data, "test", norm, rows=[0, 39])
    full = ClosurePairs(data, "test", norm)
    assert torch.equal(rows.omega, full.omega[[0, 39]])


def test_missing_stats_are_recomputed_from_the_train_split(data, tmp_path):
    copy = tmp_path / "nostats.h5"
    copy.write_bytes(data.read_bytes())
    with h5py.File(copy, "a") as h5:
        stats = json.loads(h5.attrs["stats"])
        del h5.attrs["stats"]
    assert read_info(copy).normalisation == Normalisation.from_stats(stats)


def test_foreign_files_and_degenerate_statistics_are_typed_errors(tmp_path):
    bad = tmp_path / "x.h5"
    with h5py.File(bad, "w") as h5:
        h5.attrs["format"] = "something"
    with pytest.raises(FileFormatError, match="not a kolmo dataset file"):
        read_info(bad)
    with pytest.raises(FileFormatError, match="closure_std = 0.0"):
        Normalisation(0.0, 1.0, 0.0, 0.0)
