"""Per-source metrics of an online evaluation, accumulated one aligned snapshot time at a time.

:class:`Accumulator` holds, for one source (``B`` members, ``m`` aligned times), the per-member
relative error, energy and enstrophy ``(m, B)``, the ensemble scores ``(m,)`` and the pooled
statistics (time-summed spectra, strided PDF samples); definitions in :mod:`kolmo.metrics`.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from kolmo import metrics
from kolmo.evaluation.sources import Source

__all__ = ["Accumulator", "SNAPSHOT_MEMBERS", "member_stats", "nanmean_rows", "nanstd_rows", "series_error",
           "clean"]

SNAPSHOT_MEMBERS = 3
"""Members of the run kept at the figure times (snapshot figure)."""


class Accumulator:
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


def member_stats(values: np.ndarray) -> tuple[float, float, int]:
    """Mean and std (ddof=1; 0 for one member) over the finite entries of ``values`` ``(B,)``."""
    v = values[np.isfinite(values)]
    if v.size == 0:
        return float("nan"), float("nan"), 0
    mean, std = metrics.ensemble_mean_std(v[:, None])
    return float(mean[0]), float(std[0]), int(v.size)


def nanmean_rows(x: np.ndarray) -> np.ndarray:
    """Mean over axis 1 of the finite entries (NaN where a row has none), without warnings."""
    ok = np.isfinite(x)
    cnt = ok.sum(axis=1)
    tot = np.where(ok, x, 0.0).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(cnt > 0, tot / np.maximum(cnt, 1), np.nan)


def nanstd_rows(x: np.ndarray) -> np.ndarray:
    out = np.full(x.shape[0], np.nan)
    for i, row in enumerate(x):
        v = row[np.isfinite(row)]
        if v.size:
            out[i] = float(v.std(ddof=1)) if v.size > 1 else 0.0
    return out


def series_error(model: np.ndarray, ref: np.ndarray) -> float:
    """Relative RMS difference of two time series over the times where both are finite."""
    ok = np.isfinite(model) & np.isfinite(ref)
    if not ok.any():
        return float("nan")
    den = math.sqrt(float(np.mean(ref[ok] ** 2)))
    return math.sqrt(float(np.mean((model[ok] - ref[ok]) ** 2))) / den if den > 0 else float("nan")


def clean(obj: Any) -> Any:
    """JSON-ready copy: numpy → Python, non-finite floats → None."""
    if isinstance(obj, dict):
        return {str(k): clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [clean(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return clean(obj.tolist())
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

