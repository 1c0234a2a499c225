"""Entry point of the ``kolmo`` command: registers one sub-command per module."""

from __future__ import annotations

import typer

from cli import dataset as _dataset
from cli import bench as _bench
from cli import demo as _demo
from cli import info as _info
from cli import run as _run
from cli import train as _train
from cli import evaluate as _evaluate
from cli import export as _export
from cli import evaluate_les as _evaluate_les

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
app.command("train", help=_train.HELP)(_train.train)
app.command("evaluate", help="A-priori metrics of a trained closure on test conditions (SCIENCE.md §4), or --online: the report of an online run vs the truth.")(_evaluate.evaluate)
app.command("export", help="Write a self-checked closure artifact (TorchScript, or --format aoti) from a trained run.")(_export.export)
app.command("demo", help=_demo.HELP)(_demo.demo)
app.add_typer(_evaluate_les.evaluate_les_app, name="evaluate-les", help=_evaluate_les.HELP)
app.add_typer(_bench.bench_app, name="bench", help="Benchmarks: solver (and, as they land, closures and coupled runs).")


def main() -> None:  # pragma: no cover - console script
    app()


if __name__ == "__main__":  # pragma: no cover
    app()
