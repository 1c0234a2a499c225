"""``kolmo evaluate les``: LES runs against a DNS (statistics, no matching trajectory needed).

Two sub-commands: ``coarse-grain`` (a DNS run file → its coarse-grained copy on the LES grid, a run
file an LES can start from with ``--init``) and ``report`` (spectra, mean energy/enstrophy ± 2 SE,
vorticity W1, blow-up, spread, spread–skill, cost; :mod:`kolmo.evaluation.les`). Registered under
``kolmo evaluate`` (:mod:`cli.evaluate`). Options are checked while parsing (:mod:`cli.options`),
paths before any work (:mod:`kolmo.paths`); every file is written atomically.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from cli import options as opt
from cli.common import console, friendly_errors
from kolmo.paths import existing_file, writable_output

HELP = ("LES vs DNS: coarse-grain a DNS run (coarse-grain), or report LES statistics against it (report): "
        "spectra errors over 1 <= k < N/3, mean energy/enstrophy ± 2 SE, vorticity W1, blow-up, spread, cost.")
FILTERS = ("sharp", "gaussian")  # kolmo.evaluation.les.FILTERS (not imported: keeps the CLI start fast)
evaluate_les_app = typer.Typer(help=HELP, no_args_is_help=True)


def _labelled(runs: list[str]) -> dict[str, str]:
    """``RUN.h5`` or ``LABEL=RUN.h5`` items as ``{label: path}`` (label: the file's stem by default)."""
    out = {}
    for r in runs:
        label, sep, path = r.partition("=")
        out[label if sep else Path(r).stem] = path if sep else r
    return out


@evaluate_les_app.command("coarse-grain", short_help="A DNS run file coarse-grained onto the LES grid (a run file).")
def coarse_grain_cmd(
    dns: Path = typer.Argument(..., metavar="DNS.h5", help="DNS run file (kolmo run output, fine grid)."),
    grid: int = typer.Option(..., "--grid", "-n", help="Coarse (LES) grid points per side; must divide the DNS grid.", callback=opt.even_grid()),
    out: Path = typer.Option(..., "--out", "-o", help="Output run file on the coarse grid."),
    filter_: str = typer.Option("sharp", "--filter", help="sharp (spectral cutoff) or gaussian (then the cutoff): the dataset's.", callback=opt.choice(*FILTERS)),
    member: Optional[list[int]] = typer.Option(None, "--member", help="DNS member(s) to keep (repeatable; default all). One member: an LES started from it (--init OUT:INDEX) gets spread–skill against it.", callback=opt.at_least(0)),
    overwrite: bool = typer.Option(False, help="Replace an existing OUT."),
) -> None:
    """Write the coarse-grained DNS snapshots as a run file on the LES grid."""
    from kolmo.evaluation.les import write_coarse_grained_run

    with friendly_errors():
        existing_file(dns, "DNS", "DNS run file")
        writable_output(out, "--out")
        path = write_coarse_grained_run(dns, grid, out, filter_, member, overwrite=overwrite)
    console.print(f"wrote {path} ({filter_} coarse-graining to {grid}²)")


@evaluate_les_app.command("report", short_help="LES run files vs a DNS run file: statistics report (JSON, markdown).")
def report_cmd(
    dns: Path = typer.Argument(..., metavar="DNS.h5", help="DNS run file (the reference)."),
    runs: list[str] = typer.Argument(..., metavar="RUN.h5", help="LES run files, each RUN.h5 or LABEL=RUN.h5 (the label in the report)."),
    out: Path = typer.Option(..., "--out", "-o", help="Report folder (les.json, les.md, figures)."),
    t_start: float = typer.Option(0.0, help="Drop DNS snapshots before this time (its spin-up).", callback=opt.non_negative()),
    run_t_start: float = typer.Option(0.0, help="Drop LES snapshots before this time (on the LES clock).", callback=opt.non_negative()),
    filter_: str = typer.Option("sharp", "--filter", help="Coarse-graining of the DNS: sharp or gaussian (the dataset's).", callback=opt.choice(*FILTERS)),
    blocks: int = typer.Option(10, help="Blocks per member for the ± 2 SE of the means.", callback=opt.at_least(2)),
    skill_horizon: float = typer.Option(5.0, help="Spread–skill window (0, T] in time units.", callback=opt.positive()),
    figures: bool = typer.Option(False, "--figures", help="Also write PNG figures (needs matplotlib: pip install kolmo[plots])."),
) -> None:
    """Compare LES run files with a DNS run file and print the summary."""
    from kolmo.evaluation.les import evaluate_les, write_les_report

    with friendly_errors():  # paths before any work
        existing_file(dns, "DNS", "DNS run file")
        labelled = _labelled(runs)
        for label, path in labelled.items():
            existing_file(path, f"RUNS ({label})", "LES run file")
        writable_output(out, "--out", folder=True)
    with friendly_errors():
        result = evaluate_les(dns, labelled, t_start=t_start, run_t_start=run_t_start, filter=filter_, blocks=blocks,
                              skill_horizon=skill_horizon, keep=figures)
        files = write_les_report(result, out, figures=figures)
    table = Table(title=f"kolmo evaluate les — {result['reference']['grid']}² DNS → {result['grid']['n']}²")
    for col in ("run", "E-spec err band/upper", "E/DNS", "Z/DNS", "W1/σ", "blow-up", "spread–skill", "speed-up"):
        table.add_column(col)
    for label, x in result["runs"].items():
        es, ss = x["energy_spectrum_error"], x["spread_skill"]
        sp = x["cost"].get("speedup_vs_reference")
        table.add_row(label, f"{es['band']:.3f} / {es['upper']:.3f}", f"{x['energy']['ratio_to_reference']:.3f}",
                      f"{x['enstrophy']['ratio_to_reference']:.3f}", f"{x['vorticity_w1_over_sigma']:.3f}",
                      "yes" if x["blowup"]["blew_up"] else "no", "–" if ss is None else f"{ss['ratio']:.2f}",
                      "–" if sp is None else f"{sp:.1f}×")
    console.print(table)
    console.print("wrote " + ", ".join(str(f) for f in files))
