r"""The inputs of an online evaluation: run files and dataset trajectories, on one grid and one clock.

A :class:`Source` is a run file (``kolmo run``) or a dataset trajectory (:mod:`kolmo.pairs`),
read one snapshot at a time and coarse-grained to the evaluated run's grid
(:func:`kolmo.coarse.subsample` or :func:`kolmo.coarse.spectral_truncate`). :func:`align_times`
matches snapshot times; :func:`parse_reference` reads a ``--reference`` spec. See
:mod:`kolmo.evaluation.online` for the specs and the alignment rule.
"""

from __future__ import annotations

import math
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import h5py
import numpy as np

from kolmo.coarse import coarsening_factor, spectral_truncate, subsample
from kolmo.errors import ConfigurationError, FileFormatError, KolmoError, ShapeError
from kolmo.presets import Config

__all__ = ["Source", "parse_reference", "file_format", "open_run", "open_dataset", "align_times", "interval",
           "time_range", "unique_labels", "run_label"]

@dataclass
class Source:
    """A run file or a dataset trajectory, read one snapshot at a time on the evaluation grid.

    ``field(i)`` returns snapshot ``i`` as ``(B, n, n)`` float64, coarse-grained from the
    native grid ``n_native`` by ``coarse_graining``.
    """

    label: str
    role: str
    spec: str
    path: Path
    kind: str
    preset: str
    L: float
    n_native: int
    times: np.ndarray
    members: int
    status: str
    closure: str
    config: Config | None
    data: Any
    n: int = 0
    coarse_graining: str = "none"
    diag_time: np.ndarray | None = None
    diag_enstrophy: np.ndarray | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    _cg: Callable[[np.ndarray], np.ndarray] | None = None

    def set_grid(self, n: int, rule: str) -> None:
        """Coarse-grain to ``n`` with ``rule`` (``subsample``/``sharp``); ShapeError if impossible."""
        self.n = n
        if self.n_native == n:
            self.coarse_graining, self._cg = "none (same grid)", None
            return
        if self.n_native < n or self.n_native % n:
            raise ShapeError(f"{self.role} {self.spec} is on a {self.n_native}² grid, the run on {n}²: a grid "
                             f"can only be coarse-grained to one whose size divides it")
        coarsening_factor(self.n_native, n)
        if rule == "subsample":
            self.coarse_graining = f"subsample {self.n_native}² → {n}² (stride {self.n_native // n})"
            self._cg = lambda w: subsample(w, n)
        else:
            self.coarse_graining = f"sharp spectral truncation {self.n_native}² → {n}²"
            self._cg = lambda w: spectral_truncate(w, n)

    def field(self, i: int) -> np.ndarray:
        try:
            w = np.asarray(self.data[i], dtype=np.float64)
        except (OSError, KeyError, ValueError) as exc:
            raise FileFormatError(f"cannot read snapshot {i} of {self.spec}: {exc}") from None
        return self._cg(w) if self._cg is not None else w

    def describe(self) -> dict[str, Any]:
        out = {"label": self.label, "role": self.role, "spec": self.spec, "path": str(self.path),
               "kind": self.kind, "preset": self.preset, "L": self.L, "grid": self.n_native,
               "evaluated_on": self.n, "coarse_graining": self.coarse_graining, "members": self.members,
               "snapshots": int(len(self.times)), "t_first": float(self.times[0]),
               "t_last": float(self.times[-1]), "status": self.status, "closure": self.closure}
        out.update(self.extra)
        return out


def decode(v: Any) -> Any:
    """An HDF5 attribute as a plain Python value (bytes → str, numpy scalar → Python scalar)."""
    if isinstance(v, bytes):
        v = v.decode()
    if isinstance(v, np.generic):
        v = v.item()
    return v


def interval(times: np.ndarray) -> float:
    """Median snapshot interval of ``times`` ``(T,)`` (inf for one snapshot)."""
    return float(np.median(np.diff(times))) if len(times) > 1 else math.inf


def parse_reference(spec: str) -> dict[str, Any]:
    """Parse a reference spec: ``{"path", "kind": "run", "member"}`` or
    ``{"path", "kind": "dataset", "split", "trajectory", "start"}`` (``None``: not given)."""
    from kolmo.pairs import SPLITS

    parts = str(spec).split(":")
    if len(parts) >= 2 and parts[1] in SPLITS:
        if len(parts) > 4 or not all(p.lstrip("-").isdigit() for p in parts[2:]):
            raise ConfigurationError(f"reference {spec!r}: expected DATA.h5:SPLIT:TRAJ[:START] with integers")
        nums = [int(p) for p in parts[2:]]
        return {"path": Path(parts[0]), "kind": "dataset", "split": parts[1],
                "trajectory": nums[0] if nums else None, "start": nums[1] if len(nums) > 1 else None}
    if len(parts) == 2 and parts[1].lstrip("-").isdigit():
        return {"path": Path(parts[0]), "kind": "run", "member": int(parts[1])}
    if len(parts) == 1 and parts[0]:
        return {"path": Path(parts[0]), "kind": "run", "member": None}
    raise ConfigurationError(f"reference {spec!r}: expected TRUTH.h5[:MEMBER] or DATA.h5:SPLIT:TRAJ[:START]")


def file_format(path: Path) -> str | None:
    if not path.exists():
        raise FileFormatError(f"file {path} does not exist")
    try:
        with h5py.File(path, "r") as h5:
            return decode(h5.attrs.get("format"))
    except OSError as exc:
        raise FileFormatError(f"cannot read {path}: not an HDF5 file or corrupt ({exc})") from None


def open_run(path: Path, role: str, label: str, stack: ExitStack) -> Source:
    from kolmo.io import open_run

    h5 = stack.enter_context(open_run(path))
    fmt = decode(h5.attrs.get("format"))
    if fmt != "kolmo-run":
        hint = " (a dataset: give it as DATA.h5:test:TRAJ[:START])" if fmt == "kolmo-dataset" else ""
        raise FileFormatError(f"{role} {path} is not a kolmo run file (format={fmt!r}){hint}")
    missing = [k for k in ("time", "vorticity") if k not in h5]
    if missing or "config" not in h5.attrs:
        raise FileFormatError(f"{role} {path} lacks {missing or ['the config attribute']}: truncated or corrupt")
    try:
        config = Config.from_json(decode(h5.attrs["config"]))
        times = np.asarray(h5["time"], dtype=np.float64)
        vort = h5["vorticity"]
        shape = vort.shape
    except (OSError, ValueError, TypeError, KeyError, KolmoError) as exc:
        raise FileFormatError(f"cannot read {role} {path}: {exc}") from None
    if len(shape) != 4 or shape[-1] != shape[-2] or shape[0] != len(times) or len(times) == 0:
        raise FileFormatError(f"{role} {path}: vorticity {shape} and time ({len(times)},) do not form a run with "
                              f"at least one snapshot (T, B, N, N)")
    if not np.all(np.isfinite(times)) or np.any(np.diff(times) <= 0):
        raise FileFormatError(f"{role} {path}: snapshot times are not finite and increasing")
    diag_t = diag_z = None
    if "diagnostics" in h5 and "enstrophy" in h5["diagnostics"] and "time" in h5["diagnostics"]:
        try:
            diag_t = np.asarray(h5["diagnostics/time"], dtype=np.float64)
            diag_z = np.asarray(h5["diagnostics/enstrophy"], dtype=np.float64)
        except OSError as exc:
            raise FileFormatError(f"cannot read the diagnostics of {role} {path}: {exc}") from None
        if diag_z.ndim != 2 or diag_z.shape != (len(diag_t), shape[1]) or len(diag_t) == 0:
            diag_t = diag_z = None
    status = str(decode(h5.attrs.get("status", "unknown")))
    extra = {"config_t_end": config.t_end, "save_every": config.save_every, "dt": config.dt}
    if "error" in h5.attrs:
        extra["error"] = str(decode(h5.attrs["error"]))
    return Source(label=label, role=role, spec=str(path), path=path, kind="run", preset=config.preset,
                  L=float(config.L), n_native=int(shape[-1]), times=times, members=int(shape[1]), status=status,
                  closure=str(decode(h5.attrs.get("closure", "none"))), config=config, data=vort,
                  diag_time=diag_t, diag_enstrophy=diag_z, extra=extra)


def _dataset_start_from_init(run: Source, path: Path, split: str) -> tuple[int, int]:
    """``(trajectory, start)`` from the run's ``--init DATA.h5:SPLIT:ROW`` when it is this file."""
    from kolmo.pairs import open_pairs

    init = None
    if run.config is not None and run.config.initial == "file":
        init = str(run.config.initial_params.get("path", ""))
    parts = init.split(":") if init else []
    same = False
    if len(parts) == 3 and parts[2].lstrip("-").isdigit() and parts[1] == split:
        try:
            same = Path(parts[0]).resolve() == path.resolve()
        except OSError:
            same = False
    if not same:
        raise ConfigurationError(
            f"reference {path}:{split} names no trajectory and the run did not start from that file "
            f"(its initial condition: {init or run.config.initial if run.config else 'unknown'}); "
            f"give DATA.h5:{split}:TRAJ[:START]")
    with open_pairs(path, split) as pairs:
        row = int(parts[2]) % len(pairs)
        traj = int(pairs.trajectory[row])
        first = int(np.nonzero(pairs.trajectory == traj)[0][0])
    return traj, row - first


def open_dataset(ref: dict[str, Any], spec: str, run: Source) -> Source:
    from kolmo.pairs import open_pairs

    path, split = ref["path"], ref["split"]
    traj, start = ref["trajectory"], ref["start"]
    inferred = traj is None
    if inferred:
        traj, start = _dataset_start_from_init(run, path, split)
    start = 0 if start is None else start
    with open_pairs(path, split) as pairs:
        attrs = pairs.attrs
        tp = pairs.trajectory_pairs(traj)
    if not 0 <= start < len(tp):
        raise ConfigurationError(f"reference {spec}: start index {start} outside trajectory {traj}'s "
                                 f"{len(tp)} records")
    times = tp.time[start:] - tp.time[start]
    vort = tp.vorticity[start:, None]
    preset = str(attrs.get("preset", "unknown"))
    try:
        L = float(attrs["L"])
    except (KeyError, TypeError, ValueError):
        raise FileFormatError(f"dataset {path} lacks the domain side attribute L") from None
    extra = {"split": split, "trajectory": int(traj), "start_index": int(start),
             "start_time_in_dataset": float(tp.time[start]), "record_interval": float(tp.every),
             "inferred_from_run_init": inferred, "dataset_target": str(attrs.get("target", "")),
             "dataset_coarse_graining": str(attrs.get("coarse_graining", ""))}
    return Source(label="truth", role="reference", spec=f"{path}:{split}:{traj}:{start}", path=path,
                  kind="dataset", preset=preset, L=L, n_native=int(vort.shape[-1]), times=times, members=1,
                  status=str(attrs.get("status", "")), closure="(dataset truth)", config=None, data=vort,
                  extra=extra)


def align_times(run_times: np.ndarray, other_times: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Match each run time with the nearest ``other`` time within half the smaller snapshot interval.

    Returns ``(i_run, i_other, tolerance)``: index arrays of the matched pairs (increasing).
    """
    a = np.asarray(run_times, dtype=np.float64)
    b = np.asarray(other_times, dtype=np.float64)
    half = 0.5 * min(interval(a), interval(b))
    scale = max(1.0, float(np.max(np.abs(a))), float(np.max(np.abs(b))))
    tol = (half if math.isfinite(half) else 0.0) + 1e-9 * scale
    j = np.clip(np.searchsorted(b, a), 1, max(1, len(b) - 1))
    if len(b) == 1:
        near = np.zeros(len(a), dtype=np.int64)
    else:
        left, right = b[j - 1], b[j]
        near = np.where(np.abs(a - left) <= np.abs(right - a), j - 1, j)
    ok = np.abs(b[near] - a) <= tol
    return np.nonzero(ok)[0], near[ok], tol


def time_range(t: np.ndarray) -> str:
    """``[t0, t1] (T snapshots)`` for messages."""
    return f"[{t[0]:.6g}, {t[-1]:.6g}] ({len(t)} snapshots)"



def unique_labels(sources: list[Source]) -> None:
    """Make the labels of ``sources`` unique in place (``NAME #2``, ``NAME #3``, ...)."""
    seen: dict[str, int] = {}
    for s in sources:
        base = s.label
        if base in seen:
            seen[base] += 1
            s.label = f"{base} #{seen[base]}"
        else:
            seen[base] = 1


def run_label(path: Path, closure: str) -> str:
    """``STEM (closure)`` unless the file name already says it."""
    stem = path.name[:-3] if path.name.endswith(".h5") else path.name
    squashed = stem.lower().replace("-", "").replace("_", "")
    if closure == "none":
        return stem if ("noclosure" in squashed or "none" in squashed) else f"{stem} (no closure)"
    return stem if not closure or closure.lower() in stem.lower() else f"{stem} ({closure})"

