r"""A-posteriori ("online") evaluation of a closure run against a truth: ``kolmo evaluate --online``.

One function, :func:`evaluate_online`, reads a run file (an ensemble run with a closure), a
reference (the truth) and optional baseline runs (no closure, a physics closure, the replayed
true closure), computes the metrics of ``shared/SCIENCE.md`` §4 and writes a report folder
(``report.md``, ``metrics.json``, PNG figures; figures and Markdown: :mod:`coupling.report`).

Reference
---------
``TRUTH.h5[:MEMBER]``
    A run file on the run's grid, or on a finer grid coarse-grained by the preset's rule:
    ``dong2026`` → every ``N_f/N_c``-th point (:func:`kolmo.coarse.subsample`), ``kolmogorov``
    → sharp spectral truncation to the coarse grid's modes (:func:`kolmo.coarse.spectral_truncate`).
    The truth trajectory of the trajectory metrics is member ``MEMBER`` (default 0); the
    statistics pool all members.
``DATA.h5:SPLIT:TRAJ[:START]``
    A dataset trajectory (:mod:`kolmo.pairs`): trajectory id ``TRAJ`` of split ``SPLIT``
    (``test``) from its ``START``-th record (default 0) on, time re-based so that record
    ``START`` is t = 0. ``DATA.h5:SPLIT`` alone takes trajectory and start from the run's own
    ``--init DATA.h5:SPLIT:ROW``.

Time alignment
--------------
Runs start at t = 0 in their own clock. Each run snapshot time is matched with the nearest
reference (or baseline) snapshot within half the smaller of the two snapshot intervals; run
times without a match are skipped, and no match at all raises :class:`NoOverlapError`.

Metrics (all on the run's grid; definitions in :mod:`kolmo.metrics`)
-------------------------------------------------------------------
Trajectory (the dong2026 paper protocol; computed for every preset): at every aligned time and
at the horizons (+5/+10/+15/+20): relative L2 error of each member vs the truth (mean ± 2 std
over members), relative error of the ensemble mean, spread–skill ratio (with the
:math:`\sqrt{(B+1)/B}` correction), fair CRPS averaged over grid points.

Statistics (the kolmogorov LES protocol; computed for every preset), pooled over members and
aligned times ``t >= statistics_start``: log-spectral error of the time-mean energy and
enstrophy spectra for :math:`0 < k \le \frac23 k_N` (coarse Nyquist :math:`k_N = \pi N/L`);
W1 distances of the vorticity and velocity-component PDFs (velocity by the spectral inverse);
relative RMS error of the ensemble-mean energy and enstrophy time series; blow-up-free horizon
(first time a member is non-finite or its enstrophy exceeds ``blowup_factor`` × the reference's
maximum; its distance is the shortfall from the end of the evaluation window). Each distance
``d`` also as a similarity score :math:`1 - d/d_\mathrm{baseline}` against the first baseline.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import shutil
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import h5py
import numpy as np

from kolmo import __version__, metrics
from kolmo.coarse import coarsening_factor, spectral_truncate, subsample
from kolmo.errors import ConfigurationError, FileFormatError, KolmoError, OutputExistsError, ShapeError
from kolmo.presets import Config

__all__ = ["evaluate_online", "NoOverlapError", "COARSE_GRAINING", "parse_reference", "align_times",
           "DEFAULT_HORIZONS"]

DEFAULT_HORIZONS = (5.0, 10.0, 15.0, 20.0)
COARSE_GRAINING = {
    "dong2026": ("subsample", "every (N_f/N_c)-th grid point, no filter (the paper)"),
    "kolmogorov": ("sharp", "sharp spectral truncation to the coarse grid's modes |n_x|, |n_y| < N_c/2"),
}
PRIMARY_PROTOCOL = {"dong2026": "trajectory", "kolmogorov": "statistics"}
PROTOCOL_TEXT = {
    "trajectory": "paper protocol (Dong, Yang & Wu 2026): ensemble rollouts from one truth snapshot; relative "
                  "error vs the truth trajectory at the horizons (mean ± 2 std over members), spread-skill, "
                  "fair CRPS",
    "statistics": "LES protocol: spectra below 2/3 of the coarse Nyquist, W1 distances of vorticity and velocity "
                  "PDFs, energy/enstrophy time series and blow-up-free horizon vs the coarse-grained reference, "
                  "each as a similarity score against the first baseline",
}
SNAPSHOT_MEMBERS = 3
STAT_DISTANCES = ("spectrum_error_energy", "spectrum_error_enstrophy", "w1_vorticity", "w1_u", "w1_v",
                  "energy_series_error", "enstrophy_series_error", "horizon_shortfall")


class NoOverlapError(ConfigurationError):
    """The run and the reference (or a baseline) share no snapshot time."""


# ---------------------------------------------------------------------------------------------- sources
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


def _decode(v: Any) -> Any:
    if isinstance(v, bytes):
        v = v.decode()
    if isinstance(v, np.generic):
        v = v.item()
    return v


def _interval(times: np.ndarray) -> float:
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


def _file_format(path: Path) -> str | None:
    if not path.exists():
        raise FileFormatError(f"file {path} does not exist")
    try:
        with h5py.File(path, "r") as h5:
            return _decode(h5.attrs.get("format"))
    except OSError as exc:
        raise FileFormatError(f"cannot read {path}: not an HDF5 file or corrupt ({exc})") from None


def _open_run(path: Path, role: str, label: str, stack: ExitStack) -> Source:
    from kolmo.io import open_run

    h5 = stack.enter_context(open_run(path))
    fmt = _decode(h5.attrs.get("format"))
    if fmt != "kolmo-run":
        hint = " (a dataset: give it as DATA.h5:test:TRAJ[:START])" if fmt == "kolmo-dataset" else ""
        raise FileFormatError(f"{role} {path} is not a kolmo run file (format={fmt!r}){hint}")
    missing = [k for k in ("time", "vorticity") if k not in h5]
    if missing or "config" not in h5.attrs:
        raise FileFormatError(f"{role} {path} lacks {missing or ['the config attribute']}: truncated or corrupt")
    try:
        config = Config.from_json(_decode(h5.attrs["config"]))
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
    status = str(_decode(h5.attrs.get("status", "unknown")))
    extra = {"config_t_end": config.t_end, "save_every": config.save_every, "dt": config.dt}
    if "error" in h5.attrs:
        extra["error"] = str(_decode(h5.attrs["error"]))
    return Source(label=label, role=role, spec=str(path), path=path, kind="run", preset=config.preset,
                  L=float(config.L), n_native=int(shape[-1]), times=times, members=int(shape[1]), status=status,
                  closure=str(_decode(h5.attrs.get("closure", "none"))), config=config, data=vort,
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


def _open_dataset(ref: dict[str, Any], spec: str, run: Source) -> Source:
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


# ---------------------------------------------------------------------------------------------- alignment
def align_times(run_times: np.ndarray, other_times: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Match each run time with the nearest ``other`` time within half the smaller snapshot interval.

    Returns ``(i_run, i_other, tolerance)``: index arrays of the matched pairs (increasing).
    """
    a = np.asarray(run_times, dtype=np.float64)
    b = np.asarray(other_times, dtype=np.float64)
    half = 0.5 * min(_interval(a), _interval(b))
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


def _range(t: np.ndarray) -> str:
    return f"[{t[0]:.6g}, {t[-1]:.6g}] ({len(t)} snapshots)"


# ---------------------------------------------------------------------------------------------- accumulation
class _Accumulator:
    """Per-source metrics accumulated one aligned time at a time."""

    def __init__(self, src: Source, m: int, k: int, max_samples: int, stat_count: int) -> None:
        self.src = src
        b = src.members
        nan = np.full((m, b), np.nan)
        self.rel_error, self.energy, self.enstrophy = nan.copy(), nan.copy(), nan.copy()
        self.finite = np.zeros((m, b), dtype=bool)
        self.present = np.zeros(m, dtype=bool)
        self.mean_error = np.full(m, np.nan)
        self.spread = np.full(m, np.nan)
        self.skill = np.full(m, np.nan)
        self.ratio = np.full(m, np.nan)
        self.crps = np.full(m, np.nan)
        self.e_spec = np.zeros((b, k))
        self.z_spec = np.zeros((b, k))
        self.spec_count = np.zeros(b)
        per_time = max(1, max_samples // max(1, stat_count))
        self.stride = max(1, math.ceil(b * src.n * src.n / per_time))
        self.samples: dict[str, list[np.ndarray]] = {"vorticity": [], "u": [], "v": []}
        self.snapshots: dict[int, np.ndarray] = {}

    def add(self, i: int, w: np.ndarray, truth: np.ndarray | None, in_stats: bool, snapshot: bool) -> None:
        s = self.src
        self.present[i] = True
        fin = np.isfinite(w).all(axis=(-2, -1))
        self.finite[i] = fin
        if snapshot:
            self.snapshots[i] = w[:SNAPSHOT_MEMBERS].astype(np.float32)
        if not fin.any():
            return
        wf = w[fin]
        k, e, z = metrics.isotropic_spectra(wf, s.L)
        self.energy[i, fin] = e.sum(axis=1)
        self.enstrophy[i, fin] = z.sum(axis=1)
        if truth is not None and truth.ndim == 3:  # paired: member b vs truth member b
            self.rel_error[i, fin] = metrics.relative_l2_error(wf, truth[fin])
        elif truth is not None:
            self.rel_error[i, fin] = metrics.relative_l2_error(wf, truth)
            self.mean_error[i] = float(metrics.relative_l2_error(wf.mean(axis=0)[None], truth)[0])
            ss = metrics.spread_skill(wf, truth)
            self.spread[i], self.skill[i], self.ratio[i] = ss.spread, ss.skill, ss.ratio
            self.crps[i] = float(metrics.crps_fair(wf, truth).mean())
        if in_stats:
            self.e_spec[fin] += e
            self.z_spec[fin] += z
            self.spec_count[fin] += 1
            u, v = metrics.velocity(wf, s.L)
            for name, arr in (("vorticity", wf), ("u", u), ("v", v)):
                self.samples[name].append(arr.ravel()[::self.stride].astype(np.float32))

    def sample(self, name: str) -> np.ndarray:
        parts = self.samples[name]
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)

    def mean_spectra(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Time-mean spectra per member ``(B', K)`` (members with data) and their member mean."""
        ok = self.spec_count > 0
        e = self.e_spec[ok] / self.spec_count[ok, None]
        z = self.z_spec[ok] / self.spec_count[ok, None]
        return e, z, ok


def _member_stats(values: np.ndarray) -> tuple[float, float, int]:
    """Mean and std (ddof=1; 0 for one member) over the finite entries of ``values`` ``(B,)``."""
    v = values[np.isfinite(values)]
    if v.size == 0:
        return float("nan"), float("nan"), 0
    mean, std = metrics.ensemble_mean_std(v[:, None])
    return float(mean[0]), float(std[0]), int(v.size)


def _nanmean_rows(x: np.ndarray) -> np.ndarray:
    """Mean over axis 1 of the finite entries (NaN where a row has none), without warnings."""
    ok = np.isfinite(x)
    cnt = ok.sum(axis=1)
    tot = np.where(ok, x, 0.0).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(cnt > 0, tot / np.maximum(cnt, 1), np.nan)


def _nanstd_rows(x: np.ndarray) -> np.ndarray:
    out = np.full(x.shape[0], np.nan)
    for i, row in enumerate(x):
        v = row[np.isfinite(row)]
        if v.size:
            out[i] = float(v.std(ddof=1)) if v.size > 1 else 0.0
    return out


def _series_error(model: np.ndarray, ref: np.ndarray) -> float:
    """Relative RMS difference of two time series over the times where both are finite."""
    ok = np.isfinite(model) & np.isfinite(ref)
    if not ok.any():
        return float("nan")
    den = math.sqrt(float(np.mean(ref[ok] ** 2)))
    return math.sqrt(float(np.mean((model[ok] - ref[ok]) ** 2))) / den if den > 0 else float("nan")


def _clean(obj: Any) -> Any:
    """JSON-ready copy: numpy → Python, non-finite floats → None."""
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _clean(obj.tolist())
    if isinstance(obj, (np.bool_, bool)):
        return bool(obj)
    if isinstance(obj, (np.integer, int)):
        return int(obj)
    if isinstance(obj, (np.floating, float)):
        f = float(obj)
        return f if math.isfinite(f) else None
    if isinstance(obj, Path):
        return str(obj)
    return obj


def _unique_labels(sources: list[Source]) -> None:
    seen: dict[str, int] = {}
    for s in sources:
        base = s.label
        if base in seen:
            seen[base] += 1
            s.label = f"{base} #{seen[base]}"
        else:
            seen[base] = 1


def _label(path: Path, closure: str) -> str:
    """``STEM (closure)`` unless the file name already says it."""
    stem = path.name[:-3] if path.name.endswith(".h5") else path.name
    squashed = stem.lower().replace("-", "").replace("_", "")
    if closure == "none":
        return stem if ("noclosure" in squashed or "none" in squashed) else f"{stem} (no closure)"
    return stem if not closure or closure.lower() in stem.lower() else f"{stem} ({closure})"


def _check_out(out_dir: Path) -> None:
    """Refuse an existing non-empty (or non-folder) ``out_dir``."""
    if out_dir.exists():
        if not out_dir.is_dir():
            raise OutputExistsError(f"report folder {out_dir} exists and is a file; choose another --out")
        if any(out_dir.iterdir()):
            raise OutputExistsError(f"report folder {out_dir} exists and is not empty; choose another --out "
                                    f"or remove it")


def _prepare_out(out_dir: Path) -> Path:
    """Check ``out_dir``; return a fresh temporary sibling to write into."""
    _check_out(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_dir.with_name(f".{out_dir.name}.partial-{os.getpid()}")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    return tmp


def _finish_out(tmp: Path, out_dir: Path) -> None:
    if out_dir.exists():
        if any(out_dir.iterdir()):
            raise OutputExistsError(f"report folder {out_dir} was filled during the evaluation; the report is "
                                    f"kept in {tmp}")
        out_dir.rmdir()
    os.replace(tmp, out_dir)


# ---------------------------------------------------------------------------------------------- the function
def evaluate_online(run: str | os.PathLike, reference: str | os.PathLike,
                    baselines: Sequence[str | os.PathLike] = (), out_dir: str | os.PathLike = "report",
                    horizons: Sequence[float] = DEFAULT_HORIZONS, *, reference_member: int | None = None,
                    statistics_start: float = 0.0, blowup_factor: float = 10.0, max_samples: int = 1_000_000,
                    figures: bool = True) -> dict[str, Any]:
    """Evaluate an online (closure) run against a truth and baselines; write a report folder.

    Parameters
    ----------
    run
        Run file of the model (an ensemble run with a closure), ``(T, B, N, N)`` snapshots.
    reference
        ``TRUTH.h5[:MEMBER]`` (run file, same or finer grid) or ``DATA.h5:SPLIT:TRAJ[:START]``
        (dataset trajectory); see the module docstring.
    baselines
        Run files to compare with (the first one is the baseline of the similarity scores:
        normally the no-closure run), same or finer grid.
    out_dir
        Report folder; must not exist or be empty (else :class:`OutputExistsError`). Written to
        a temporary sibling and renamed at the end, so a failed evaluation leaves nothing.
    horizons
        Times (run clock) of the trajectory table, default +5/+10/+15/+20.
    reference_member
        Member of a run-file reference that is the truth trajectory (default: the spec's, else 0).
    statistics_start
        Pool the statistics (spectra, PDFs, time-series errors) over aligned times ``>=`` this.
    blowup_factor
        A member blows up when its enstrophy exceeds this factor × the reference's maximum.
    max_samples
        At most about this many values per source and variable enter the PDFs and W1 (a fixed
        stride over the pooled values; deterministic).
    figures
        Write the PNG figures (needs matplotlib).

    Returns
    -------
    The content of ``metrics.json`` (non-finite values as ``None``) plus ``report_dir`` and
    ``files`` (names inside the report folder).

    Raises
    ------
    FileFormatError
        A file is missing, corrupt, or not a run/dataset file.
    ShapeError
        A grid cannot be coarse-grained to the run's grid, or domain sides differ.
    ConfigurationError
        Presets differ, a bad spec or option; :class:`NoOverlapError` when no snapshot times match.
    OutputExistsError
        ``out_dir`` exists and is not empty.
    """
    out_dir = Path(out_dir)
    horizons = tuple(float(h) for h in horizons)
    if not all(math.isfinite(h) and h >= 0 for h in horizons):
        raise ConfigurationError(f"horizons must be finite times >= 0, got {list(horizons)}")
    if not (math.isfinite(blowup_factor) and blowup_factor > 0):
        raise ConfigurationError(f"blowup_factor must be positive, got {blowup_factor!r}")
    if max_samples < 1:
        raise ConfigurationError(f"max_samples must be >= 1, got {max_samples!r}")
    _check_out(out_dir)  # before any work
    with ExitStack() as stack:
        run_path = Path(run)
        model = _open_run(run_path, "run", "", stack)
        model.label = _label(run_path, model.closure)
        ref = parse_reference(str(reference))
        if ref["kind"] == "run" and _file_format(ref["path"]) == "kolmo-dataset":
            ref = {"path": ref["path"], "kind": "dataset", "split": "test", "trajectory": None, "start": None}
        paired = False
        if ref["kind"] == "dataset":
            truth_src = _open_dataset(ref, str(reference), model)
            member = 0
        else:
            truth_src = _open_run(ref["path"], "reference", "reference", stack)
            chosen = reference_member if reference_member is not None else ref["member"]
            member = 0 if chosen is None else chosen
            if not -truth_src.members <= member < truth_src.members:
                raise ConfigurationError(f"reference member {member} outside the reference's {truth_src.members}")
            member %= truth_src.members
            # an ensemble reference with as many members as the run, no member named: member b of the
            # run (and of every baseline of that size) is compared with member b of the reference
            paired = chosen is None and truth_src.members > 1 and truth_src.members == model.members
        truth_src.label = "truth" if PRIMARY_PROTOCOL.get(model.preset) == "trajectory" else "reference"
        bases = []
        for b in baselines:
            bp = Path(b)
            src = _open_run(bp, "baseline", "", stack)
            src.label = _label(bp, src.closure)
            bases.append(src)
        _unique_labels([model, *bases])

        preset = model.preset
        rule, rule_text = COARSE_GRAINING.get(preset, COARSE_GRAINING["kolmogorov"])
        for src in (truth_src, *bases):
            if src.preset != preset:
                raise ConfigurationError(f"{src.role} {src.spec} is preset {src.preset!r}, the run {preset!r}")
            if not math.isclose(src.L, model.L, rel_tol=1e-9):
                raise ShapeError(f"{src.role} {src.spec} has domain side L = {src.L}, the run L = {model.L}")
        model.set_grid(model.n_native, rule)
        for src in (truth_src, *bases):
            src.set_grid(model.n_native, rule)
        n, L = model.n, model.L

        # ---- alignment on the run's snapshot times
        i_run, i_ref, tol = align_times(model.times, truth_src.times)
        if len(i_run) == 0:
            raise NoOverlapError(f"no run snapshot time {_range(model.times)} matches a reference time "
                                 f"{_range(truth_src.times)} (tolerance: half a snapshot interval)")
        times = model.times[i_run]
        m = len(times)
        base_idx = []
        warnings: list[str] = []
        for src in bases:
            ib_run, ib, _ = align_times(times, src.times)
            if len(ib_run) == 0:
                raise NoOverlapError(f"baseline {src.spec} {_range(src.times)} shares no snapshot time with the "
                                     f"run/reference {_range(times)}")
            idx = np.full(m, -1)
            idx[ib_run] = ib
            base_idx.append(idx)
            if len(ib_run) < m:
                warnings.append(f"baseline {src.label} covers {len(ib_run)} of the {m} evaluation times "
                                f"(it ends at t = {src.times[-1]:.4g}; status {src.status})")
        if m < len(model.times):
            warnings.append(f"{len(model.times) - m} run snapshot(s) have no reference snapshot within the "
                            f"tolerance ({tol:.3g}) and are skipped")

        if paired:
            truth_text = (f"paired: member b of each {truth_src.members}-member source vs reference member b "
                          f"(ensemble scores undefined)")
            for src in bases:
                if src.members != truth_src.members:
                    warnings.append(f"baseline {src.label} has {src.members} member(s), the paired reference "
                                    f"{truth_src.members}: no trajectory metrics for it")
        else:
            truth_text = f"reference member {member} for every member of every source"
            if truth_src.members > 1:
                warnings.append(f"the reference has {truth_src.members} members; the truth trajectory is member "
                                f"{member} (name another with TRUTH.h5:MEMBER)")
        # horizons and figure times
        # a horizon takes the nearest evaluated time within one snapshot interval (the time used is
        # reported): dataset records are half-open, e.g. t in [20, 40), so +20 is evaluated at 19.9
        h_tol = max(tol, _interval(times) if m > 1 else 0.0) * (1 + 1e-9)
        hz: dict[float, int | None] = {}
        for h in horizons:
            j = int(np.argmin(np.abs(times - h)))
            hz[h] = j if abs(times[j] - h) <= h_tol else None
        missing_h = [h for h, j in hz.items() if j is None]
        if missing_h:
            warnings.append(f"horizon(s) {missing_h} outside the evaluated times {_range(times)}: no values")
        fig_idx = sorted({0, *[j for j in hz.values() if j is not None]})
        if len(fig_idx) < 3 and m > 1:
            fig_idx = sorted(set(fig_idx) | {int(round(x)) for x in np.linspace(0, m - 1, 4)})
        fig_idx = fig_idx[:5] if len(fig_idx) <= 5 else [fig_idx[0], *fig_idx[-4:]]
        fig_set = set(fig_idx)

        # ---- one pass over the aligned times
        stat_mask = times >= statistics_start - tol
        if not stat_mask.any():
            raise ConfigurationError(f"statistics_start = {statistics_start} is after the last evaluated time "
                                     f"{times[-1]:.6g}")
        k_axis = metrics.isotropic_spectra(np.zeros((1, n, n)), L)[0]
        count = int(stat_mask.sum())
        acc_ref = _Accumulator(truth_src, m, len(k_axis), max_samples, count)
        acc_run = _Accumulator(model, m, len(k_axis), max_samples, count)
        acc_base = [_Accumulator(s, m, len(k_axis), max_samples, count) for s in bases]
        for i in range(m):
            w_ref = truth_src.field(int(i_ref[i]))
            truth = w_ref if paired else w_ref[member]
            if not np.isfinite(truth).all():
                raise FileFormatError(f"reference {truth_src.spec} holds non-finite values at t = {times[i]:.6g}")
            snap = i in fig_set
            acc_ref.add(i, w_ref, None, bool(stat_mask[i]), False)
            if snap:
                acc_ref.snapshots[i] = w_ref[member][None].astype(np.float32)
            acc_run.add(i, model.field(int(i_run[i])), truth, bool(stat_mask[i]), snap)
            for acc, idx in zip(acc_base, base_idx):
                if idx[i] >= 0:
                    usable = not paired or acc.src.members == truth_src.members
                    acc.add(i, acc.src.field(int(idx[i])), truth if usable else None, bool(stat_mask[i]), snap)

        # ---- initial-state check
        if abs(times[0]) <= tol:
            e0 = acc_run.rel_error[0]
            worst = float(np.nanmax(e0)) if np.isfinite(e0).any() else float("nan")
            if not worst <= 1e-3:
                warnings.append(f"the run's state at t = 0 differs from the reference's (relative error up to "
                                f"{worst:.3g}): trajectory errors compare different initial conditions; "
                                f"check the reference spec")

        # ---- trajectory metrics
        def traj_block(acc: _Accumulator) -> dict[str, Any]:
            rows = []
            for h in horizons:
                j = hz[h]
                if j is None or not acc.present[j]:
                    rows.append({"horizon": h, "time": None, "rel_error_mean": None, "rel_error_std": None,
                                 "rel_error_2std": None, "members": 0, "ensemble_mean_rel_error": None,
                                 "spread": None, "rmse_of_mean": None, "spread_skill": None, "crps": None})
                    continue
                mean, std, cnt = _member_stats(acc.rel_error[j])
                rows.append({"horizon": h, "time": float(times[j]), "rel_error_mean": mean, "rel_error_std": std,
                             "rel_error_2std": 2 * std, "members": cnt,
                             "ensemble_mean_rel_error": acc.mean_error[j], "spread": acc.spread[j],
                             "rmse_of_mean": acc.skill[j], "spread_skill": acc.ratio[j], "crps": acc.crps[j]})
            return {"at_horizons": rows,
                    "series": {"rel_error_mean": _nanmean_rows(acc.rel_error),
                               "rel_error_std": _nanstd_rows(acc.rel_error),
                               "ensemble_mean_rel_error": acc.mean_error, "spread_skill": acc.ratio,
                               "spread": acc.spread, "rmse_of_mean": acc.skill, "crps": acc.crps}}

        # ---- statistics
        z_ref_max = float(np.nanmax(acc_ref.enstrophy)) if np.isfinite(acc_ref.enstrophy).any() else float("nan")
        threshold = blowup_factor * z_ref_max
        t_nominal = model.extra.get("config_t_end", model.times[-1])
        t_window = float(min(truth_src.times[-1], t_nominal))
        k_cut = metrics.spectral_cutoff(n, L)
        e_ref_m, z_ref_m, _ = acc_ref.mean_spectra()
        e_ref, z_ref = e_ref_m.mean(axis=0), z_ref_m.mean(axis=0)
        ref_samples = {v: acc_ref.sample(v) for v in ("vorticity", "u", "v")}
        e_ref_t = _nanmean_rows(acc_ref.energy)
        z_ref_t = _nanmean_rows(acc_ref.enstrophy)

        def horizon_of(acc: _Accumulator) -> dict[str, Any]:
            src = acc.src
            if src.diag_time is not None and src.n_native == n:
                sel = src.diag_time <= t_window + tol
                t, z, fin, basis = src.diag_time[sel], src.diag_enstrophy[sel], None, "per-step diagnostics"
            else:
                sel = acc.present
                t, z, fin, basis = times[sel], acc.enstrophy[sel], acc.finite[sel], "snapshots"
            if len(t) == 0:
                return {"basis": basis, "horizon_mean": None, "horizon_min": None, "blowup_free_fraction": None,
                        "members_blown_up": None, "horizon_shortfall": None, "t_window": t_window}
            bh = metrics.blowup_horizon(t, z, threshold, fin)
            h = np.minimum(bh.horizon, t_window)
            # a file that stopped early (blew up or unfinished) cannot count as reaching the window's end
            reached = h >= t_window - tol
            free = (~bh.blew_up) & reached
            return {"basis": basis, "horizon_mean": float(h.mean()), "horizon_min": float(h.min()),
                    "blowup_free_fraction": float(free.mean()), "members_blown_up": int(bh.blew_up.sum()),
                    "members_stopped_early": int(((~bh.blew_up) & ~reached).sum()),
                    "horizon_shortfall": float(t_window - h.mean()), "t_window": t_window,
                    "threshold_enstrophy": threshold, "status": src.status}

        def stats_block(acc: _Accumulator) -> dict[str, Any]:
            e_m, z_m, ok = acc.mean_spectra()
            out: dict[str, Any] = {}
            if e_m.shape[0]:
                out["spectrum_error_energy"] = metrics.log_spectral_error(e_m.mean(axis=0), e_ref, k_axis, k_cut)
                out["spectrum_error_enstrophy"] = metrics.log_spectral_error(z_m.mean(axis=0), z_ref, k_axis,
                                                                             k_cut)
            else:
                out["spectrum_error_energy"] = out["spectrum_error_enstrophy"] = float("nan")
            for var in ("vorticity", "u", "v"):
                smp = acc.sample(var)
                out[f"w1_{var}"] = metrics.wasserstein1(smp, ref_samples[var]) if smp.size else float("nan")
            out["energy_series_error"] = _series_error(_nanmean_rows(acc.energy)[stat_mask], e_ref_t[stat_mask])
            out["enstrophy_series_error"] = _series_error(_nanmean_rows(acc.enstrophy)[stat_mask],
                                                          z_ref_t[stat_mask])
            hor = horizon_of(acc)
            out["horizon_shortfall"] = hor["horizon_shortfall"] if hor["horizon_shortfall"] is not None \
                else float("nan")
            out["horizon"] = hor
            out["pdf_samples"] = int(acc.sample("vorticity").size)
            return out

        accs = [acc_run, *acc_base]
        results: dict[str, Any] = {}
        for acc in accs:
            results[acc.src.label] = {"role": acc.src.role, "trajectory": traj_block(acc),
                                      "statistics": stats_block(acc)}
        for acc in accs:
            hor = results[acc.src.label]["statistics"]["horizon"]
            if hor.get("members_blown_up"):
                warnings.append(f"{acc.src.label}: {hor['members_blown_up']} of {acc.src.members} member(s) blew "
                                f"up (non-finite or enstrophy > {blowup_factor:g}× the reference maximum) before "
                                f"t = {t_window:.4g}; first at t = {hor['horizon_min']:.4g}")
            if acc.src.status not in ("complete",):
                warnings.append(f"{acc.src.label}: file status {acc.src.status!r}"
                                + (f" ({acc.src.extra['error']})" if "error" in acc.src.extra else ""))

        # ---- similarity against the first baseline
        similarity: dict[str, Any] = {}
        if bases:
            b0 = results[bases[0].label]
            for acc in accs[0:1] + acc_base[1:]:
                r = results[acc.src.label]
                sim = {d: metrics.similarity(r["statistics"][d], b0["statistics"][d]) for d in STAT_DISTANCES}
                for key in ("rel_error_mean", "crps"):
                    sim[f"{key}_at_horizons"] = [
                        metrics.similarity(x[key], y[key]) if x[key] is not None and y[key] is not None
                        else float("nan")
                        for x, y in zip(r["trajectory"]["at_horizons"], b0["trajectory"]["at_horizons"])]
                similarity[acc.src.label] = sim

        report = {
            "format": "kolmo-online-evaluation", "format_version": 1, "kolmo_version": __version__,
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(),
            "preset": preset, "primary_protocol": PRIMARY_PROTOCOL.get(preset, "statistics"),
            "protocols": PROTOCOL_TEXT,
            "grid": {"n": n, "L": L, "spectral_cutoff_k": k_cut,
                     "spectral_cutoff_rule": "2/3 of the coarse Nyquist wavenumber pi N / L",
                     "coarse_graining_rule": f"{rule}: {rule_text}"},
            "run": model.describe(),
            "reference": {**truth_src.describe(), "truth_member": "paired" if paired else member,
                          "truth": truth_text},
            "baselines": [s.describe() for s in bases],
            "similarity_baseline": bases[0].label if bases else None,
            "alignment": {"times": times, "tolerance": tol, "evaluated": m, "run_snapshots": len(model.times),
                          "rule": "nearest reference snapshot within half the smaller snapshot interval"},
            "horizons": list(horizons),
            "settings": {"statistics_start": statistics_start, "blowup_factor": blowup_factor,
                         "max_samples": max_samples, "reference_member": "paired" if paired else member},
            "reference_series": {"energy": e_ref_t, "enstrophy": z_ref_t},
            "results": results, "similarity": similarity, "warnings": warnings,
            "definitions": {
                "rel_error": "||omega_b - omega_truth||_2 / ||omega_truth||_2 per member b; mean and std "
                             "(ddof=1) over members",
                "spread_skill": "sqrt((B+1)/B) * sqrt(mean_x var_b(omega)) / sqrt(mean_x (mean_b omega - truth)^2);"
                                " 1 = calibrated, < 1 over-confident",
                "crps": "fair CRPS (Ferro 2014): mean|X_i - y| - sum_ij |X_i - X_j| / (2B(B-1)), averaged over "
                        "grid points, units 1/time",
                "spectrum_error": "RMS over shells 0 < k <= 2/3 k_Nyquist of log10(S_model/S_ref) of the time- and "
                                  "member-mean shell spectra (decades)",
                "w1": "Wasserstein-1 distance of pooled pixel values (members x times >= statistics_start); "
                      "velocity u = d(psi)/dy, v = -d(psi)/dx from -lap(psi) = omega",
                "series_error": "relative RMS difference of the member-mean time series vs the reference's",
                "horizon": f"first time a member is non-finite or has enstrophy > {blowup_factor:g} x the "
                           "reference's maximum; censored at the end of the evaluation window; shortfall = "
                           "window end - mean horizon",
                "similarity": "1 - d(model)/d(first baseline): 1 perfect, 0 as good as the baseline, < 0 worse",
            },
        }
        clean = _clean(report)

        # ---- write the report folder
        tmp = _prepare_out(out_dir)
        try:
            files = ["metrics.json"]
            if figures:
                from coupling import report as _report

                data = {"times": times, "fig_idx": fig_idx, "k": k_axis, "k_cut": k_cut,
                        "reference": acc_ref, "run": acc_run, "baselines": acc_base, "ref_spectra": (e_ref, z_ref),
                        "ref_series": (e_ref_t, z_ref_t), "ref_samples": ref_samples, "threshold": threshold,
                        "ref_member": member}
                files += _report.write_figures(clean, data, tmp)
            files.insert(0, "report.md")
            from coupling import report as _report

            (tmp / "report.md").write_text(_report.markdown(clean, [f for f in files if f.endswith(".png")]))
            (tmp / "metrics.json").write_text(json.dumps(clean, indent=1, allow_nan=False))
            _finish_out(tmp, out_dir)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    clean["report_dir"] = str(out_dir)
    clean["files"] = files
    return clean
