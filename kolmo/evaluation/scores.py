"""Scores of one source against the reference: the trajectory block (errors, spread-skill, CRPS at the
horizons) and the statistics block (spectra, PDFs, series, blow-up horizon), and the similarity
scores against the first baseline. Definitions in :mod:`kolmo.metrics` and ``metrics.json``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from kolmo import metrics
from kolmo.evaluation.accumulate import Accumulator, member_stats, nanmean_rows, nanstd_rows, series_error
from kolmo.evaluation.sources import Source

__all__ = ["STAT_DISTANCES", "ReferenceStats", "reference_stats", "trajectory_block", "statistics_block",
           "similarity"]

STAT_DISTANCES = ("spectrum_error_energy", "spectrum_error_enstrophy", "w1_vorticity", "w1_u", "w1_v",
                  "energy_series_error", "enstrophy_series_error", "horizon_shortfall")
"""The statistics distances (each also scored as a similarity against the first baseline)."""


@dataclass
class ReferenceStats:
    """What every source's statistics are compared with (time- and member-mean reference spectra,
    PDF samples, series) and the blow-up threshold and window."""

    e_spec: np.ndarray
    z_spec: np.ndarray
    samples: dict[str, np.ndarray]
    e_series: np.ndarray
    z_series: np.ndarray
    threshold: float
    t_window: float
    k_cut: float


def trajectory_block(acc: Accumulator, horizons: tuple[float, ...], hz: dict[float, int | None],
                      times: np.ndarray) -> dict[str, Any]:
    """Errors, spread-skill and CRPS at the horizons, and their time series."""
    rows = []
    for h in horizons:
        j = hz[h]
        if j is None or not acc.present[j]:
            rows.append({"horizon": h, "time": None, "rel_error_mean": None, "rel_error_std": None,
                         "rel_error_2std": None, "members": 0, "ensemble_mean_rel_error": None,
                         "spread": None, "rmse_of_mean": None, "spread_skill": None, "crps": None})
            continue
        mean, std, cnt = member_stats(acc.rel_error[j])
        rows.append({"horizon": h, "time": float(times[j]), "rel_error_mean": mean, "rel_error_std": std,
                     "rel_error_2std": 2 * std, "members": cnt,
                     "ensemble_mean_rel_error": acc.mean_error[j], "spread": acc.spread[j],
                     "rmse_of_mean": acc.skill[j], "spread_skill": acc.ratio[j], "crps": acc.crps[j]})
    return {"at_horizons": rows,
            "series": {"rel_error_mean": nanmean_rows(acc.rel_error),
                       "rel_error_std": nanstd_rows(acc.rel_error),
                       "ensemble_mean_rel_error": acc.mean_error, "spread_skill": acc.ratio,
                       "spread": acc.spread, "rmse_of_mean": acc.skill, "crps": acc.crps}}


def reference_stats(acc_ref: Accumulator, model: Source, truth_end: float, blowup_factor: float) -> ReferenceStats:
    """The reference's statistics; the evaluation window ends at the earlier of the reference's last
    snapshot ``truth_end`` and the run's nominal end time."""
    z_ref_max = float(np.nanmax(acc_ref.enstrophy)) if np.isfinite(acc_ref.enstrophy).any() else float("nan")
    t_nominal = model.extra.get("config_t_end", model.times[-1])
    e_ref_m, z_ref_m, _ = acc_ref.mean_spectra()
    return ReferenceStats(e_spec=e_ref_m.mean(axis=0), z_spec=z_ref_m.mean(axis=0),
                           samples={v: acc_ref.sample(v) for v in ("vorticity", "u", "v")},
                           e_series=nanmean_rows(acc_ref.energy), z_series=nanmean_rows(acc_ref.enstrophy),
                           threshold=blowup_factor * z_ref_max,
                           t_window=float(min(truth_end, t_nominal)),
                           k_cut=metrics.spectral_cutoff(model.n, model.L))


def horizon_of(acc: Accumulator, ref: ReferenceStats, n: int, times: np.ndarray, tol: float) -> dict[str, Any]:
    """Blow-up-free horizon of a source: per-step diagnostics when on the run's grid, else snapshots."""
    src, t_window = acc.src, ref.t_window
    if src.diag_time is not None and src.n_native == n:
        sel = src.diag_time <= t_window + tol
        t, z, fin, basis = src.diag_time[sel], src.diag_enstrophy[sel], None, "per-step diagnostics"
    else:
        sel = acc.present
        t, z, fin, basis = times[sel], acc.enstrophy[sel], acc.finite[sel], "snapshots"
    if len(t) == 0:
        return {"basis": basis, "horizon_mean": None, "horizon_min": None, "blowup_free_fraction": None,
                "members_blown_up": None, "horizon_shortfall": None, "t_window": t_window}
    bh = metrics.blowup_horizon(t, z, ref.threshold, fin)
    h = np.minimum(bh.horizon, t_window)
    # a file that stopped early (blew up or unfinished) cannot count as reaching the window's end
    reached = h >= t_window - tol
    free = (~bh.blew_up) & reached
    return {"basis": basis, "horizon_mean": float(h.mean()), "horizon_min": float(h.min()),
            "blowup_free_fraction": float(free.mean()), "members_blown_up": int(bh.blew_up.sum()),
            "members_stopped_early": int(((~bh.blew_up) & ~reached).sum()),
            "horizon_shortfall": float(t_window - h.mean()), "t_window": t_window,
            "threshold_enstrophy": ref.threshold, "status": src.status}


def statistics_block(acc: Accumulator, ref: ReferenceStats, stat_mask: np.ndarray, k_axis: np.ndarray, n: int,
                     times: np.ndarray, tol: float) -> dict[str, Any]:
    """Spectral errors, W1 distances, series errors and the blow-up horizon of one source."""
    e_m, z_m, _ = acc.mean_spectra()
    out: dict[str, Any] = {}
    if e_m.shape[0]:
        out["spectrum_error_energy"] = metrics.log_spectral_error(e_m.mean(axis=0), ref.e_spec, k_axis, ref.k_cut)
        out["spectrum_error_enstrophy"] = metrics.log_spectral_error(z_m.mean(axis=0), ref.z_spec, k_axis,
                                                                     ref.k_cut)
    else:
        out["spectrum_error_energy"] = out["spectrum_error_enstrophy"] = float("nan")
    for var in ("vorticity", "u", "v"):
        smp = acc.sample(var)
        out[f"w1_{var}"] = metrics.wasserstein1(smp, ref.samples[var]) if smp.size else float("nan")
    mask = stat_mask
    out["energy_series_error"] = series_error(nanmean_rows(acc.energy)[mask], ref.e_series[mask])
    out["enstrophy_series_error"] = series_error(nanmean_rows(acc.enstrophy)[mask], ref.z_series[mask])
    hor = horizon_of(acc, ref, n, times, tol)
    out["horizon_shortfall"] = hor["horizon_shortfall"] if hor["horizon_shortfall"] is not None else float("nan")
    out["horizon"] = hor
    out["pdf_samples"] = int(acc.sample("vorticity").size)
    return out


def similarity(results: dict[str, Any], labels: list[str]) -> dict[str, Any]:
    """Similarity ``1 - d/d_baseline`` against ``labels[1]`` (the first baseline) of ``labels[0]`` (the
    run) and of ``labels[2:]`` (the later baselines); ``{}`` without a baseline."""
    if len(labels) < 2:
        return {}
    b0 = results[labels[1]]
    out: dict[str, Any] = {}
    for label in [labels[0], *labels[2:]]:
        r = results[label]
        sim = {d: metrics.similarity(r["statistics"][d], b0["statistics"][d]) for d in STAT_DISTANCES}
        for key in ("rel_error_mean", "crps"):
            sim[f"{key}_at_horizons"] = [
                metrics.similarity(x[key], y[key]) if x[key] is not None and y[key] is not None else float("nan")
                for x, y in zip(r["trajectory"]["at_horizons"], b0["trajectory"]["at_horizons"])]
        out[label] = sim
    return out
