"""``kolmo evaluate``: the a-priori table of a trained closure model on test conditions, or with
``--online`` the a-posteriori report of an online run (:mod:`cli.evaluate_online`)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from cli import options as opt
from cli import preflight
from cli.common import console, friendly_errors
from kolmo.atomic import write_json
from kolmo.paths import writable_output


def evaluate(
    run_dir: Path = typer.Argument(..., help="Run directory of `kolmo train` (or, with --online, a run file RUN.h5)."),
    data: Optional[Path] = typer.Option(None, "--data", help="Dataset file; its test split is used (a priori)."),
    online: bool = typer.Option(False, "--online", help="Evaluate an online run file against a truth instead (a posteriori)."),
    reference: Optional[str] = typer.Option(None, "--reference", help="--online: TRUTH.h5[:MEMBER] or DATA.h5:test[:TRAJ[:START]]."),
    baseline: Optional[list[Path]] = typer.Option(None, "--baseline", help="--online: baseline run file(s); the first scores the similarity (normally no closure)."),
    out: Optional[Path] = typer.Option(None, "--out", help="--online: report folder (report.md, metrics.json, figures)."),
    horizons: Optional[str] = typer.Option(None, "--horizons", help="--online: times of the trajectory table (default 5,10,15,20).", callback=opt.number_list(gt=0)),
    samples: int = typer.Option(100, "--samples", help="Samples per test condition.", callback=opt.at_least(1)),
    steps: Optional[int] = typer.Option(None, "--steps", help="Sampling steps (default: the model's; FM 1).", callback=opt.at_least(1)),
    conditions: int = typer.Option(10, "--conditions", help="Test pairs, evenly spaced over the test split.", callback=opt.at_least(1)),
    sampler: Optional[str] = typer.Option(None, "--sampler", help="DM models: em (reference, default) or heun (EDM, 2n-1 NFE).", callback=opt.choice("em", "heun")),
    checkpoint: str = typer.Option("best", "--checkpoint", help="best or last.", callback=opt.choice("best", "last")),
    seed: int = typer.Option(0, "--seed", help="Seed of the sampling noise.", callback=opt.at_least(0)),
    batch: Optional[int] = typer.Option(None, "--batch", help="Samples per model call (default: all at once).", callback=opt.at_least(1)),
    threads: Optional[int] = typer.Option(None, "--threads", help="torch CPU threads (default: torch's).", callback=opt.at_least(1)),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Also write the metrics (with per-condition values) here."),
) -> None:
    """Evaluate and print a rich table (and JSON)."""
    with friendly_errors():
        preflight.evaluate_modes(online=online, given={
            "--reference": reference is not None, "--baseline": bool(baseline), "--out": out is not None,
            "--horizons": horizons is not None, "--data": data is not None, "--samples": samples != 100,
            "--steps": steps is not None, "--conditions": conditions != 10, "--sampler": sampler is not None,
            "--checkpoint": checkpoint != "best", "--seed": seed != 0, "--batch": batch is not None,
            "--threads": threads is not None, "--json": json_out is not None})
        if json_out is not None:
            writable_output(json_out, "--json")
        if not online:  # before torch loads
            preflight.apriori_inputs(run_dir, data)
        elif out is not None:
            writable_output(out, "--out", folder=True)
    if online:
        from cli.evaluate_online import evaluate_online_command

        with friendly_errors():
            from kolmo.errors import ConfigurationError

            if reference is None or out is None:
                raise ConfigurationError("--online needs --reference TRUTH and --out REPORT_DIR")
            evaluate_online_command(run_dir, reference, baseline, out, horizons)
        return
    import torch

    from closure.evaluation import METRICS, evaluate_run

    with friendly_errors():
        if data is None:
            from kolmo.errors import ConfigurationError

            raise ConfigurationError("a-priori evaluation needs --data DATA.h5 (or use --online for a run file)")
        if threads is not None:
            torch.set_num_threads(threads)
        res = evaluate_run(run_dir, data, checkpoint=checkpoint, samples=samples, steps=steps, sampler=sampler,
                           conditions=conditions, seed=seed, batch=batch)
        table = Table(title=f"kolmo evaluate — {res['model']}, {res['sampler']} {res['steps']} step(s), "
                            f"{res['samples']} samples x {res['conditions']} test conditions")
        table.add_column("metric")
        table.add_column("definition")
        table.add_column("value", justify="right")
        for key, definition in METRICS.items():
            value = res[key]
            text = f"{value:d}" if isinstance(value, int) else f"{value:.4g}"
            if key == "sample_rel_error_mean":
                text = f"{value:.4g} ± {res['sample_rel_error_2std']:.3g}"
            if key == "sample_rel_error_2std":
                continue
            if key == "straightness":
                text += f" ({res['straightness_steps']} steps)"
            table.add_row(key, definition, text)
        table.add_row("seconds_per_sample", f"CPU, {res['threads']} thread(s), batch {batch or samples}",
                      f"{res['seconds_per_sample']:.3g}")
        table.add_row("flops_per_sample", "encoder + NFE x network + decoder", f"{res['flops_per_sample']:.3g}")
        console.print(table)
        if not res["dataset_matches_training"]:
            console.print("[yellow]note[/]: --data is not the dataset this model was trained on (fingerprints differ)")
        if json_out is not None:
            write_json(json_out, res, indent=1)
            console.print(f"metrics written to {json_out}")
