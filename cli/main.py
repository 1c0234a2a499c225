"""Entry point of the ``kolmo`` command: registers one sub-command per module."""

from __future__ import annotations

import typer

from cli import dataset as _dataset
from cli import bench as _bench
from cli import info as _info
from cli import run as _run

app = typer.Typer(
    name="kolmo",
    help="Coarse 2D turbulence with online stochastic closures: solver, datasets, closures, benchmarks.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command("run", help="Run the pseudo-spectral solver (a preset, optionally with a closure) into an HDF5 file.")(_run.run)
app.command("dataset", help=_dataset.HELP)(_dataset.dataset)
app.command("info", help="Print what a run file, dataset file or closure artifact holds.")(_info.info)
app.add_typer(_bench.bench_app, name="bench", help="Benchmarks: solver (and, as they land, closures and coupled runs).")


def main() -> None:  # pragma: no cover - console script
    app()


if __name__ == "__main__":  # pragma: no cover
    app()
