r"""A-posteriori ("online") evaluation of a closure run against a truth: ``kolmo evaluate online``.

One function, :func:`evaluate_online`, reads a run file (an ensemble run with a closure), a
reference (the truth) and optional baseline runs (no closure, a physics closure, the replayed
true closure), computes the metrics of ``shared/SCIENCE.md`` §4 and writes a report folder
(``report.md``, ``metrics.json``, PNG figures; figures: :mod:`kolmo.evaluation.figures`, Markdown
and folder: :mod:`kolmo.evaluation.report`).

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

The steps of :func:`evaluate_online`, one function each: open the sources
(:func:`_open_sources`), align their times (:func:`_align`), choose horizons and figure times
(:func:`_horizon_indices`), one pass over the aligned times (:func:`_accumulate`), the trajectory
and statistics blocks per source (:func:`_trajectory_block`, :func:`_statistics_block`), the
similarity scores (:func:`_similarity`), the report dictionary (:func:`_report`) and the report
folder (:func:`~kolmo.evaluation.report.write_folder`).
"""

from __future__ import annotations

import datetime as _dt
import math
import os
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from kolmo import __version__, metrics
from kolmo.errors import ConfigurationError, FileFormatError, ShapeError
from kolmo.evaluation.accumulate import Accumulator, clean
from kolmo.evaluation.report import check_out, write_folder
from kolmo.evaluation.scores import ReferenceStats, reference_stats, similarity, statistics_block, trajectory_block
from kolmo.evaluation.sources import (Source, align_times, file_format, interval, open_dataset, open_run,
                                      parse_reference, run_label, time_range, unique_labels)

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
DEFINITIONS = {
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
    "horizon": "first time a member is non-finite or has enstrophy > {factor:g} x the "
               "reference's maximum; censored at the end of the evaluation window; shortfall = "
               "window end - mean horizon",
    "similarity": "1 - d(model)/d(first baseline): 1 perfect, 0 as good as the baseline, < 0 worse",
}
"""Definitions written into ``metrics.json`` (``{factor}``: the blow-up factor)."""


class NoOverlapError(ConfigurationError):
    """The run and the reference (or a baseline) share no snapshot time."""


# ---------------------------------------------------------------------------------------------- step data
@dataclass
class _Inputs:
    """The opened sources on the run's grid: the run, the reference (truth) and the baselines."""

    model: Source
    truth: Source
    bases: list[Source]
    member: int
    paired: bool
    rule: str
    rule_text: str


@dataclass
class _Alignment:
    """The evaluated times ``(m,)``: run/reference snapshot indices, tolerance, baseline indices (-1: none)."""

    times: np.ndarray
    i_run: np.ndarray
    i_ref: np.ndarray
    tol: float
    base_idx: list[np.ndarray]


@dataclass
class _Pass:
    """The accumulators of the one pass over the aligned times."""

    ref: Accumulator
    run: Accumulator
    bases: list[Accumulator]
    stat_mask: np.ndarray
    k_axis: np.ndarray


# ---------------------------------------------------------------------------------------------- 1. sources
def _check_settings(horizons: Sequence[float], blowup_factor: float, max_samples: int) -> tuple[float, ...]:
    hs = tuple(float(h) for h in horizons)
    if not all(math.isfinite(h) and h >= 0 for h in hs):
        raise ConfigurationError(f"horizons must be finite times >= 0, got {list(hs)}")
    if not (math.isfinite(blowup_factor) and blowup_factor > 0):
        raise ConfigurationError(f"blowup_factor must be positive, got {blowup_factor!r}")
    if max_samples < 1:
        raise ConfigurationError(f"max_samples must be >= 1, got {max_samples!r}")
    return hs


def _open_reference(reference: str, model: Source, reference_member: int | None,
                    stack: ExitStack) -> tuple[Source, int, bool]:
    """The truth source, its member and whether members are paired with the run's."""
    ref = parse_reference(str(reference))
    if ref["kind"] == "run" and file_format(ref["path"]) == "kolmo-dataset":
        ref = {"path": ref["path"], "kind": "dataset", "split": "test", "trajectory": None, "start": None}
    if ref["kind"] == "dataset":
        return open_dataset(ref, str(reference), model), 0, False
    truth = open_run(ref["path"], "reference", "reference", stack)
    chosen = reference_member if reference_member is not None else ref["member"]
    member = 0 if chosen is None else chosen
    if not -truth.members <= member < truth.members:
        raise ConfigurationError(f"reference member {member} outside the reference's {truth.members}")
    member %= truth.members
    # an ensemble reference with as many members as the run, no member named: member b of the
    # run (and of every baseline of that size) is compared with member b of the reference
    paired = chosen is None and truth.members > 1 and truth.members == model.members
    return truth, member, paired


def _open_sources(run: str | os.PathLike, reference: str | os.PathLike, baselines: Sequence[str | os.PathLike],
                  reference_member: int | None, stack: ExitStack) -> _Inputs:
    """Open every source, label it, check presets and domains, and put all on the run's grid."""
    run_path = Path(run)
    model = open_run(run_path, "run", "", stack)
    model.label = run_label(run_path, model.closure)
    truth, member, paired = _open_reference(str(reference), model, reference_member, stack)
    truth.label = "truth" if PRIMARY_PROTOCOL.get(model.preset) == "trajectory" else "reference"
    bases = []
    for b in baselines:
        bp = Path(b)
        src = open_run(bp, "baseline", "", stack)
        src.label = run_label(bp, src.closure)
        bases.append(src)
    unique_labels([model, *bases])
    preset = model.preset
    rule, rule_text = COARSE_GRAINING.get(preset, COARSE_GRAINING["kolmogorov"])
    for src in (truth, *bases):
        if src.preset != preset:
            raise ConfigurationError(f"{src.role} {src.spec} is preset {src.preset!r}, the run {preset!r}")
        if not math.isclose(src.L, model.L, rel_tol=1e-9):
            raise ShapeError(f"{src.role} {src.spec} has domain side L = {src.L}, the run L = {model.L}")
    model.set_grid(model.n_native, rule)
    for src in (truth, *bases):
        src.set_grid(model.n_native, rule)
    return _Inputs(model, truth, bases, member, paired, rule, rule_text)


# ---------------------------------------------------------------------------------------------- 2. times
def _align(inp: _Inputs, warnings: list[str]) -> _Alignment:
    """Align the reference and every baseline on the run's snapshot times (:class:`NoOverlapError`)."""
    model, truth = inp.model, inp.truth
    i_run, i_ref, tol = align_times(model.times, truth.times)
    if len(i_run) == 0:
        raise NoOverlapError(f"no run snapshot time {time_range(model.times)} matches a reference time "
                             f"{time_range(truth.times)} (tolerance: half a snapshot interval)")
    times = model.times[i_run]
    m = len(times)
    base_idx = []
    for src in inp.bases:
        ib_run, ib, _ = align_times(times, src.times)
        if len(ib_run) == 0:
            raise NoOverlapError(f"baseline {src.spec} {time_range(src.times)} shares no snapshot time with the "
                                 f"run/reference {time_range(times)}")
        idx = np.full(m, -1)
        idx[ib_run] = ib
        base_idx.append(idx)
        if len(ib_run) < m:
            warnings.append(f"baseline {src.label} covers {len(ib_run)} of the {m} evaluation times "
                            f"(it ends at t = {src.times[-1]:.4g}; status {src.status})")
    if m < len(model.times):
        warnings.append(f"{len(model.times) - m} run snapshot(s) have no reference snapshot within the "
                        f"tolerance ({tol:.3g}) and are skipped")
    return _Alignment(times, i_run, i_ref, tol, base_idx)


def _truth_text(inp: _Inputs, warnings: list[str]) -> str:
    """How the truth trajectory is chosen (for the report), with the warnings it implies."""
    truth = inp.truth
    if inp.paired:
        for src in inp.bases:
            if src.members != truth.members:
                warnings.append(f"baseline {src.label} has {src.members} member(s), the paired reference "
                                f"{truth.members}: no trajectory metrics for it")
        return (f"paired: member b of each {truth.members}-member source vs reference member b "
                f"(ensemble scores undefined)")
    if truth.members > 1:
        warnings.append(f"the reference has {truth.members} members; the truth trajectory is member "
                        f"{inp.member} (name another with TRUTH.h5:MEMBER)")
    return f"reference member {inp.member} for every member of every source"


def _horizon_indices(al: _Alignment, horizons: tuple[float, ...],
                     warnings: list[str]) -> tuple[dict[float, int | None], list[int]]:
    """The evaluated time index of each horizon (``None``: outside) and the figure times (at most 5).

    A horizon takes the nearest evaluated time within one snapshot interval (the time used is
    reported): dataset records are half-open, e.g. t in [20, 40), so +20 is evaluated at 19.9.
    """
    times, m = al.times, len(al.times)
    h_tol = max(al.tol, interval(times) if m > 1 else 0.0) * (1 + 1e-9)
    hz: dict[float, int | None] = {}
    for h in horizons:
        j = int(np.argmin(np.abs(times - h)))
        hz[h] = j if abs(times[j] - h) <= h_tol else None
    missing_h = [h for h, j in hz.items() if j is None]
    if missing_h:
        warnings.append(f"horizon(s) {missing_h} outside the evaluated times {time_range(times)}: no values")
    fig_idx = sorted({0, *[j for j in hz.values() if j is not None]})
    if len(fig_idx) < 3 and m > 1:
        fig_idx = sorted(set(fig_idx) | {int(round(x)) for x in np.linspace(0, m - 1, 4)})
    fig_idx = fig_idx[:5] if len(fig_idx) <= 5 else [fig_idx[0], *fig_idx[-4:]]
    return hz, fig_idx


# ---------------------------------------------------------------------------------------------- 3. one pass
def _accumulate(inp: _Inputs, al: _Alignment, statistics_start: float, max_samples: int,
                fig_idx: list[int]) -> _Pass:
    """Read every source once at every aligned time and accumulate its metrics."""
    truth_src, member, paired = inp.truth, inp.member, inp.paired
    times, m, n = al.times, len(al.times), inp.model.n
    stat_mask = times >= statistics_start - al.tol
    if not stat_mask.any():
        raise ConfigurationError(f"statistics_start = {statistics_start} is after the last evaluated time "
                                 f"{times[-1]:.6g}")
    k_axis = metrics.isotropic_spectra(np.zeros((1, n, n)), inp.model.L)[0]
    count = int(stat_mask.sum())
    acc_ref = Accumulator(truth_src, m, len(k_axis), max_samples, count)
    acc_run = Accumulator(inp.model, m, len(k_axis), max_samples, count)
    acc_base = [Accumulator(s, m, len(k_axis), max_samples, count) for s in inp.bases]
    fig_set = set(fig_idx)
    for i in range(m):
        w_ref = truth_src.field(int(al.i_ref[i]))
        truth = w_ref if paired else w_ref[member]
        if not np.isfinite(truth).all():
            raise FileFormatError(f"reference {truth_src.spec} holds non-finite values at t = {times[i]:.6g}")
        snap = i in fig_set
        acc_ref.add(i, w_ref, None, bool(stat_mask[i]), False)
        if snap:
            acc_ref.snapshots[i] = w_ref[member][None].astype(np.float32)
        acc_run.add(i, inp.model.field(int(al.i_run[i])), truth, bool(stat_mask[i]), snap)
        for acc, idx in zip(acc_base, al.base_idx):
            if idx[i] >= 0:
                usable = not paired or acc.src.members == truth_src.members
                acc.add(i, acc.src.field(int(idx[i])), truth if usable else None, bool(stat_mask[i]), snap)
    return _Pass(acc_ref, acc_run, acc_base, stat_mask, k_axis)


def _initial_state_warning(al: _Alignment, acc_run: Accumulator, warnings: list[str]) -> None:
    """Warn when the run's first state is not the reference's (a wrong reference spec)."""
    if abs(al.times[0]) <= al.tol:
        e0 = acc_run.rel_error[0]
        worst = float(np.nanmax(e0)) if np.isfinite(e0).any() else float("nan")
        if not worst <= 1e-3:
            warnings.append(f"the run's state at t = 0 differs from the reference's (relative error up to "
                            f"{worst:.3g}): trajectory errors compare different initial conditions; "
                            f"check the reference spec")


# ---------------------------------------------------------------------------------------------- 4. metrics
def _results(inp: _Inputs, al: _Alignment, ps: _Pass, ref: ReferenceStats, horizons: tuple[float, ...],
             hz: dict[float, int | None], blowup_factor: float, warnings: list[str]) -> dict[str, Any]:
    """Trajectory and statistics blocks of the run and every baseline, with blow-up/status warnings."""
    accs = [ps.run, *ps.bases]
    results: dict[str, Any] = {}
    for acc in accs:
        results[acc.src.label] = {
            "role": acc.src.role, "trajectory": trajectory_block(acc, horizons, hz, al.times),
            "statistics": statistics_block(acc, ref, ps.stat_mask, ps.k_axis, inp.model.n, al.times, al.tol)}
    for acc in accs:
        hor = results[acc.src.label]["statistics"]["horizon"]
        if hor.get("members_blown_up"):
            warnings.append(f"{acc.src.label}: {hor['members_blown_up']} of {acc.src.members} member(s) blew "
                            f"up (non-finite or enstrophy > {blowup_factor:g}× the reference maximum) before "
                            f"t = {ref.t_window:.4g}; first at t = {hor['horizon_min']:.4g}")
        if acc.src.status not in ("complete",):
            warnings.append(f"{acc.src.label}: file status {acc.src.status!r}"
                            + (f" ({acc.src.extra['error']})" if "error" in acc.src.extra else ""))
    return results


# ---------------------------------------------------------------------------------------------- 5. report
def _report(inp: _Inputs, al: _Alignment, ref: ReferenceStats, results: dict[str, Any],
            similarity: dict[str, Any], truth_text: str, horizons: tuple[float, ...],
            settings: dict[str, Any], warnings: list[str]) -> dict[str, Any]:
    """The content of ``metrics.json`` (before :func:`~kolmo.evaluation.accumulate.clean`)."""
    model, truth, bases = inp.model, inp.truth, inp.bases
    chosen = "paired" if inp.paired else inp.member
    return {
        "format": "kolmo-online-evaluation", "format_version": 1, "kolmo_version": __version__,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(),
        "preset": model.preset, "primary_protocol": PRIMARY_PROTOCOL.get(model.preset, "statistics"),
        "protocols": PROTOCOL_TEXT,
        "grid": {"n": model.n, "L": model.L, "spectral_cutoff_k": ref.k_cut,
                 "spectral_cutoff_rule": "2/3 of the coarse Nyquist wavenumber pi N / L",
                 "coarse_graining_rule": f"{inp.rule}: {inp.rule_text}"},
        "run": model.describe(),
        "reference": {**truth.describe(), "truth_member": chosen, "truth": truth_text},
        "baselines": [s.describe() for s in bases],
        "similarity_baseline": bases[0].label if bases else None,
        "alignment": {"times": al.times, "tolerance": al.tol, "evaluated": len(al.times),
                      "run_snapshots": len(model.times),
                      "rule": "nearest reference snapshot within half the smaller snapshot interval"},
        "horizons": list(horizons),
        "settings": {**settings, "reference_member": chosen},
        "reference_series": {"energy": ref.e_series, "enstrophy": ref.z_series},
        "results": results, "similarity": similarity, "warnings": warnings,
        "definitions": {**DEFINITIONS, "horizon": DEFINITIONS["horizon"].format(factor=settings["blowup_factor"])},
    }


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
        Write the PNG figures (needs matplotlib: ``pip install kolmo[plots]``).

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
    OptionalDependencyError
        ``figures`` without matplotlib installed.
    """
    out_dir = Path(out_dir)
    hs = _check_settings(horizons, blowup_factor, max_samples)
    check_out(out_dir)  # before any work
    settings = {"statistics_start": statistics_start, "blowup_factor": blowup_factor, "max_samples": max_samples}
    warnings: list[str] = []
    with ExitStack() as stack:
        inp = _open_sources(run, reference, baselines, reference_member, stack)
        al = _align(inp, warnings)
        truth_text = _truth_text(inp, warnings)
        hz, fig_idx = _horizon_indices(al, hs, warnings)
        ps = _accumulate(inp, al, statistics_start, max_samples, fig_idx)
        _initial_state_warning(al, ps.run, warnings)
        ref = reference_stats(ps.ref, inp.model, float(inp.truth.times[-1]), blowup_factor)
        results = _results(inp, al, ps, ref, hs, hz, blowup_factor, warnings)
        sims = similarity(results, [ps.run.src.label, *(a.src.label for a in ps.bases)])
        report = clean(_report(inp, al, ref, results, sims, truth_text, hs, settings, warnings))
        figure_data = None
        if figures:
            figure_data = {"times": al.times, "fig_idx": fig_idx, "k": ps.k_axis, "k_cut": ref.k_cut,
                           "reference": ps.ref, "run": ps.run, "baselines": ps.bases,
                           "ref_spectra": (ref.e_spec, ref.z_spec), "ref_series": (ref.e_series, ref.z_series),
                           "ref_samples": ref.samples, "threshold": ref.threshold, "ref_member": inp.member}
        files = write_folder(out_dir, report, figure_data)
    report["report_dir"] = str(out_dir)
    report["files"] = files
    return report
