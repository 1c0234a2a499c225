"""``kolmo evaluate apriori|online|les``: the a-priori table of a trained closure model on test conditions,
the a-posteriori report of an online run (:mod:`cli.evaluate_online`), or LES runs vs a DNS by
statistics (:mod:`cli.evaluate_les`: ``les coarse-grain``, ``les report``)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from cli import options as opt
from cli import preflight
from cli.common import console, friendly_errors
from cli.evaluate_les import HELP as LES_HELP
from cli.evaluate_les import evaluate_les_app
from cli.evaluate_online import HELP as ONLINE_HELP
from cli.evaluate_online import online
from kolmo.atomic import write_json
from kolmo.paths import writable_output

evaluate_app = typer.Typer(help="Evaluate closures: apriori (a trained model on test pairs), online (a run vs the "
                                "truth) or les (LES runs vs a DNS, by statistics).", no_args_is_help=True)
evaluate_app.command("online", short_help="A closure run vs the truth: a report folder with figures.",
                     help=ONLINE_HELP)(online)
evaluate_app.add_typer(evaluate_les_app, name="les", short_help="LES runs vs a DNS: coarse-grain, report.", help=LES_HELP)


@evaluate_app.command("apriori", short_help="Metrics of a trained closure on test pairs (table, JSON).")
def apriori(
    run_dir: Path = typer.Argument(..., help="Run directory of `kolmo train`."),
    data: Path = typer.Option(..., "--data", help="Dataset file; its test split is used."),
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
    """A-priori metrics of a trained closure on test conditions (SCIENCE.md §4): a rich table (and JSON)."""
    with friendly_errors():  # before torch loads
        if json_out is not None:
            writable_output(json_out, "--json")
        preflight.apriori_inputs(run_dir, data)
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
        if res.get("noise_std_ratio") is not None:
            table.add_row("noise_std_ratio", "sample std / the noise's point std (1: the law F(ω) + σξ kept)",
                          f"{res['noise_std_ratio']:.4g}")
        if res.get("coarse_advection_residual") is not None:
            table.add_row("coarse_advection_residual", "‖H − coarse-grid advection of ω‖/‖H‖ (≈ 0: H is a function "
                          "of ω, p(H | ω) a point mass, spread = model error)", f"{res['coarse_advection_residual']:.3g}")
        console.print(table)
        if not res["dataset_matches_training"]:
            console.print("[yellow]note[/]: --data is not the dataset this model was trained on (fingerprints differ)")
        if json_out is not None:
            write_json(json_out, res, indent=1)
            console.print(f"metrics written to {json_out}")
