"""``kolmo evaluate apriori|online``: the a-priori table of a trained closure model on test conditions,
or the a-posteriori report of an online run (:mod:`cli.evaluate_online`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from cli.common import console, friendly_errors
from cli.evaluate_online import HELP as ONLINE_HELP
from cli.evaluate_online import online

evaluate_app = typer.Typer(help="Evaluate closures: apriori (a trained model on test pairs) or online (a run vs the truth).",
                           no_args_is_help=True)
evaluate_app.command("online", help=ONLINE_HELP)(online)


@evaluate_app.command("apriori")
def apriori(
    run_dir: Path = typer.Argument(..., help="Run directory of `kolmo train`."),
    data: Path = typer.Option(..., "--data", help="Dataset file; its test split is used."),
    samples: int = typer.Option(100, "--samples", help="Samples per test condition."),
    steps: Optional[int] = typer.Option(None, "--steps", help="Sampling steps (default: the model's; FM 1)."),
    conditions: int = typer.Option(10, "--conditions", help="Test pairs, evenly spaced over the test split."),
    sampler: Optional[str] = typer.Option(None, "--sampler", help="DM models: em (reference, default) or heun (EDM, 2n-1 NFE)."),
    checkpoint: str = typer.Option("best", "--checkpoint", help="best or last."),
    seed: int = typer.Option(0, "--seed", help="Seed of the sampling noise."),
    batch: Optional[int] = typer.Option(None, "--batch", help="Samples per model call (default: all at once)."),
    threads: Optional[int] = typer.Option(None, "--threads", help="torch CPU threads (default: torch's)."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Also write the metrics (with per-condition values) here."),
) -> None:
    """A-priori metrics of a trained closure on test conditions (SCIENCE.md §4): a rich table (and JSON)."""
    import torch

    from closure.evaluation import METRICS, evaluate_run

    with friendly_errors():
        if threads is not None:
            torch.set_num_threads(threads)
        res = evaluate_run(run_dir, data, checkpoint=checkpoint, samples=samples, steps=steps, sampler=sampler,
                           conditions=conditions, seed=seed, batch=batch)
        table = Table(title=f"kolmo evaluate apriori — {res['model']}, {res['sampler']} {res['steps']} step(s), "
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
        from closure.geometry import GEOMETRY_METRICS

        for key, definition in GEOMETRY_METRICS.items():
            if key in res:
                table.add_row(key, f"{definition} (k = {res['geometry_k']}, {res['geometry_points']} test pairs)",
                              f"{res[key]:.4g}")
        if res.get("irreducible_floor") is not None:
            table.add_row("irreducible_floor", f"target {res['target']}: noise share no model can predict",
                          f"{res['irreducible_floor']:.4g}")
        console.print(table)
        if not res["dataset_matches_training"]:
            console.print("[yellow]note[/]: --data is not the dataset this model was trained on (fingerprints differ)")
        if json_out is not None:
            json_out.write_text(json.dumps(res, indent=1))
            console.print(f"metrics written to {json_out}")
