"""``kolmo run``: integrate a preset and write an HDF5 run file."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from cli import options as opt
from cli import preflight
from cli.common import console, friendly_errors, parse_sets
from cli.errors import check_interrupt


# Length: 32 of its lines are the typer option list (one parameter per CLI option).
def run(
    preset: Optional[str] = typer.Option(None, help="Preset: kolmogorov (LES, L=2π, Re=1000, drag 0.1; the default) or dong2026 (the paper's missing-physics setup). With a closure: the closure's preset."),
    grid: Optional[int] = typer.Option(None, "--grid", "-n", help="Grid points per side (default 64 kolmogorov, 256 dong2026).", callback=opt.even_grid()),
    time: Optional[float] = typer.Option(None, "--time", "-t", help="Final simulated time (preset default 20).", callback=opt.positive()),
    dt: Optional[float] = typer.Option(None, help="Time step (preset default: dong2026 1e-3; kolmogorov 0.5·dx/7).", callback=opt.positive()),
    members: Optional[int] = typer.Option(None, "--members", "-b", help="Ensemble members integrated together.", callback=opt.at_least(1)),
    seed: Optional[int] = typer.Option(None, help="Root seed (initial conditions and noise, per member).", callback=opt.at_least(0)),
    save_every: Optional[float] = typer.Option(None, help="Snapshot interval in time units.", callback=opt.positive()),
    stepper: Optional[str] = typer.Option(None, help="Time scheme: cn-rk3 (default), ars343, cn-euler (the reference code's)."),
    nu: Optional[float] = typer.Option(None, help="Viscosity ν.", callback=opt.non_negative()),
    mu: Optional[float] = typer.Option(None, help="Linear drag μ.", callback=opt.non_negative()),
    initial: Optional[str] = typer.Option(None, help="Initial condition: grf, band, zero."),
    init: Optional[str] = typer.Option(None, help="Start from a snapshot: RUN.h5[:INDEX] or DATA.h5:SPLIT:INDEX."),
    set_: Optional[list[str]] = typer.Option(None, "--set", help="Override any config field: KEY=VALUE (JSON value), repeatable."),
    threads: int = typer.Option(1, help="FFTW threads (and torch CPU threads of an artifact closure).", callback=opt.at_least(1)),
    backend: str = typer.Option("fftw", help="FFT backend: fftw or numpy (slow, debugging).", callback=opt.choice("fftw", "numpy")),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Output HDF5 file (default runs/<preset>-<grid>.h5)."),
    resume: Optional[Path] = typer.Option(None, help="Continue an interrupted or finished run file (bit-exact); --time extends it."),
    overwrite: bool = typer.Option(False, help="Replace an existing output file."),
    closure: Optional[str] = typer.Option(None, help="Closure: none, smagorinsky, leith, PATH.pt (artifact), replay:DATA.h5[:TRAJ] (true closure). Sets the equation from its target and says so."),
    closure_every: Optional[int] = typer.Option(None, help="Resample an artifact closure every k steps (default 1; paper 5).", callback=opt.at_least(1)),
    closure_jitter: Optional[float] = typer.Option(None, help="Jitter σ added to the held closure sample between resamples, H ← H + σ·N(0,I) (default 0; paper 5e-5).", callback=opt.non_negative()),
    closure_seed: Optional[int] = typer.Option(None, help="Seed of the closure's generator (default: --seed).", callback=opt.at_least(0)),
    closure_coef: Optional[float] = typer.Option(None, help="Smagorinsky C_S (default 0.17) or Leith C_L (default 1/π).", callback=opt.non_negative()),
    closure_dtype: str = typer.Option("float32", help="Dtype the artifact runs in: float32 or float64.", callback=opt.choice("float32", "float64")),
    closure_nonfinite: str = typer.Option("raise", help="Non-finite closure output: raise, or zero (zero those members and count).", callback=opt.choice("raise", "zero")),
    device: str = typer.Option("cpu", help="Device of an artifact closure: cpu, cuda, cuda:K (no CPU fallback).", callback=opt.device()),
    protocol: Optional[str] = typer.Option(None, help="Online protocol preset: paper (dong2026 64², dt 1e-3, 20,000 steps, every 5, jitter 5e-5, from --init DATA.h5:test:INDEX)."),
    workers: Optional[int] = typer.Option(None, help="Integrate the members in batches on a local Dask cluster of N worker processes (pip install kolmo[distributed]); one run file.", callback=opt.at_least(1)),
    scheduler: Optional[str] = typer.Option(None, help="Integrate the member batches on a running Dask cluster at ADDRESS; excludes --workers."),
    members_per_batch: Optional[int] = typer.Option(None, help="Members integrated together, one task each (default 1 with --workers/--scheduler). The file equals any run with the same batches, whatever the workers.", callback=opt.at_least(1)),
) -> None:
    """Run the solver and print a summary table."""
    from coupling.online import ClosureOptions, prepare_run
    from kolmo.simulation import run_simulation

    with friendly_errors():
        preflight.run_modes(resume=resume, closure=closure, protocol=protocol, given={
            "--preset": preset, "--grid": grid, "--dt": dt, "--members": members, "--seed": seed,
            "--save-every": save_every, "--stepper": stepper, "--nu": nu, "--mu": mu, "--initial": initial,
            "--init": init, "--set": set_, "--out": out, "--overwrite": overwrite, "--protocol": protocol,
            "--closure-every": closure_every, "--closure-jitter": closure_jitter, "--closure-seed": closure_seed,
            "--closure-coef": closure_coef, "--closure-dtype": closure_dtype,
            "--closure-nonfinite": closure_nonfinite, "--device": device, "--workers": workers,
            "--scheduler": scheduler, "--members-per-batch": members_per_batch})
        from kolmo.cluster.client import ClusterOptions

        cluster = ClusterOptions(workers=workers, scheduler=scheduler)
        batched = cluster.requested or members_per_batch is not None
        config = None
        closure_obj = None
        if resume is None:
            overrides = dict(t_end=time, dt=dt, members=members, seed=seed, save_every=save_every,
                             stepper=stepper, nu=nu, mu=mu, initial=initial)
            overrides.update(parse_sets(set_))
            options = ClosureOptions(every=closure_every, jitter=closure_jitter, seed=closure_seed, device=device,
                                     dtype=closure_dtype, nonfinite=closure_nonfinite, coefficient=closure_coef,
                                     threads=threads)
            online = prepare_run(preset, grid, overrides, closure, options, protocol=protocol, init=init)
            config, closure_obj = online.config, online.closure
            for note in online.notes:
                console.print(f"[cyan]note[/]: {note}")
            if out is None:
                out = Path("runs") / f"{config.preset}-{config.n}.h5"
            preflight.run_resources(config, out)
            if batched:
                from coupling.online import member_closure_factory

                factory = member_closure_factory(closure, options, init, closure_obj)
                _print_summary(_run_batched(config, out, members_per_batch, cluster, factory, overwrite, backend,
                                            threads), closure_obj, batched=True)
                return
        else:
            from coupling.online import closure_for_resume

            closure_obj = closure_for_resume(resume, closure, device if device != "cpu" else None, threads)
            if closure_obj is not None:
                console.print(f"[cyan]note[/]: resuming with closure {closure_obj.name} and its saved state")
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
                check_interrupt()
                first.setdefault("step", sim.step)
                el = _t.perf_counter() - t0
                bar.update(task, total=sim.config.steps, completed=sim.step, t=sim.time,
                           rate=(sim.step - first["step"]) / el if el > 0 else 0.0,
                           cfl=float(diag["cfl"].max()), energy=float(diag["energy"].mean()))

            summary = run_simulation(config, out, resume=resume, t_end=time if resume else None, closure=closure_obj,
                                     overwrite=overwrite, backend=backend, threads=threads, progress=progress)
        _print_summary(summary, closure_obj)


def _run_batched(config, out, members_per_batch, cluster, factory, overwrite, backend, threads):  # noqa: ANN001, ANN202
    """``kolmo.cluster.ensemble.run_ensemble`` with a progress bar over the member batches."""
    from kolmo.cluster.ensemble import run_ensemble

    with Progress(TextColumn("[bold]kolmo run[/]"), TextColumn("{task.description}"), BarColumn(),
                  TextColumn("{task.percentage:>5.1f}%"), TimeElapsedColumn(), TimeRemainingColumn(),
                  console=console) as bar:
        task = bar.add_task(f"{config.members} members: " + (cluster.describe() if cluster.requested else "here"),
                            total=config.members)

        def progress(ev) -> None:  # noqa: ANN001
            check_interrupt()
            bar.update(task, completed=ev.members_done,
                       description=f"{ev.batches_done}/{ev.batches} batches, {ev.members_done}/{ev.members} members")

        return run_ensemble(config, out, members_per_batch=members_per_batch,
                            cluster=cluster if cluster.requested else None, closure_factory=factory,
                            overwrite=overwrite, backend=backend, threads=threads, progress=progress)


def _print_summary(summary, closure_obj, batched: bool = False) -> None:  # noqa: ANN001
    """The summary table (a batched run's closure counters are in its file: the closure here never ran)."""
    table = Table(title=f"kolmo run — {summary.status}")
    table.add_column("quantity")
    table.add_column("value", justify="right")
    table.add_row("file", str(summary.path))
    table.add_row("steps (this call)", str(summary.steps))
    table.add_row("final time", f"{summary.time:.4g}")
    table.add_row("wall time \\[s]", f"{summary.wall_seconds:.2f}")
    table.add_row("steps/s", f"{summary.steps_per_second:.1f}")
    for k in ("energy", "enstrophy", "palinstrophy", "dissipation", "cfl", "closure_energy", "closure_enstrophy"):
        if k in summary.final:
            table.add_row(f"{k} (member mean)", f"{float(summary.final[k].mean()):.5g}")
    if closure_obj is not None:
        d = closure_obj.describe()
        table.add_row("closure", str(d.get("closure_name", closure_obj)))
        if batched:
            console.print(table)
            return
        table.add_row("closure calls", str(d.get("closure_calls", "")))
        if "closure_artifact_calls" in d:
            table.add_row("artifact calls (resamples)", str(d["closure_artifact_calls"]))
            table.add_row("closure device / dtype", f"{d['closure_device']} / {d['closure_dtype']}")
        seconds = summary.closure_seconds
        table.add_row("time in closure \\[s] (share of wall)",
                      f"{seconds:.2f} ({seconds / summary.wall_seconds:.0%})" if summary.wall_seconds > 0 else "")
        if d.get("closure_nonfinite_events"):
            table.add_row("non-finite closure events", str(d["closure_nonfinite_events"]))
    console.print(table)
