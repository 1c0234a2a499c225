r"""Dataset files of coarse (vorticity, closure) pairs: the layout, a lazy NumPy reader, the fingerprint.

Files are written by :func:`kolmo.dataset.build_dataset` (``kolmo dataset``). Layout::

    /                          attrs: format="kolmo-dataset", format_version, status, preset,
                               target, target_definition, coarse_graining, coarse_graining_definition,
                               config (fine Config JSON), coarse_config (the coarse model's Config
                               JSON), build (the build arguments, JSON), n_fine, n_coarse, L, dt,
                               seed, burn_in, t_end, every, snapshots_per_trajectory, split_rule,
                               fine_grid, coarse_grid (JSON), software versions, stats (JSON),
                               fingerprint, fingerprint_definition, dtype
    /train, /test              one group per split (attrs: trajectories, pairs)
        vorticity  (n, N, N)   float32 coarse vorticity ω̄ (1/time), dims (pair, y, x)
        closure    (n, N, N)   float32 closure term, a vorticity tendency (1/time²)
        time       (n,)        float64 recording time t = step·Δt
        step       (n,)        int64 fine-run step index of the recording
        trajectory (n,)        int64 trajectory id j (= member j of the fine run)
        done       (n_traj,)   uint8 per-trajectory "written" mask (all 1 in a finished file)

Pairs are stored trajectory-major: trajectory ``j`` of a split occupies the contiguous rows
``[i·T, (i+1)·T)`` (``i`` its position in the split, ``T`` = ``snapshots_per_trajectory``), in time
order. Arrays are computed in float64 and stored as float32.

The *fingerprint* is a SHA-256 over, for split in (train, test) and array in
(vorticity, closure, time, step, trajectory): the name, shape and dtype, then the raw
little-endian C-order bytes. It identifies the content, not the HDF5 byte layout; a resumed
build has the same fingerprint as an uninterrupted one.

This module never imports torch; ``closure/`` wraps :class:`Pairs` in a torch ``Dataset``.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import h5py
import numpy as np

from kolmo.targets import read_target

from kolmo.errors import ConfigurationError, FileFormatError
from kolmo.presets import Config

FORMAT = "kolmo-dataset"
FORMAT_VERSION = 2
"""2: ``missing-physics`` is the noise-free advection (version 1 files hold ``missing-physics-noisy``)."""
SPLITS = ("train", "test")
FIELDS = ("vorticity", "closure")
ARRAYS = ("vorticity", "closure", "time", "step", "trajectory")
FINGERPRINT_DEFINITION = (
    "sha256 over, for split in (train, test) and array in (vorticity, closure, time, step, trajectory): "
    "'split/name', shape and dtype as text, then the raw little-endian C-order bytes")
_JSON_ATTRS = ("config", "coarse_config", "build", "fine_grid", "coarse_grid", "stats", "seeds")
_ROWS_PER_READ = 512


def fingerprint(h5: h5py.File) -> str:
    """Content fingerprint of an open dataset file (see the module docstring)."""
    sha = hashlib.sha256()
    for split in SPLITS:
        for name in ARRAYS:
            d = h5[split][name]
            dt = d.dtype.newbyteorder("<")
            sha.update(f"{split}/{name}|{d.shape}|{dt.str}".encode())
            for start in range(0, d.shape[0], _ROWS_PER_READ):
                block = np.ascontiguousarray(d[start:start + _ROWS_PER_READ], dtype=dt)
                sha.update(block.tobytes())
    return sha.hexdigest()


def split_statistics(h5: h5py.File, split: str = "train") -> dict[str, Any]:
    """Mean and standard deviation of each field over all pixels of all pairs of ``split``.

    Accumulated in float64 block by block with Chan et al.'s pairwise update (no cancellation).
    """
    g = h5[split]
    out: dict[str, Any] = {"split": split, "pairs": int(g["vorticity"].shape[0])}
    for name in FIELDS:
        d = g[name]
        count, mean, m2 = 0, 0.0, 0.0
        for start in range(0, d.shape[0], _ROWS_PER_READ):
            x = np.asarray(d[start:start + _ROWS_PER_READ], dtype=np.float64)
            nb = x.size
            if nb == 0:
                continue
            mb = float(x.mean())
            m2b = float(np.sum((x - mb) ** 2))
            delta = mb - mean
            tot = count + nb
            mean += delta * nb / tot
            m2 += m2b + delta * delta * count * nb / tot
            count = tot
        std = float(np.sqrt(m2 / count)) if count else float("nan")
        out[name] = {"mean": mean if count else float("nan"), "std": std}
    return out


def _decode_attrs(attrs: h5py.AttributeManager) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in attrs.items():
        if isinstance(v, bytes):
            v = v.decode()
        if isinstance(v, np.generic):
            v = v.item()
        if k in _JSON_ATTRS and isinstance(v, str):
            try:
                v = json.loads(v)
            except json.JSONDecodeError:
                pass
        out[k] = v
    if "target" in out:
        out["target"] = read_target(str(out["target"]), FORMAT, out.get("format_version"))
    return out


def open_dataset_file(path: str | os.PathLike, mode: str = "r") -> h5py.File:
    """Open a dataset file with typed errors for missing, corrupt or foreign files."""
    p = Path(path)
    if not p.exists():
        alt = p.with_name(p.name + ".partial")
        hint = f" (an unfinished build is in {alt}; rerun `kolmo dataset` with the same arguments)" \
            if alt.exists() else ""
        raise FileFormatError(f"dataset file {p} does not exist{hint}")
    try:
        h5 = h5py.File(p, mode)
    except OSError as exc:
        raise FileFormatError(f"cannot read {p}: not an HDF5 file or corrupt ({exc})") from None
    if h5.attrs.get("format") != FORMAT:
        fmt = h5.attrs.get("format")
        h5.close()
        raise FileFormatError(f"{p} is not a kolmo dataset file (format={fmt!r}, expected {FORMAT!r})")
    return h5


@dataclass(frozen=True)
class TrajectoryPairs:
    """All pairs of one trajectory, in time order (arrays in memory).

    Attributes
    ----------
    trajectory
        Trajectory id ``j``.
    time, step
        ``(T,)`` recording times and fine-run step indices.
    vorticity, closure
        ``(T, N, N)`` float32 coarse vorticity (1/time) and closure (1/time²).
    every
        Recording interval (time units).
    """

    trajectory: int
    time: np.ndarray
    step: np.ndarray
    vorticity: np.ndarray
    closure: np.ndarray
    every: float

    def __len__(self) -> int:
        return len(self.time)

    def index_at(self, t: float) -> int:
        """Index of the latest recording at or before ``t`` (zero-order hold).

        Valid for ``time[0] <= t < time[-1] + every``; outside that range a
        :class:`ConfigurationError` says which times are covered.
        """
        tol = 1e-9 * max(1.0, abs(t))
        i = int(np.searchsorted(self.time, t + tol, side="right")) - 1
        if i < 0 or t >= self.time[-1] + self.every - tol:
            raise ConfigurationError(
                f"time {t!r} is outside trajectory {self.trajectory}'s recordings "
                f"[{self.time[0]:.6g}, {self.time[-1] + self.every:.6g})")
        return i

    def closure_at(self, t: float) -> np.ndarray:
        """Closure ``(N, N)`` held from the latest recording at or before ``t``."""
        return self.closure[self.index_at(t)]

    def vorticity_at(self, t: float) -> np.ndarray:
        """Coarse vorticity ``(N, N)`` of the latest recording at or before ``t``."""
        return self.vorticity[self.index_at(t)]


class Pairs:
    """Lazy, read-only view of one split of a dataset file.

    ``pairs[i]`` returns ``(vorticity, closure)``, each ``(N, N)`` float32; ``pairs[a:b]`` or
    ``pairs[index_array]`` return ``(n, N, N)`` arrays. Only the indexed rows are read. The
    file handle is reopened after a fork (safe in torch ``DataLoader`` workers) and dropped when
    pickled.

    Parameters
    ----------
    path
        A finished dataset file.
    split
        ``"train"`` or ``"test"``.

    Attributes
    ----------
    time, step, trajectory
        ``(n,)`` arrays (in memory).
    attrs
        The file's root attributes, JSON ones decoded to dicts.
    stats
        ``{"vorticity": {"mean", "std"}, "closure": {...}, "split": "train", "pairs"}``: over
        the TRAIN split (use these to normalise every split).
    """

    def __init__(self, path: str | os.PathLike, split: str = "train") -> None:
        if split not in SPLITS:
            raise ConfigurationError(f"unknown split {split!r}; valid: {', '.join(SPLITS)}")
        self.path, self.split = Path(path), split
        with open_dataset_file(self.path) as h5:
            if h5.attrs.get("status") != "complete":
                raise FileFormatError(f"{self.path} is not a finished dataset (status={h5.attrs.get('status')!r})")
            if split not in h5 or any(name not in h5[split] for name in ARRAYS):
                raise FileFormatError(f"{self.path} has no complete split {split!r}")
            g = h5[split]
            self.attrs = _decode_attrs(h5.attrs)
            self.time = np.asarray(g["time"])
            self.step = np.asarray(g["step"])
            self.trajectory = np.asarray(g["trajectory"])
            self.shape = tuple(g["vorticity"].shape)
        self.stats: dict[str, Any] = self.attrs.get("stats", {})
        self._h5: h5py.File | None = None
        self._pid = -1

    # ------------------------------------------------------------------ file handle
    def _group(self) -> h5py.Group:
        if self._h5 is None or self._pid != os.getpid():
            self._h5 = h5py.File(self.path, "r")
            self._pid = os.getpid()
        return self._h5[self.split]

    def close(self) -> None:
        if self._h5 is not None and self._pid == os.getpid():
            self._h5.close()
        self._h5 = None

    def __enter__(self) -> "Pairs":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_h5"], state["_pid"] = None, -1
        return state

    # ------------------------------------------------------------------ access
    def __len__(self) -> int:
        return self.shape[0]

    @property
    def n(self) -> int:
        """Coarse grid points per side."""
        return self.shape[-1]

    def __getitem__(self, index: int | slice | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        g = self._group()
        if isinstance(index, (int, np.integer)):
            i = int(index)
            if not -len(self) <= i < len(self):
                raise IndexError(f"pair {i} out of range for {len(self)} {self.split} pairs")
            i %= len(self)
            return g["vorticity"][i], g["closure"][i]
        if isinstance(index, slice):
            return g["vorticity"][index], g["closure"][index]
        idx = np.asarray(index)
        if idx.dtype == bool:
            idx = np.nonzero(idx)[0]
        n = len(self)
        idx = idx.astype(np.int64).ravel()
        if np.any((idx < -n) | (idx >= n)):
            raise IndexError(f"pair indices out of range for {n} {self.split} pairs")
        idx = np.where(idx < 0, idx + n, idx)
        order = np.argsort(idx, kind="stable")
        uniq, inverse = np.unique(idx[order], return_inverse=True)  # h5py wants increasing indices
        v, c = g["vorticity"][uniq], g["closure"][uniq]
        back = np.empty_like(order)
        back[order] = np.arange(len(order))
        return v[inverse][back], c[inverse][back]

    def __iter__(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        for i in range(len(self)):
            yield self[i]

    @property
    def trajectories(self) -> np.ndarray:
        """Trajectory ids of this split, increasing."""
        return np.unique(self.trajectory)

    def trajectory_pairs(self, j: int) -> TrajectoryPairs:
        """Every pair of trajectory ``j`` in time order (e.g. to replay the true closure online)."""
        rows = np.nonzero(self.trajectory == j)[0]
        if len(rows) == 0:
            raise ConfigurationError(
                f"trajectory {j} is not in the {self.split} split (it holds {self.trajectories.tolist()})")
        sl = slice(int(rows[0]), int(rows[-1]) + 1)  # stored contiguously, in time order
        v, c = self[sl]
        return TrajectoryPairs(int(j), self.time[sl].copy(), self.step[sl].copy(), v, c,
                               float(self.attrs["every"]))

    @property
    def config(self) -> Config:
        """The fine run's :class:`~kolmo.presets.Config` (``members``/``first_member`` of batch 0)."""
        return Config.from_json(json.dumps(self.attrs["config"]))

    @property
    def coarse_config(self) -> Config:
        """The coarse model the closure belongs to (e.g. no advection for ``missing-physics``)."""
        return Config.from_json(json.dumps(self.attrs["coarse_config"]))

    def __repr__(self) -> str:
        return (f"Pairs({str(self.path)!r}, split={self.split!r}, pairs={len(self)}, grid={self.n}, "
                f"target={self.attrs.get('target')!r})")


def open_pairs(path: str | os.PathLike, split: str = "train") -> Pairs:
    """Open split ``split`` of a finished dataset file as a lazy :class:`Pairs` view."""
    return Pairs(path, split)


def verify(path: str | os.PathLike) -> str:
    """Recompute the content fingerprint of a dataset file; raise :class:`FileFormatError` if it
    differs from the stored one. Returns the fingerprint."""
    with open_dataset_file(path) as h5:
        stored = h5.attrs.get("fingerprint")
        got = fingerprint(h5)
    if stored != got:
        raise FileFormatError(f"{path}: content fingerprint {got} does not match the stored {stored!r}")
    return got
