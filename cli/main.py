"""Entry point of the ``kolmo`` command: registers one sub-command per module."""

from __future__ import annotations

import typer

from cli import errors as _errors
from cli import dataset as _dataset
from cli import bench as _bench
from cli import demo as _demo
from cli import info as _info
from cli import run as _run
from cli import train as _train
from cli import evaluate as _evaluate
from cli import export as _export

app = typer.Typer(
    name="kolmo",
    help="Coarse 2D turbulence with online stochastic closures: solver, datasets, closures, benchmarks.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain two-column help: readable at 80 columns (rich boxes wrap into slivers)
    epilog=_errors.EXIT_EPILOG,
)
app.command("run", short_help="Run the solver (optionally with a closure) into an HDF5 file.", help="Run the pseudo-spectral solver (a preset, optionally with a closure) into an HDF5 file.")(_run.run)
app.command("dataset", short_help="Build coarse (vorticity, closure) training pairs.", help=_dataset.HELP)(_dataset.dataset)
app.command("info", help="Print what a run file, dataset file or closure artifact holds.")(_info.info)
app.command("train", help=_train.HELP)(_train.train)
app.command("export", short_help="Write a self-checked closure artifact from a trained run.", help="Write a self-checked closure artifact (TorchScript, or --format aoti) from a trained run.")(_export.export)
app.command("demo", short_help="The whole pipeline on built-in defaults (resumable).", help=_demo.HELP)(_demo.demo)
app.add_typer(_evaluate.evaluate_app, name="evaluate", short_help="Evaluate closures: apriori, online, les (LES vs DNS).",
              help="Evaluate closures: apriori (a trained model on test pairs), online (a run vs the truth) or les "
                   "(LES runs vs a DNS, by statistics).")
app.add_typer(_bench.bench_app, name="bench", help="Benchmarks: the solver, closure artifacts, coupled rollouts.")
_errors.guard_app(app)  # one error boundary around every command (keep this after the last registration)


def main() -> None:  # pragma: no cover - console script
    _errors.main(app)


if __name__ == "__main__":  # pragma: no cover
    main()
