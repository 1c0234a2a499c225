r"""Figures of the online-evaluation report (:func:`kolmo.evaluation.online.evaluate_online`).

Matplotlib (the optional extra ``kolmo[plots]``) is imported inside :func:`write_figures` only
(:func:`figure_class`; its absence is an :class:`~kolmo.errors.OptionalDependencyError`), with
the object-oriented API and the Agg canvas (no pyplot state, no display). Every figure states
the preset, grid, files, units and how to read it, so that a closure can be judged from the
figures alone:

=====================  ==========================================================================
file                   content
=====================  ==========================================================================
snapshots.png          vorticity fields: truth / each baseline / the first 3 closure members at
                       up to 5 times (shared colour scale per time, from the truth)
error_vs_time.png      relative L2 error vs time (member mean ± 2 std band), spread–skill
                       ratio, fair CRPS; the horizons marked
spectra.png            time-mean isotropic energy and enstrophy spectra vs the reference, the
                       scored range (k ≤ 2/3 coarse Nyquist) marked
timeseries.png         domain-mean energy and enstrophy vs time (member mean ± 2 std band)
pdfs.png               PDFs of vorticity and of both velocity components, W1 in the legend
scores.png             similarity scores 1 − d/d_baseline of every distance (with baselines)
=====================  ==========================================================================
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from kolmo.errors import OptionalDependencyError
from kolmo.evaluation.report import STAT_NAMES, fmt

__all__ = ["write_figures", "figure_class", "FIGURES"]

FIGURES = ("snapshots.png", "error_vs_time.png", "spectra.png", "timeseries.png", "pdfs.png", "scores.png")
REF_COLOR = "black"
RUN_COLOR = "tab:blue"
BASE_COLORS = ("tab:red", "tab:orange", "tab:green", "tab:purple", "tab:brown", "tab:pink", "tab:olive",
               "tab:cyan", "tab:gray")
_PANELS = {"left": 0.06, "right": 0.985, "bottom": 0.11, "top": 0.84, "wspace": 0.28}


# ---------------------------------------------------------------------------------------------- helpers
def _positive(x: np.ndarray) -> np.ndarray:
    """``x`` with non-positive and non-finite entries masked as NaN (for log axes)."""
    y = np.array(x, dtype=np.float64)
    y[~(np.isfinite(y) & (y > 0))] = np.nan
    return y


def _setup_line(m: dict[str, Any]) -> str:
    run = m["run"]
    return (f"preset {m['preset']}, grid {m['grid']['n']}², run {Path(run['path']).name} "
            f"({run['members']} members, closure {run['closure']}), reference {Path(m['reference']['path']).name}")


def _sources(m: dict[str, Any], data: dict[str, Any]) -> list[tuple[str, str, Any]]:
    """``(label, colour, accumulator)`` for the run and each baseline."""
    out = [(data["run"].src.label, RUN_COLOR, data["run"])]
    for i, acc in enumerate(data["baselines"]):
        out.append((acc.src.label, BASE_COLORS[i % len(BASE_COLORS)], acc))
    return out


# ---------------------------------------------------------------------------------------------- figures
def figure_class() -> Any:
    """``matplotlib.figure.Figure``, or :class:`OptionalDependencyError` naming ``pip install kolmo[plots]``."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise OptionalDependencyError("figures need matplotlib, which is not installed; install it with "
                                      "`pip install kolmo[plots]` (or ask for no figures)") from None
    return Figure


def write_figures(m: dict[str, Any], data: dict[str, Any], out: Path) -> list[str]:
    """Write the PNG figures into ``out``; return their file names."""
    Figure = figure_class()

    files = [_snapshots(Figure, m, data, out), _errors(Figure, m, data, out), _spectra(Figure, m, data, out),
             _timeseries(Figure, m, data, out), _pdfs(Figure, m, data, out)]
    if m["baselines"]:
        files.append(_scores(Figure, m, out))
    return files


def _snapshots(Figure: Any, m: dict[str, Any], data: dict[str, Any], out: Path) -> str:
    from matplotlib.ticker import MaxNLocator

    times, cols = data["times"], data["fig_idx"]
    L = m["grid"]["L"]
    ref = data["reference"]
    ref_label = ref.src.label if ref.src.members == 1 else f"{ref.src.label}\nmember {data['ref_member']}"
    rows: list[tuple[str, Any, int]] = [(ref_label, ref, 0)]
    for acc in data["baselines"]:
        rows.append((f"{acc.src.label}\nmember 0", acc, 0))
    run = data["run"]
    for b in range(min(run.src.members, 3)):
        rows.append((f"{run.src.label}\nmember {b}", run, b))
    nr, nc = len(rows), len(cols)
    # manual layout (constrained layout costs seconds): panels of 2.1 in, 1.5 in of row labels on
    # the left, a colour bar under every column, two title lines on top
    pw, gap, left, top, bottom = 2.1, 0.25, 1.5, 0.9, 0.85
    width, height = left + nc * (pw + gap), top + nr * (pw + gap) + bottom
    fig = Figure(figsize=(width, height))
    for c, i in enumerate(cols):
        truth = data["reference"].snapshots.get(i)
        vmax = float(np.max(np.abs(truth))) if truth is not None and np.isfinite(truth).all() else 1.0
        vmax = vmax if vmax > 0 else 1.0
        im = None
        x0 = (left + c * (pw + gap)) / width
        for r, (label, acc, b) in enumerate(rows):
            y0 = (height - top - (r + 1) * (pw + gap) + gap) / height
            ax = fig.add_axes((x0, y0, pw / width, pw / height))
            ax.set_xticks([])
            ax.set_yticks([])
            snap = acc.snapshots.get(i)
            if snap is None or b >= snap.shape[0]:
                ax.text(0.5, 0.5, "no snapshot\nat this time", ha="center", va="center", transform=ax.transAxes)
            elif not np.isfinite(snap[b]).all():
                ax.text(0.5, 0.5, "non-finite\n(blown up)", ha="center", va="center", color="red",
                        transform=ax.transAxes)
            else:
                im = ax.imshow(snap[b], origin="lower", extent=(0, L, 0, L), cmap="RdBu_r", vmin=-vmax, vmax=vmax,
                               interpolation="nearest")
            if r == 0:
                ax.set_title(f"t = {times[i]:.4g}", fontsize=10)
            if c == 0:
                ax.set_ylabel(label, fontsize=8)
        if im is not None:
            cax = fig.add_axes((x0, 0.45 / height, pw / width, 0.12 / height))
            cb = fig.colorbar(im, cax=cax, orientation="horizontal")
            cb.set_label("ω [1/time]", fontsize=8)
            cb.ax.tick_params(labelsize=7)
            cb.ax.xaxis.set_major_locator(MaxNLocator(nbins=4, symmetric=True))
    fig.suptitle(f"Vorticity snapshots ω [1/time]; rows: truth, baselines, closure members\ncolour scale per "
                 f"column = ± max|ω| of the truth; x, y in [0, L = {L:.4g}]\n{_setup_line(m)}", fontsize=8,
                 y=1 - 0.05 / height, va="top")
    fig.savefig(out / "snapshots.png", dpi=110)
    return "snapshots.png"


def _errors(Figure: Any, m: dict[str, Any], data: dict[str, Any], out: Path) -> str:
    times = data["times"]
    fig = Figure(figsize=(16, 5))
    ax1, ax2, ax3 = fig.subplots(1, 3, gridspec_kw=_PANELS)
    paired = m["reference"]["truth_member"] == "paired"
    series = []
    for label, color, acc in _sources(m, data):
        s = m["results"][label]["trajectory"]["series"]
        series.append((label, color, acc, {k: np.array([np.nan if v is None else v for v in s[k]], dtype=float)
                                           for k in ("rel_error_mean", "rel_error_std", "spread_skill", "crps")}))
    pos = np.concatenate([x["rel_error_mean"][x["rel_error_mean"] > 0] for *_, x in series])
    log_axis = pos.size > 1 and pos.max() > 20 * pos.min()  # errors spanning decades: log axis
    crps_pos = np.concatenate([x["crps"][x["crps"] > 0] for *_, x in series])
    crps_log = crps_pos.size > 1 and crps_pos.max() > 20 * crps_pos.min()
    clipped = False
    for label, color, acc, x in series:
        mean, std = x["rel_error_mean"], x["rel_error_std"]
        ax1.plot(times, _positive(mean) if log_axis else mean, color=color, label=f"{label} (B = {acc.src.members})")
        lo = mean - 2 * std
        floor = 1e-2 * mean if log_axis else np.zeros_like(mean)
        clipped |= bool(np.any(lo < floor))
        ax1.fill_between(times, np.maximum(lo, floor), mean + 2 * std, color=color, alpha=0.2, lw=0)
        why = ("paired reference: no single truth" if paired else "1 member" if acc.src.members < 2
               else "zero error")
        if np.isfinite(x["spread_skill"]).any():
            ax2.plot(times, x["spread_skill"], color=color, label=label)
        else:
            ax2.plot([], [], color=color, label=f"{label}: undefined ({why})")
        if np.isfinite(x["crps"]).any():
            ax3.plot(times, _positive(x["crps"]) if crps_log else x["crps"], color=color, label=label)
        else:
            ax3.plot([], [], color=color, label=f"{label}: undefined ({why})")
    if log_axis:
        ax1.set_yscale("log")
    if crps_log:
        ax3.set_yscale("log")
    for ax in (ax1, ax2, ax3):
        for h in m["horizons"]:
            if times[0] <= h <= times[-1] + 1e-9:
                ax.axvline(h, color="0.6", ls=":", lw=0.8)
        ax.set_xlabel("time since start [time units]")
        ax.grid(alpha=0.3)
        if len(times) > 1:
            ax.set_xlim(times[0], times[-1])
    ax1.set_ylabel("relative L2 error ‖ω − ω_truth‖ / ‖ω_truth‖")
    ax1.set_title("error vs truth: member mean, band ± 2 std" + (" (clipped at 1% of the mean)" if clipped and
                                                                   log_axis else " (clipped at 0)" if clipped
                                                                   else ""), fontsize=9)
    ax2.axhline(1.0, color="k", ls="--", lw=0.8, label="calibrated (= 1)")
    ax2.set_ylabel("spread–skill ratio √((B+1)/B)·spread / RMSE(mean)")
    ax2.set_title("< 1: over-confident, > 1: over-dispersive", fontsize=9)
    ax3.set_ylabel("fair CRPS, mean over grid points [1/time]")
    ax3.set_title("fair CRPS (lower is better; 1 member: mean |error|)", fontsize=9)
    for ax in (ax1, ax2, ax3):
        ax.legend(fontsize=7)
    fig.suptitle(f"Trajectory skill vs the truth; dotted: horizons {m['horizons']}\n{_setup_line(m)}", fontsize=9)
    fig.savefig(out / "error_vs_time.png", dpi=110)
    return "error_vs_time.png"


def _spectra(Figure: Any, m: dict[str, Any], data: dict[str, Any], out: Path) -> str:
    k, k_cut = data["k"], data["k_cut"]
    e_ref, z_ref = data["ref_spectra"]
    fig = Figure(figsize=(13, 5))
    axes = fig.subplots(1, 2, gridspec_kw=_PANELS)
    k_nyq = math.pi * m["grid"]["n"] / m["grid"]["L"]
    sel = (k > 0) & (k <= k_nyq * (1 + 1e-9))  # the square's corner shells beyond k_N are left out
    for j, (ax, name, units, ref) in enumerate(
            zip(axes, ("energy", "enstrophy"), ("length²/time²", "1/time²"), (e_ref, z_ref))):
        ax.loglog(k[sel], _positive(ref)[sel], color=REF_COLOR, lw=2.2, label=f"{data['reference'].src.label}")
        for label, color, acc in _sources(m, data):
            e_m, z_m, _ = acc.mean_spectra()
            spec = e_m if j == 0 else z_m
            if spec.shape[0] == 0:
                continue
            d = m["results"][label]["statistics"][f"spectrum_error_{name}"]
            ax.loglog(k[sel], _positive(spec.mean(axis=0))[sel], color=color,
                      label=f"{label}: error {fmt(d)} decades")
            if spec.shape[0] > 1:
                ax.fill_between(k[sel], _positive(spec.min(axis=0))[sel], _positive(spec.max(axis=0))[sel],
                                color=color, alpha=0.15, lw=0)
        ax.axvline(k_cut, color="0.3", ls="--", lw=1)
        ax.axvspan(k_cut, k_nyq * 1.05, color="0.85", alpha=0.5, lw=0)
        top = np.nanmax(_positive(ref)[sel])
        if np.isfinite(top):
            ax.set_ylim(bottom=max(ax.get_ylim()[0], top * 1e-10))
        ax.text(k_cut, 0.02, " not scored →", transform=ax.get_xaxis_transform(), fontsize=8, color="0.3")
        ax.set_xlabel(f"wavenumber k = 2π|n|/L [1/length] (up to the coarse Nyquist {k_nyq:.3g})")
        ax.set_ylabel(f"{name} per shell [{units}]")
        ax.set_title(f"time-mean {name} spectrum (Σ_k = domain mean); band: member min–max", fontsize=9)
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7)
    fig.suptitle(f"Isotropic spectra vs the coarse-grained reference; scored for 0 < k ≤ {k_cut:.3g} (2/3 of the "
                 f"coarse Nyquist)\n{_setup_line(m)}", fontsize=9)
    fig.savefig(out / "spectra.png", dpi=110)
    return "spectra.png"


def _timeseries(Figure: Any, m: dict[str, Any], data: dict[str, Any], out: Path) -> str:
    times = data["times"]
    ref_series = data["ref_series"]
    fig = Figure(figsize=(13, 5))
    axes = fig.subplots(1, 2, gridspec_kw=_PANELS)
    for j, (ax, name, units) in enumerate(zip(axes, ("energy", "enstrophy"), ("length²/time²", "1/time²"))):
        ref_acc = data["reference"]
        ax.plot(times, ref_series[j], color=REF_COLOR, lw=2.2, label=ref_acc.src.label)
        for label, color, acc in _sources(m, data):
            x = acc.energy if j == 0 else acc.enstrophy
            ok = np.isfinite(x)
            cnt = ok.sum(axis=1)
            mean = np.where(cnt > 0, np.where(ok, x, 0).sum(axis=1) / np.maximum(cnt, 1), np.nan)
            var = np.where(cnt > 1, np.where(ok, (x - mean[:, None]) ** 2, 0).sum(axis=1) / np.maximum(cnt - 1, 1),
                           0.0)
            std = np.sqrt(var)
            d = m["results"][label]["statistics"][f"{name}_series_error"]
            ax.plot(times, mean, color=color, label=f"{label}: rel. RMS error {fmt(d)}")
            if acc.src.members > 1:
                ax.fill_between(times, mean - 2 * std, mean + 2 * std, color=color, alpha=0.2, lw=0)
        ax.set_xlabel("time since start [time units]")
        sym = "E = ½⟨|u|²⟩" if j == 0 else "Z = ½⟨ω²⟩"
        ax.set_ylabel(f"{sym} [{units}]")
        ax.set_title(f"domain-mean {name}: member mean, band ± 2 std", fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(f"Energy and enstrophy vs time\n{_setup_line(m)}", fontsize=9)
    fig.savefig(out / "timeseries.png", dpi=110)
    return "timeseries.png"


def _pdfs(Figure: Any, m: dict[str, Any], data: dict[str, Any], out: Path) -> str:
    fig = Figure(figsize=(16, 5))
    axes = fig.subplots(1, 3, gridspec_kw=_PANELS)
    names = (("vorticity", "ω [1/time]"), ("u", "u [length/time]"), ("v", "v [length/time]"))
    srcs = _sources(m, data)
    for ax, (var, xlabel) in zip(axes, names):
        ref = data["ref_samples"][var]
        pools = [ref] + [acc.sample(var) for _, _, acc in srcs]
        pools = [p[np.isfinite(p)] for p in pools if p.size]
        lo = min(float(p.min()) for p in pools if p.size)
        hi = max(float(p.max()) for p in pools if p.size)
        if not hi > lo:
            lo, hi = lo - 1.0, hi + 1.0
        edges = np.linspace(lo, hi, 61)
        centres = 0.5 * (edges[1:] + edges[:-1])
        dens, _ = np.histogram(ref, bins=edges, density=True)
        ax.semilogy(centres, _positive(dens), color=REF_COLOR, lw=2.2, label=data["reference"].src.label)
        for label, color, acc in srcs:
            smp = acc.sample(var)
            if smp.size == 0:
                continue
            dens, _ = np.histogram(smp[np.isfinite(smp)], bins=edges, density=True)
            w1 = m["results"][label]["statistics"][f"w1_{var}"]
            ax.semilogy(centres, _positive(dens), color=color, label=f"{label}: W1 = {fmt(w1)}")
        ax.set_xlabel(xlabel)
        ax.set_ylabel("probability density")
        ax.set_title(f"PDF of {var} (pooled over members and times)", fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    start = m["settings"]["statistics_start"]
    fig.suptitle(f"Distributions vs the coarse-grained reference, times ≥ {start:g}; W1 = Wasserstein-1 distance "
                 f"(units of the variable, lower is better)\n{_setup_line(m)}", fontsize=9)
    fig.savefig(out / "pdfs.png", dpi=110)
    return "pdfs.png"


def _scores(Figure: Any, m: dict[str, Any], out: Path) -> str:
    sims = m["similarity"]
    labels = list(sims)
    keys = list(STAT_NAMES)
    for j, h in enumerate(m["horizons"]):
        keys.append(("rel_error_mean_at_horizons", j, f"rel. error at +{h:g}"))
    h_in = 0.45 * len(keys) * max(1, len(labels)) + 1.8
    fig = Figure(figsize=(10, h_in))
    ax = fig.subplots(gridspec_kw={"left": 0.27, "right": 0.97, "bottom": 0.7 / h_in, "top": 1 - 0.75 / h_in})
    height = 0.8 / max(1, len(labels))
    names = []
    for r, key in enumerate(keys):
        names.append(STAT_NAMES[key] if isinstance(key, str) else key[2])
        for c, label in enumerate(labels):
            v = sims[label][key] if isinstance(key, str) else sims[label][key[0]][key[1]]
            y = r + (c - (len(labels) - 1) / 2) * height
            color = RUN_COLOR if c == 0 else BASE_COLORS[(c + 1) % len(BASE_COLORS)]
            if v is None:
                ax.text(0.02, y, "undefined", va="center", fontsize=7, color="0.4")
                continue
            shown = max(-2.0, min(1.0, v))
            ax.barh(y, shown, height=height, color=color, label=label if r == 0 else None)
            ax.text(shown + (0.02 if shown >= 0 else -0.02), y, f"{v:.2f}", va="center",
                    ha="left" if shown >= 0 else "right", fontsize=7)
    ax.set_yticks(range(len(keys)))
    ax.set_yticklabels(names, fontsize=8)
    ax.invert_yaxis()
    ax.axvline(0, color="k", lw=0.8)
    ax.axvline(1, color="k", ls="--", lw=0.8)
    ax.set_xlim(-2.3, 1.3)
    ax.set_xlabel("similarity score 1 − d(model)/d(baseline)  (bars clipped to [−2, 1]; value printed)")
    ax.set_title(f"Scores against the baseline {m['similarity_baseline']}: 1 = matches the reference, "
                 f"0 = no better than the baseline, < 0 worse\n{_setup_line(m)}", fontsize=9)
    ax.grid(alpha=0.3, axis="x")
    if labels:
        ax.legend(fontsize=8, loc="lower left")
    fig.savefig(out / "scores.png", dpi=110)
    return "scores.png"
