"""The Markdown report and the report folder of an online evaluation
(:func:`kolmo.evaluation.online.evaluate_online`; figures: :mod:`kolmo.evaluation.figures`).

The folder (``report.md``, ``metrics.json``, PNG figures) is written into a temporary sibling
and renamed at the end, so a failed evaluation leaves nothing; an existing non-empty folder is
never overwritten (:class:`~kolmo.errors.OutputExistsError`).
"""

from __future__ import annotations

import json
import math
import os
import shutil
from pathlib import Path
from typing import Any

from kolmo.errors import OutputExistsError

__all__ = ["markdown", "fmt", "check_out", "write_folder", "STAT_NAMES"]

STAT_NAMES = {
    "spectrum_error_energy": "energy spectrum (log10 RMS)",
    "spectrum_error_enstrophy": "enstrophy spectrum (log10 RMS)",
    "w1_vorticity": "W1 vorticity PDF",
    "w1_u": "W1 u PDF",
    "w1_v": "W1 v PDF",
    "energy_series_error": "energy time series (rel. RMS)",
    "enstrophy_series_error": "enstrophy time series (rel. RMS)",
    "horizon_shortfall": "blow-up horizon shortfall",
}


def fmt(x: Any, digits: int = 3) -> str:
    if x is None:
        return "—"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, int):
        return str(x)
    if isinstance(x, float):
        if not math.isfinite(x):
            return "—"
        if x != 0 and (abs(x) < 1e-3 or abs(x) >= 1e5):
            return f"{x:.{digits}e}"
        return f"{x:.{digits}g}"
    return str(x)


def _pm(mean: Any, two_std: Any) -> str:
    if mean is None:
        return "—"
    return f"{fmt(mean)} ± {fmt(two_std, 2)}"


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


CAPTIONS = {
    "snapshots.png": "Vorticity snapshots: truth, baselines (member 0), first closure members.",
    "error_vs_time.png": "Relative error vs time (± 2 std band), spread–skill ratio, fair CRPS.",
    "spectra.png": "Time-mean energy and enstrophy spectra; shaded: beyond the scored cutoff.",
    "timeseries.png": "Domain-mean energy and enstrophy vs time (± 2 std band).",
    "pdfs.png": "PDFs of vorticity and velocity components with W1 distances.",
    "scores.png": "Similarity scores against the first baseline.",
}


def markdown(m: dict[str, Any], figures: list[str]) -> str:
    """The ``report.md`` text: setup, warnings, tables (the primary protocol's first), figures,
    definitions."""
    run = m["run"]
    primary = m["primary_protocol"]
    out: list[str] = [f"# Online evaluation — {run['label']}", ""]
    out.append(f"Preset **{m['preset']}**, primary protocol **{primary}**: {m['protocols'][primary]}.")
    out.append("")
    out += _md_setup(m)
    if m["warnings"]:
        out += ["## Warnings", ""] + [f"- {w}" for w in m["warnings"]] + [""]
    traj, stats = _md_trajectory(m), _md_statistics(m)
    out += traj + stats if primary == "trajectory" else stats + traj
    if figures:
        out += ["## Figures", ""]
        for f in figures:
            out += [f"### {CAPTIONS.get(f, f)}", "", f"![{f}]({f})", ""]
    out += ["## Definitions", ""] + [f"- **{k}**: {v}" for k, v in m["definitions"].items()] + [""]
    out.append("All numbers are also in `metrics.json` (non-finite or undefined values as `null`).")
    return "\n".join(out) + "\n"


def _md_setup(m: dict[str, Any]) -> list[str]:
    """The setup table (run, reference, baselines) and the grid / alignment / provenance lines."""
    run, ref = m["run"], m["reference"]
    setup = [["run", f"`{run['path']}`", f"closure `{run['closure']}`, {run['members']} members, {run['grid']}², "
              f"status {run['status']}, t ∈ [{fmt(run['t_first'])}, {fmt(run['t_last'])}]"],
             ["reference", f"`{ref['spec']}`", f"{ref['kind']}, {ref['members']} member(s), grid {ref['grid']}², "
              f"coarse-graining: {ref['coarse_graining']}; truth trajectory: {ref['truth']}"]]
    for b in m["baselines"]:
        setup.append(["baseline", f"`{b['path']}`", f"closure `{b['closure']}`, {b['members']} members, "
                      f"{b['grid']}², {b['coarse_graining']}, status {b['status']}"])
    out = ["## Setup", "", _table(["role", "file", "details"], setup), ""]
    al = m["alignment"]
    t = al["times"]
    out.append(f"- Grid {m['grid']['n']}², L = {fmt(m['grid']['L'])}; coarse-graining rule: "
               f"{m['grid']['coarse_graining_rule']}.")
    out.append(f"- Times: {al['evaluated']} of the run's {al['run_snapshots']} snapshots matched a reference "
               f"snapshot ({al['rule']}; tolerance {fmt(al['tolerance'])}), t ∈ [{fmt(t[0])}, {fmt(t[-1])}] "
               f"(run clock; a dataset truth is re-based so that its start record is t = 0).")
    if ref.get("kind") == "dataset":
        out.append(f"- Truth: dataset trajectory {ref['trajectory']} of split `{ref['split']}` from record "
                   f"{ref['start_index']} (dataset time {fmt(ref['start_time_in_dataset'])})"
                   + (", taken from the run's `--init`" if ref.get("inferred_from_run_init") else "") + ".")
    out.append(f"- Similarity scores against: **{m['similarity_baseline'] or 'no baseline given'}**.")
    out.append(f"- kolmo {m['kolmo_version']}, {m['created']}.")
    out.append("")
    return out


def _md_trajectory(m: dict[str, Any]) -> list[str]:
    """Trajectory tables: member errors, ensemble-mean error, spread-skill, CRPS, similarity."""
    hs, labels = m["horizons"], list(m["results"])

    def hcol(j: int) -> str:
        times = [r["trajectory"]["at_horizons"][j]["time"] for r in m["results"].values()]
        used = next((x for x in times if x is not None), None)
        h = hs[j]
        return f"+{h:g}" if used is None or abs(used - h) < 1e-9 else f"+{h:g} (t = {used:.4g})"

    def row(label: str, key: str, two: str | None = None) -> list[str]:
        cells = [label]
        for r in m["results"][label]["trajectory"]["at_horizons"]:
            cells.append(_pm(r[key], r[two]) if two else fmt(r[key]))
        return cells

    header = ["source"] + [hcol(j) for j in range(len(hs))]
    traj = ["## Trajectory skill vs the truth", "",
            "Relative L2 error of each member vs the truth, **mean ± 2 std over members**:", "",
            _table(header, [row(lb, "rel_error_mean", "rel_error_2std") for lb in labels]), "",
            "Relative error of the **ensemble mean**:", "",
            _table(header, [row(lb, "ensemble_mean_rel_error") for lb in labels]), "",
            "**Spread–skill ratio** √((B+1)/B)·spread / RMSE(ensemble mean) (1 = calibrated, < 1 over-confident; "
            "undefined for one member):", "",
            _table(header, [row(lb, "spread_skill") for lb in labels]), "",
            "**Fair CRPS** averaged over grid points [1/time] (lower is better):", "",
            _table(header, [row(lb, "crps") for lb in labels]), ""]
    if m["similarity"]:
        traj += [f"Similarity of the member-mean relative error vs **{m['similarity_baseline']}** "
                 "(1 − e/e_baseline):", "",
                 _table(header, [[lb] + [fmt(v) for v in s["rel_error_mean_at_horizons"]]
                                 for lb, s in m["similarity"].items()]), ""]
    return traj


def _md_statistics(m: dict[str, Any]) -> list[str]:
    """Statistics tables: distances, similarity scores, blow-up-free horizons."""
    labels = list(m["results"])
    stat_rows = []
    for key, name in STAT_NAMES.items():
        stat_rows.append([name] + [fmt(m["results"][lb]["statistics"][key]) for lb in labels])
    stats = ["## Statistics vs the coarse-grained reference", "",
             f"Distances d (lower is better), pooled over members and times ≥ {m['settings']['statistics_start']:g}; "
             f"spectra scored for 0 < k ≤ {fmt(m['grid']['spectral_cutoff_k'])} (2/3 of the coarse Nyquist):", "",
             _table(["distance"] + labels, stat_rows), ""]
    if m["similarity"]:
        sl = list(m["similarity"])
        stats += [f"Similarity scores 1 − d/d_baseline against **{m['similarity_baseline']}** (1 perfect, "
                  "0 no better than the baseline, < 0 worse):", "",
                  _table(["distance"] + sl, [[name] + [fmt(m["similarity"][lb][key]) for lb in sl]
                                             for key, name in STAT_NAMES.items()]), ""]
    hor_rows = []
    for lb in labels:
        h = m["results"][lb]["statistics"]["horizon"]
        hor_rows.append([lb, fmt(h.get("horizon_mean")), fmt(h.get("horizon_min")),
                         fmt(h.get("blowup_free_fraction")), fmt(h.get("members_blown_up")),
                         fmt(h.get("t_window")), h.get("basis", "")])
    stats += ["Blow-up-free horizon (first time a member is non-finite or its enstrophy exceeds "
              f"{m['settings']['blowup_factor']:g}× the reference maximum; censored at the window end):", "",
              _table(["source", "mean horizon", "min horizon", "blow-up-free fraction", "members blown up",
                      "window end", "from"], hor_rows), ""]
    return stats


# ---------------------------------------------------------------------------------------------- the folder
def check_out(out_dir: Path) -> None:
    """Refuse an existing non-empty (or non-folder) ``out_dir``."""
    if out_dir.exists():
        if not out_dir.is_dir():
            raise OutputExistsError(f"report folder {out_dir} exists and is a file; choose another --out")
        if any(out_dir.iterdir()):
            raise OutputExistsError(f"report folder {out_dir} exists and is not empty; choose another --out "
                                    f"or remove it")


def _prepare_out(out_dir: Path) -> Path:
    """Check ``out_dir``; return a fresh temporary sibling to write into."""
    check_out(out_dir)
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


def write_folder(out_dir: Path, metrics_json: dict[str, Any], figure_data: dict[str, Any] | None) -> list[str]:
    """Write ``report.md``, ``metrics.json`` and (with ``figure_data``) the figures; return the file names.

    Written into a temporary sibling and renamed at the end, so a failure leaves nothing.
    """
    tmp = _prepare_out(out_dir)
    try:
        files = ["metrics.json"]
        if figure_data is not None:
            from kolmo.evaluation.figures import write_figures

            files += write_figures(metrics_json, figure_data, tmp)
        files.insert(0, "report.md")
        (tmp / "report.md").write_text(markdown(metrics_json, [f for f in files if f.endswith(".png")]))
        (tmp / "metrics.json").write_text(json.dumps(metrics_json, indent=1, allow_nan=False))
        _finish_out(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return files
