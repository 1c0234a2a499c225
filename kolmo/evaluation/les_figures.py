"""Figures of the LES-vs-DNS report (:mod:`kolmo.evaluation.les`): spectra, energy time series, snapshots.

matplotlib is optional (``pip install kolmo[plots]``); without it :func:`write_les_figures`
raises :class:`~kolmo.errors.OptionalDependencyError` (:func:`kolmo.evaluation.figures.figure_class`).
Each PNG is written atomically (:func:`kolmo.atomic.atomic_output`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import numpy as np

from kolmo.atomic import atomic_output
from kolmo.evaluation.figures import figure_class

__all__ = ["write_les_figures"]

COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf")


def _save(fig: Any, path: Path) -> Path:
    """``fig`` as the PNG ``path``, atomically (the temporary name keeps the suffix matplotlib reads)."""
    with atomic_output(path) as tmp:
        fig.savefig(tmp, dpi=110)
    return path


def write_les_figures(result: Mapping[str, Any], stats: Mapping[str, Any], out: Path) -> list[Path]:
    """``les-spectra.png``, ``les-timeseries.png`` and ``les-snapshots.png`` in ``out``.

    ``stats`` maps ``"DNS"`` and every run label to its :class:`~kolmo.evaluation.les.RunStatistics`.
    """
    Figure = figure_class()
    n, L = result["grid"]["n"], result["grid"]["L"]
    ref = stats["DNS"]
    runs = [(label, stats[label], COLORS[i % len(COLORS)]) for i, label in enumerate(result["runs"])]
    files = []
    # spectra
    fig = Figure(figsize=(12, 4.5))
    axes = fig.subplots(1, 2)
    m = np.rint(ref.k * L / (2 * np.pi))
    sel = (m >= 1) & (m < n / 2)
    for ax, attr, name in zip(axes, ("energy_spectrum", "enstrophy_spectrum"), ("energy", "enstrophy")):
        ax.loglog(ref.k[sel], getattr(ref, attr)[sel], "k", lw=2.2, label="DNS (coarse-grained)")
        for label, s, c in runs:
            ax.loglog(s.k[sel], np.maximum(getattr(s, attr)[sel], 1e-300), color=c, lw=1.3, label=label)
        ax.axvline(2 * np.pi / L * (n / 3), color="grey", ls="--", lw=0.8)
        ax.set_xlabel("k")
        ax.set_title(f"time-mean {name} spectrum (dashed: N/3)")
    axes[0].legend(fontsize=8)
    files.append(_save(fig, out / "les-spectra.png"))
    # energy / enstrophy time series (member means)
    fig = Figure(figsize=(12, 4.5))
    axes = fig.subplots(1, 2)
    t0 = ref.times[0]
    for ax, attr in zip(axes, ("energy", "enstrophy")):
        ax.plot(ref.times - t0, getattr(ref, attr).mean(axis=1), "k", lw=2.0, label="DNS (coarse-grained)")
        for label, s, c in runs:
            ax.plot(s.times - s.times[0], getattr(s, attr).mean(axis=1), color=c, lw=1.1, label=label)
        ax.set_xlabel("time in the window")
        ax.set_title(f"{attr} (member mean)")
    axes[0].legend(fontsize=8)
    files.append(_save(fig, out / "les-timeseries.png"))
    # snapshots: the last of the window, member 0
    panels = [("DNS (coarse-grained)", ref)] + [(label, s) for label, s, _ in runs]
    fig = Figure(figsize=(3.2 * len(panels), 3.4))
    axes = np.atleast_1d(fig.subplots(1, len(panels)))
    vmax = float(np.max(np.abs(ref.omega_last[0])))
    for ax, (label, s) in zip(axes, panels):
        ax.imshow(s.omega_last[0], origin="lower", cmap="RdBu_r", vmin=-vmax, vmax=vmax)
        ax.set_title(label, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    files.append(_save(fig, out / "les-snapshots.png"))
    return files
