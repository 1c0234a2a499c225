"""``kolmo bench``: benchmarks of the solver, of closure artifacts and of coupled rollouts."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from cli import options as opt
from cli import preflight
from cli.common import console, friendly_errors
from kolmo.atomic import write_json

bench_app = typer.Typer(help="Benchmarks: the solver, closure artifacts, coupled rollouts.", no_args_is_help=True)


def _ints(text: str, name: str) -> list[int]:
    from kolmo.errors import ConfigurationError

    try:
        values = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise ConfigurationError(f"--{name} expects comma-separated integers, got {text!r}") from None
    if not values or min(values) < 1:
        raise ConfigurationError(f"--{name} expects positive integers, got {text!r}")
    return values


@bench_app.command("solver", short_help="µs per step vs the FFT-only bound and the NumPy reference.")
def solver(
    grid: str = typer.Option("64,128,256,512", help="Grid sizes N (comma-separated).", callback=opt.int_list(4)),
    members: str = typer.Option("1,16", help="Batch sizes B (comma-separated).", callback=opt.int_list(1)),
    threads: int = typer.Option(1, help="FFTW threads.", callback=opt.at_least(1)),
    repeats: int = typer.Option(5, help="Timing blocks; the minimum is reported.", callback=opt.at_least(1)),
    numpy_reference: bool = typer.Option(True, help="Also time the NumPy reference solver (slow at 512²)."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Write rows and machine info as JSON."),
    peer: Optional[str] = typer.Option(None, help="Compare with a peer solver instead: jax-cfd (batch 1, "
                                       "interleaved processes; see kolmo/peer.py).", callback=opt.choice("jax-cfd")),
    peer_python: Optional[Path] = typer.Option(None, help="With --peer: the Python executable of an environment "
                                               "that has the peer (pip install jax jax-cfd); never kolmo's own."),
    peer_script: Optional[Path] = typer.Option(None, help="With --peer: its timing script (default "
                                               "benchmarks/peer_jax_cfd.py of this checkout)."),
    peer_cores: str = typer.Option("1,2", help="With --peer: core settings, each side pinned to 1 and/or 2 cores.",
                                   callback=opt.int_list(1)),
    peer_rounds: int = typer.Option(3, help="With --peer: rounds of the kolmo/peer alternation.", callback=opt.at_least(1)),
) -> None:
    """µs per step (cn-rk3, kolmogorov physics) beside the FFT-only bound and the NumPy reference."""
    from kolmo.benchmark import machine_info, run_solver_benchmark

    with friendly_errors():
        if peer is not None or peer_python is not None:
            _solver_peer(peer, peer_python, peer_script, _ints(grid, "grid"), _ints(peer_cores, "peer-cores"),
                         peer_rounds, repeats, json_out)
            return
        grids, bs = _ints(grid, "grid"), _ints(members, "members")
        preflight.bench_solver_resources(grids, bs, json_out)
        info = machine_info()
        table = Table(title=f"kolmo bench solver — {info['cpu']}, {info['cores']} cores, {threads} FFTW thread(s)")
        for col in ("N", "B", "step [µs]", "FFT-only bound [µs]", "ratio", "NumPy ref [µs]", "speed-up", "ns/point"):
            table.add_column(col, justify="right")

        def row(r) -> None:  # noqa: ANN001
            table.add_row(str(r.n), str(r.members), f"{r.step_us:.1f}", f"{r.fft_bound_us:.1f}",
                          f"{r.ratio_to_fft:.2f}", f"{r.numpy_us:.1f}", f"{r.speedup_vs_numpy:.1f}×",
                          f"{r.ns_per_point:.1f}")
            console.print(f"  N={r.n} B={r.members}: {r.step_us:.1f} µs/step", highlight=False)

        load_start = list(os.getloadavg())  # the machine's load, recorded with the timings
        rows = run_solver_benchmark(grids, bs, threads=threads, repeats=repeats,
                                    numpy_reference=numpy_reference, progress=row)
        console.print(table)
        if json_out is not None:
            write_json(json_out, {"machine": info, "load_average_1_5_15min": {"start": load_start, "end": list(os.getloadavg())},
                                  "rows": [r.as_dict() for r in rows]}, indent=1)
            console.print(f"wrote {json_out}")


def _solver_peer(peer: Optional[str], peer_python: Optional[Path], peer_script: Optional[Path], grids: list[int],
                 cores: list[int], rounds: int, repeats: int, json_out: Optional[Path]) -> None:
    """``kolmo bench solver --peer``: kolmo against the peer, interleaved, one table per core setting."""
    from kolmo.benchmark import machine_info
    from kolmo.errors import ConfigurationError
    from kolmo.paths import existing_file
    from kolmo.peer import compare_with_peer

    if peer is None or peer_python is None:
        raise ConfigurationError("--peer and --peer-python go together (e.g. --peer jax-cfd --peer-python "
                                 "/path/to/jaxvenv/bin/python)")
    existing_file(peer_python, "--peer-python", "Python executable")
    if peer_script is not None:
        existing_file(peer_script, "--peer-script", "script")
    preflight.bench_solver_resources(grids, [1], json_out)
    info = machine_info()
    res = compare_with_peer(peer, peer_python, grids, cores=tuple(cores), rounds=rounds, repeats=repeats,
                            peer_script=peer_script,
                            progress=lambda r: console.print(f"  round {r['round']} {r['cores']} core(s) {r['side']} "
                                                             f"N={r['n']}: {r['step_us']:.1f} µs/step", highlight=False))
    table = Table(title=f"kolmo vs {peer} — {info['cpu']}, batch 1, min over {rounds} interleaved rounds")
    for col in ("cores", "N", "kolmo [µs]", f"{peer} [µs]", "speed-up", "per round"):
        table.add_column(col, justify="right")
    for row in res.summary():
        table.add_row(str(row["cores"]), str(row["n"]), f"{row['kolmo_us']:.1f}", f"{row['peer_us']:.1f}",
                      f"{row['speedup']:.2f}×", " ".join(f"{x:.2f}" for x in row["speedup_per_round"]))
    console.print(table)
    if json_out is not None:
        write_json(json_out, {"machine": info, **res.as_dict()}, indent=1)
        console.print(f"wrote {json_out}")


@bench_app.command("closures", short_help="Latency per call of closure artifacts, NFE, FLOPs, speed-up.")
def closures(
    artifacts: list[Path] = typer.Argument(..., help="Closure artifacts (.pt TorchScript or .pt2 AOTInductor); the first is the speed-up baseline."),
    batch: str = typer.Option("1,16,100", help="Batch sizes (comma-separated).", callback=opt.int_list(1)),
    device: str = typer.Option("cpu", help="cpu or cuda.", callback=opt.device()),
    dtype: str = typer.Option("float32", help="float32 or float64.", callback=opt.choice("float32", "float64")),
    repeat: int = typer.Option(50, help="Timed calls per (artifact, batch).", callback=opt.at_least(1)),
    warmup: int = typer.Option(5, help="Untimed calls first.", callback=opt.at_least(0)),
    cuda_graph: bool = typer.Option(False, help="Replay a captured CUDA graph where the artifact allows it."),
    baseline: int = typer.Option(0, help="Index of the baseline artifact for speed-ups.", callback=opt.at_least(0)),
    threads: Optional[int] = typer.Option(None, help="torch CPU threads (default: torch's, one per core).",
                                          callback=opt.at_least(1)),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Write rows and machine info as JSON."),
    plot: Optional[Path] = typer.Option(None, help="Bar chart of latencies (PNG)."),
) -> None:
    """Time exported closures as the solver calls them: latency per call, samples/s, NFE, FLOPs, speed-up."""
    with friendly_errors():
        preflight.bench_closures_inputs(artifacts, baseline, device, cuda_graph, json_out, plot)  # before torch
        import torch

        from coupling.bench import bench_closures, machine_info, plot_bars, write_json

        bs = _ints(batch, "batch")
        info = machine_info(device)
        where = info.get("gpu", info["cpu"])
        table = Table(title=f"kolmo bench closures — {where}, torch {torch.__version__}, {device}/{dtype}")
        for col in ("artifact", "format", "family", "NFE", "params", "MFLOP/sample", "load [ms]", "B", "median [ms]",
                    "min [ms]", "IQR [ms]", "samples/s", "H2D+D2H [ms]", "speed-up"):
            table.add_column(col, justify="right")
        rows = bench_closures([str(a) for a in artifacts], bs, device=device, dtype=dtype, repeat=repeat,
                              warmup=warmup, cuda_graph=cuda_graph, baseline=baseline, threads=threads,
                              progress=lambda r: console.print(f"  {Path(r.artifact).name} B={r.batch}: "
                                                               f"{r.median_ms:.3f} ms", highlight=False))
        for r in rows:
            mflop = f"{r.flops_per_sample / 1e6:.1f}" if r.flops_per_sample else "?"
            table.add_row(Path(r.artifact).name, r.file_format, r.family or "?",
                          str(r.nfe if r.nfe is not None else "?"), f"{r.parameters:,}", mflop, f"{r.load_ms:.0f}",
                          str(r.batch), f"{r.median_ms:.3f}", f"{r.min_ms:.3f}", f"{r.iqr_ms:.3f}", f"{r.samples_per_second:,.0f}", f"{r.h2d_ms + r.d2h_ms:.3f}",
                          f"{r.speedup:.1f}×")
        console.print(table)
        if json_out is not None:
            write_json(rows, json_out, device)
            console.print(f"wrote {json_out}")
        if plot is not None:
            plot_bars(rows, plot)
            console.print(f"wrote {plot}")


@bench_app.command("coupled", short_help="Online protocol: the solver alone vs with each closure.")
def coupled(
    closure: list[str] = typer.Option(..., "--closure", help="Closure(s) to time: PATH.pt, PATH.pt2, smagorinsky, leith, replay:DATA.h5 (repeatable)."),
    preset: str = typer.Option("dong2026", help="Preset of the online run."),
    grid: int = typer.Option(64, help="Coarse grid N.", callback=opt.even_grid()),
    steps: int = typer.Option(20000, help="Time steps (the paper: 20,000 = 20 time units).", callback=opt.at_least(1)),
    closure_every: int = typer.Option(5, help="Resample an artifact closure every k steps (paper 5).", callback=opt.at_least(1)),
    closure_jitter: float = typer.Option(5e-5, help="Jitter σ between resamples (paper 5e-5).", callback=opt.non_negative()),
    members: int = typer.Option(1, "--members", "-b", help="Ensemble members.", callback=opt.at_least(1)),
    init: Optional[str] = typer.Option(None, help="Initial snapshot DATA.h5:test:INDEX (default: the preset's random field)."),
    threads: int = typer.Option(1, help="FFTW and torch CPU threads.", callback=opt.at_least(1)),
    device: str = typer.Option("cpu", help="Device of artifact closures.", callback=opt.device()),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Write rows and machine info as JSON."),
) -> None:
    """The paper's online protocol: wall-clock of the solver alone vs with each closure, and where the time goes."""
    with friendly_errors():
        from coupling.bench import bench_coupled, machine_info

        preflight.bench_coupled_resources(grid, members, json_out)
        info = machine_info(device)
        table = Table(title=f"kolmo bench coupled — {preset} {grid}², {steps} steps, closure every {closure_every}, "
                            f"{members} member(s), {info.get('gpu', info['cpu'])}")
        for col in ("closure", "wall [s]", "solver [s]", "network [s]", "coupling [s]", "coupling share",
                    "artifact calls", "ms/step", "overhead vs solver"):
            table.add_column(col, justify="right")
        load_start = list(os.getloadavg())  # the machine's load, recorded with the timings
        rows = bench_coupled(closure, preset=preset, grid=grid, steps=steps, every=closure_every, jitter=closure_jitter,
                             members=members, init=init, threads=threads, device=device,
                             progress=lambda r: console.print(f"  {r.closure}: {r.wall_s:.2f} s", highlight=False))
        for r in rows:
            for note in r.notes:
                console.print(f"[cyan]note[/] ({Path(r.closure).name}): {note}")
        for r in rows:
            table.add_row(Path(r.closure).name, f"{r.wall_s:.2f}", f"{r.solver_s:.2f}", f"{r.network_s:.2f}",
                          f"{r.coupling_s:.2f}", f"{100 * r.share(r.coupling_s):.1f}%", str(r.artifact_calls),
                          f"{1e3 * r.wall_s / r.steps:.3f}", f"{r.overhead:.2f}×")
        console.print(table)
        for r in rows[1:]:
            console.print(f"{Path(r.closure).name}: solver {100 * r.share(r.solver_s):.1f}%, network "
                          f"{100 * r.share(r.network_s):.1f}%, coupling share {100 * r.share(r.coupling_s):.1f}% "
                          "of the rollout", highlight=False)
        if json_out is not None:
            write_json(json_out, {"machine": info, "load_average_1_5_15min": {"start": load_start, "end": list(os.getloadavg())},
                                  "rows": [r.as_dict() for r in rows]}, indent=1)
            console.print(f"wrote {json_out}")
