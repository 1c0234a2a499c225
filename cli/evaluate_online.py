"""``kolmo evaluate online``: a-posteriori evaluation of a closure run; thin wrapper around
:func:`kolmo.evaluation.evaluate_online` that prints a rich summary::

    kolmo evaluate online RUN.h5 --reference TRUTH.h5|DATA.h5:test:TRAJ[:START] \\
                          [--baseline NOCLOSURE.h5 ...] --out REPORT_DIR [--horizons 5,10,15,20]
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional, Sequence

import typer
from rich.table import Table

from cli import options as opt
from cli.common import console, err_console, friendly_errors
from kolmo.paths import writable_output

HELP = """Evaluate a closure run online against the truth and write a report folder.

REFERENCE is a run file (same grid, or finer: coarse-grained by the preset's rule,
dong2026 subsampling / kolmogorov sharp truncation; TRUTH.h5:MEMBER names the truth member)
or a dataset trajectory DATA.h5:SPLIT:TRAJ[:START] (DATA.h5:test alone: the run's --init).
The first --baseline (normally the no-closure run) is the baseline of the similarity scores.
Writes REPORT_DIR/report.md, metrics.json and PNG figures; REPORT_DIR must not exist or be empty.
"""


def parse_horizons(horizons: str | Sequence[float] | None) -> tuple[float, ...]:
    """``"5,10,15,20"``, a sequence of numbers, or ``None`` (the default +5/+10/+15/+20)."""
    from kolmo.evaluation import DEFAULT_HORIZONS
    from kolmo.errors import ConfigurationError

    if horizons is None:
        return DEFAULT_HORIZONS
    items: list[Any] = []
    for h in ([horizons] if isinstance(horizons, str) else list(horizons)):
        items += [x for x in str(h).replace(" ", "").split(",") if x] if isinstance(h, str) else [h]
    try:
        return tuple(float(x) for x in items)
    except ValueError:
        raise ConfigurationError(f"--horizons expects numbers like 5,10,15,20, got {horizons!r}") from None


def _f(x: Any, fmt: str = ".3g") -> str:
    return "—" if x is None else format(x, fmt)


def summary_tables(result: dict[str, Any]) -> list[Table]:
    """The rich tables printed by :func:`evaluate_online_command` (trajectory, statistics)."""
    results, sims = result["results"], result["similarity"]
    horizons = result["horizons"]
    traj = Table(title=f"trajectory vs truth — relative L2 error, member mean ± 2 std ({result['preset']}, "
                       f"{result['grid']['n']}²)")
    traj.add_column("source")
    traj.add_column("B", justify="right")
    for h in horizons:
        traj.add_column(f"+{h:g}", justify="right")
    traj.add_column(f"spread–skill @+{horizons[-1]:g}" if horizons else "spread–skill", justify="right")
    traj.add_column(f"CRPS @+{horizons[-1]:g}" if horizons else "CRPS", justify="right")
    for label, r in results.items():
        rows = r["trajectory"]["at_horizons"]
        members = result["run"]["members"] if r["role"] == "run" else next(
            b["members"] for b in result["baselines"] if b["label"] == label)
        cells = [f"{_f(x['rel_error_mean'])} ± {_f(x['rel_error_2std'], '.2g')}" if x["rel_error_mean"] is not None
                 else "—" for x in rows]
        last = rows[-1] if rows else {"spread_skill": None, "crps": None}
        style = "bold" if r["role"] == "run" else ""
        traj.add_row(label, str(members), *cells, _f(last["spread_skill"]), _f(last["crps"]), style=style)
    stats = Table(title="statistics vs the coarse-grained reference (distance d; similarity 1 − d/d_baseline "
                        f"vs {result['similarity_baseline'] or '—'})")
    stats.add_column("source")
    keys = [("spectrum_error_energy", "E(k) err"), ("spectrum_error_enstrophy", "Z(k) err"),
            ("w1_vorticity", "W1 ω"), ("w1_u", "W1 u"), ("w1_v", "W1 v"),
            ("energy_series_error", "E(t) err"), ("enstrophy_series_error", "Z(t) err")]
    for _, name in keys:
        stats.add_column(name, justify="right")
    stats.add_column("horizon", justify="right")
    for label, r in results.items():
        s = r["statistics"]
        sim = sims.get(label, {})
        cells = [f"{_f(s[k])}" + (f" ({_f(sim.get(k), '+.2f')})" if label in sims else "") for k, _ in keys]
        hor = s["horizon"]
        cells.append(f"{_f(hor.get('horizon_mean'))}/{_f(hor.get('t_window'))}")
        stats.add_row(label, *cells, style="bold" if r["role"] == "run" else "")
    return [traj, stats]


def evaluate_online_command(run: Path | str, reference: str, baseline: Sequence[Path | str] | None,
                            out: Path | str, horizons: str | Sequence[float] | None = None) -> dict[str, Any]:
    """Run :func:`kolmo.evaluation.evaluate_online`, print the summary tables, warnings and the
    report path; typed errors become one-line messages (exit status: the error's ``exit_code``). Returns the metrics."""
    from kolmo.evaluation import evaluate_online

    with friendly_errors():
        hs = parse_horizons(horizons)
        with console.status("[bold]kolmo evaluate online[/]: reading runs, computing metrics, drawing figures"):
            result = evaluate_online(Path(run), str(reference), [Path(b) for b in (baseline or [])], Path(out), hs)
    for table in summary_tables(result):
        console.print(table)
    for w in result["warnings"]:
        err_console.print(f"[yellow]warning[/]: {w}")
    console.print(f"report: [bold]{result['report_dir']}[/] ({', '.join(result['files'])})")
    return result


def online(
    run: Path = typer.Argument(..., metavar="RUN.h5", help="Run file of the closure run."),
    reference: str = typer.Option(..., "--reference", help="TRUTH.h5[:MEMBER] or DATA.h5:test[:TRAJ[:START]]."),
    baseline: Optional[list[Path]] = typer.Option(None, "--baseline", help="Baseline run file(s); the first scores the similarity (normally no closure)."),
    out: Path = typer.Option(..., "--out", help="Report folder (report.md, metrics.json, figures)."),
    horizons: Optional[str] = typer.Option(None, "--horizons", help="Times of the trajectory table (default 5,10,15,20).", callback=opt.number_list(gt=0)),
) -> None:
    """The ``kolmo evaluate online`` command (help: :data:`HELP`)."""
    with friendly_errors():  # before the runs are read
        writable_output(out, "--out", folder=True)
    evaluate_online_command(run, reference, baseline, out, horizons)
