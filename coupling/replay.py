r"""Replay the true closure from a dataset file: the upper bound of any learned closure online.

Dataset layout read here (written by the dataset builder, ``kolmo/dataset.py``)::

    /                  attrs: preset, target ("missing-physics" | "sgs"), L, dt (or config JSON
                       holding them); see kolmo.pairs for the full layout
    /<split>/vorticity (n, N, N)   coarse vorticity  ω at the record times
    /<split>/closure   (n, N, N)   true closure      H at the same times
    /<split>/time      (n,)        record times (e.g. every 0.1 time units for t ∈ [20, 40])
    /<split>/trajectory (n,)       trajectory index of each record

Time alignment: the run starts at the record ``start`` (by default the first record of the
trajectory, or the record the run's initial condition was taken from), so at simulated time
``t`` the dataset time is ``t_start + t``. Between records the closure is **held at the nearest
earlier record** (zero-order hold; a record counts as reached within 1e-6 Δt). Records are
0.1 time units = 100 steps apart in dong2026, so the replayed H lags the truth by up to one
record interval: an upper bound on what a closure evaluated from the true state can do only up
to that lag. Asking for a time before the first record, or more than one record interval after
the last, raises :class:`~coupling.errors.ReplayRangeError`.

Every member gets the same true H (it does not depend on the member's state).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import h5py
import numpy as np

from coupling.errors import DatasetFormatError, ReplayRangeError
from coupling.protocol import Closure, TARGETS
from kolmo.errors import ConfigurationError

if TYPE_CHECKING:
    from kolmo.simulation import CoarseState

__all__ = ["ReplayClosure", "dataset_record"]


def _open(path: str | Path) -> h5py.File:
    p = Path(path)
    if not p.is_file():
        raise DatasetFormatError(f"dataset file {p} does not exist")
    try:
        return h5py.File(p, "r")
    except OSError as exc:
        raise DatasetFormatError(f"cannot read dataset {p}: not an HDF5 file or corrupt ({exc})") from None


def _split(h5: h5py.File, split: str, path: str | Path) -> h5py.Group:
    if split not in h5:
        splits = [k for k in h5 if isinstance(h5[k], h5py.Group)]
        raise DatasetFormatError(f"dataset {path} has no split {split!r}; it holds {splits}")
    g = h5[split]
    missing = [k for k in ("vorticity", "closure", "time", "trajectory") if k not in g]
    if missing:
        raise DatasetFormatError(f"dataset {path}, split {split!r} lacks {missing}; expected vorticity, "
                                 "closure, time and trajectory")
    return g


def dataset_record(path: str | Path, split: str, index: int) -> tuple[int, float]:
    """``(trajectory, time)`` of record ``index`` of ``split`` (negative indices count from the end)."""
    with _open(path) as h5:
        g = _split(h5, split, path)
        n = g["time"].shape[0]
        if not -n <= index < n:
            raise DatasetFormatError(f"dataset {path}, split {split!r}: record {index} out of range (0..{n - 1})")
        return int(g["trajectory"][index]), float(g["time"][index])


class ReplayClosure(Closure):
    """The true closure of one dataset trajectory, replayed by time.

    Parameters
    ----------
    dataset_path
        Dataset HDF5 file (layout in the module docstring).
    split
        ``"test"`` (default) or ``"train"``.
    trajectory
        Trajectory index; default: that of ``start_index``, else of the split's first record.
    start_index
        Record (row of the split) the run starts from: its trajectory and time. Default: the
        first record of ``trajectory``.
    nonfinite
        Non-finite policy.
    """

    def __init__(self, dataset_path: str | Path, split: str = "test", trajectory: int | None = None,
                 start_index: int | None = None, nonfinite: str = "raise") -> None:
        super().__init__(nonfinite=nonfinite)
        self.path, self.split = Path(dataset_path), split
        with _open(dataset_path) as h5:
            g = _split(h5, split, dataset_path)
            trajs = np.asarray(g["trajectory"])
            times_all = np.asarray(g["time"], dtype=np.float64)
            if start_index is not None:
                n = len(trajs)
                if not -n <= start_index < n:
                    raise DatasetFormatError(f"dataset {dataset_path}, split {split!r}: start record {start_index} "
                                             f"out of range (0..{n - 1})")
                start_index %= n
                if trajectory is not None and int(trajs[start_index]) != int(trajectory):
                    raise ConfigurationError(
                        f"start record {start_index} belongs to trajectory {int(trajs[start_index])}, but "
                        f"trajectory {trajectory} was asked for; expected the same trajectory")
                trajectory = int(trajs[start_index])
            elif trajectory is None:
                if len(trajs) == 0:
                    raise DatasetFormatError(f"dataset {dataset_path}, split {split!r} holds no records")
                trajectory = int(trajs[0])
            rows = np.flatnonzero(trajs == trajectory)
            if rows.size == 0:
                raise DatasetFormatError(f"dataset {dataset_path}, split {split!r} has no trajectory {trajectory}; "
                                         f"it holds {sorted(set(trajs.tolist()))}")
            order = np.argsort(times_all[rows], kind="stable")  # rows are increasing (h5py needs that)
            self.start_row = int(start_index) if start_index is not None else int(rows[order][0])
            self.times = times_all[rows][order]
            self.fields = np.asarray(g["closure"][rows], dtype=np.float64)[order]
            attrs = dict(h5.attrs)
        self.trajectory = int(trajectory)
        self.start_index = start_index
        self.start_time = float(times_all[start_index]) if start_index is not None else float(self.times[0])
        self.spacing = float(np.median(np.diff(self.times))) if len(self.times) > 1 else 0.0
        self.name = f"replay:{self.path.name}:{split}:{self.trajectory}"
        target = attrs.get("target")
        self.target = str(target) if target in TARGETS else "any"
        self.preset = str(attrs["preset"]) if "preset" in attrs else None
        self.grid_n = int(self.fields.shape[-1])
        config = {}
        if "config" in attrs:
            try:
                config = json.loads(attrs["config"])
            except (TypeError, json.JSONDecodeError):
                raise DatasetFormatError(f"dataset {dataset_path}: attribute config is not JSON") from None
        self.grid_L = float(attrs["L"]) if "L" in attrs else float(config["L"]) if "L" in config else None
        self.dt = float(attrs["dt"]) if "dt" in attrs else float(config["dt"]) if "dt" in config else None
        self.last_record = -1

    def record_index(self, t_data: float, dt: float) -> int:
        """Index (within the trajectory) of the nearest record at or before dataset time ``t_data``."""
        tol = 1e-6 * dt
        i = int(np.searchsorted(self.times, t_data + tol, side="right")) - 1
        if i < 0:
            raise ReplayRangeError(f"replay {self.name}: dataset time {t_data:.6g} is before the first record "
                                   f"({self.times[0]:.6g}); expected t >= {self.times[0]:.6g}")
        if t_data > self.times[-1] + self.spacing + tol:
            raise ReplayRangeError(f"replay {self.name}: dataset time {t_data:.6g} is past the last record "
                                   f"({self.times[-1]:.6g}) by more than one record interval ({self.spacing:g})")
        return i

    def tendency(self, state: CoarseState) -> np.ndarray:
        i = self.record_index(self.start_time + float(state.time), float(state.dt))
        self.last_record = i
        return np.broadcast_to(self.fields[i], np.shape(state.omega))

    def describe(self) -> dict[str, Any]:
        out = super().describe()
        out.update(closure_dataset=str(self.path), closure_split=self.split, closure_trajectory=self.trajectory,
                   closure_start_index=self.start_row, closure_start_time=self.start_time,
                   closure_record_interval=self.spacing)
        return out
