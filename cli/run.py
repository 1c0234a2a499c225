"""``kolmo run``: integrate a preset and write an HDF5 run file."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from cli.common import console, friendly_errors, parse_sets


def run(
    preset: str = typer.Option("kolmogorov", help="Preset: kolmogorov (LES, L=2π, Re=1000, drag 0.1) or dong2026 (the paper's missing-physics setup)."),
    grid: Optional[int] = typer.Option(None, "--grid", "-n", help="Grid points per side (default 64 kolmogorov, 256 dong2026)."),
    time: Optional[float] = typer.Option(None, "--time", "-t", help="Final simulated time (preset default 20)."),
    dt: Optional[float] = typer.Option(None, help="Time step (preset default: dong2026 1e-3; kolmogorov 0.5·dx/7)."),
    members: Optional[int] = typer.Option(None, "--members", "-b", help="Ensemble members integrated together."),
    seed: Optional[int] = typer.Option(None, help="Root seed (initial conditions and noise, per member)."),
    save_every: Optional[float] = typer.Option(None, help="Snapshot interval in time units."),
    stepper: Optional[str] = typer.Option(None, help="Time scheme: cn-rk3 (default), ars343, cn-euler (the reference code's)."),
    nu: Optional[float] = typer.Option(None, help="Viscosity ν."),
    mu: Optional[float] = typer.Option(None, help="Linear drag μ."),
    initial: Optional[str] = typer.Option(None, help="Initial condition: grf, band, zero."),
    init: Optional[str] = typer.Option(None, help="Start from a snapshot: RUN.h5[:INDEX] or DATA.h5:SPLIT:INDEX."),
    set_: Optional[list[str]] = typer.Option(None, "--set", help="Override any config field: KEY=VALUE (JSON value), repeatable."),
    threads: int = typer.Option(1, help="FFTW threads."),
    backend: str = typer.Option("fftw", help="FFT backend: fftw or numpy (slow, debugging)."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Output HDF5 file (default runs/<preset>-<grid>.h5)."),
    resume: Optional[Path] = typer.Option(None, help="Continue an interrupted or finished run file (bit-exact); --time extends it."),
    overwrite: bool = typer.Option(False, help="Replace an existing output file."),
) -> None:
    """Run the solver and print a summary table."""
    from kolmo.presets import preset as make_preset
    from kolmo.simulation import run_simulation

    with friendly_errors():
        config = None
        if resume is None:
            overrides = dict(t_end=time, dt=dt, members=members, seed=seed, save_every=save_every,
                             stepper=stepper, nu=nu, mu=mu, initial=initial)
            overrides.update(parse_sets(set_))
            if init is not None:
                overrides["initial"] = "file"
                overrides["initial_params"] = {"path": init}
            config = make_preset(preset, grid, **overrides)
            if out is None:
                out = Path("runs") / f"{config.preset}-{config.n}.h5"
        steps_total = config.steps if config else None
        with Progress(TextColumn("[bold]kolmo run[/]"), BarColumn(), TextColumn("{task.percentage:>5.1f}%"),
                      TextColumn("t={task.fields[t]:.3f}"), TextColumn("{task.fields[rate]:.0f} steps/s"),
                      TextColumn("CFL {task.fields[cfl]:.3f}"), TextColumn("E {task.fields[energy]:.4g}"),
                      TimeElapsedColumn(), TimeRemainingColumn(), console=console, transient=False) as bar:
            task = bar.add_task("run", total=steps_total, t=0.0, rate=0.0, cfl=0.0, energy=0.0)
            import time as _t

            t0 = _t.perf_counter()
            first: dict[str, int] = {}

            def progress(sim, diag) -> None:  # noqa: ANN001
                first.setdefault("step", sim.step)
                el = _t.perf_counter() - t0
                bar.update(task, total=sim.config.steps, completed=sim.step, t=sim.time,
                           rate=(sim.step - first["step"]) / el if el > 0 else 0.0,
                           cfl=float(diag["cfl"].max()), energy=float(diag["energy"].mean()))

            summary = run_simulation(config, out, resume=resume, t_end=time if resume else None,
                                     overwrite=overwrite, backend=backend, threads=threads, progress=progress)
        table = Table(title=f"kolmo run — {summary.status}")
        table.add_column("quantity")
        table.add_column("value", justify="right")
        table.add_row("file", str(summary.path))
        table.add_row("steps (this call)", str(summary.steps))
        table.add_row("final time", f"{summary.time:.4g}")
        table.add_row("wall time [s]", f"{summary.wall_seconds:.2f}")
        table.add_row("steps/s", f"{summary.steps_per_second:.1f}")
        for k in ("energy", "enstrophy", "palinstrophy", "dissipation", "cfl"):
            v = summary.final[k]
            table.add_row(f"{k} (member mean)", f"{float(v.mean()):.5g}")
        console.print(table)
