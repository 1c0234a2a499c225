"""``kolmo train``: train (or resume) a closure model into a run directory."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from cli import options as opt
from cli import preflight
from cli.common import console, friendly_errors

HELP = """Train a stochastic closure model on a `kolmo dataset` file.

Models: latent-fm, latent-si, latent-dm, latent-mf, latent-reflow (target autoencoder + condition
encoder + latent generator; --reg none|mp|ga two-phase, or joint end to end) and fm, si, dm, mf,
reflow (generator on the physical field). Sampling defaults (NFE): FM one Euler step (1; lands on
the conditional MEAN), MF one MeanFlow jump (1), reflow one Euler step on couplings drawn by a
trained FM teacher (1; --teacher RUN_DIR), SI 10 Euler-Maruyama steps (10), DM 10 Euler-Maruyama
steps on the Karras grid (10). Checkpoints last.pt / best.pt (best validation loss; validation = whole training
trajectories held out) and run.json go to --out; --resume continues exactly.

Several processes: `torchrun --nproc-per-node N -m cli.main train ...`, or --nproc N, which launches
exactly that (gloo on the CPU, nccl with --device cuda, one GPU per process). --batch stays the
global batch (divisible by N); the loss is that of one process; process 0 writes; checkpoints resume
with any number of processes.
"""


def _term(name: str, value: float, weighted: Optional[float]) -> str:
    """``name value`` (unweighted), followed by ``(weighted w·value)`` when the weight is not 1."""
    if weighted is None or weighted == value:
        return f"{name} {value:.3g}"
    return f"{name} {value:.3g} (weighted {weighted:.3g})"


# Length: 28 of its 108 lines are the typer option list (one parameter per CLI option); the body is 80.
def train(
    ctx: typer.Context,
    out: Path = typer.Option(..., "--out", "-o", help="Run directory (must not exist unless --resume)."),
    data: Optional[Path] = typer.Option(None, "--data", help="Dataset file from `kolmo dataset` (required for a new run)."),
    model: Optional[str] = typer.Option(None, "--model", help="latent-fm|si|dm|mf|reflow or fm|si|dm|mf|reflow (required for a new run)."),
    teacher: Optional[Path] = typer.Option(None, "--teacher", help="reflow only: run directory of the trained fm / latent-fm teacher (same data)."),
    teacher_steps: Optional[int] = typer.Option(None, "--teacher-steps", help="reflow only: Euler steps of the teacher drawing the couplings (default 20).", callback=opt.at_least(1)),
    reg: Optional[str] = typer.Option(None, "--reg", help="Latent regularizer: none (default), mp, ga or joint."),
    autoencoder: Optional[str] = typer.Option(None, "--autoencoder", help="Target autoencoder of latent models: conv (default) or pca."),
    ae_channels: Optional[str] = typer.Option(None, "--ae-channels", help="Conv autoencoder channels per resolution level, finest first (default 8,16,32 for 64² -> 16²; thinner = cheaper decoder).", callback=opt.int_list(1)),
    condition: Optional[str] = typer.Option(None, "--condition", help="Condition encoder of latent models: encoder (default) or pooled (4x4 block average)."),
    epochs: Optional[int] = typer.Option(None, "--epochs", help="Generator (or joint) epochs (default 200; may be raised on --resume).", callback=opt.at_least(1)),
    ae_epochs: Optional[int] = typer.Option(None, "--ae-epochs", help="Autoencoder-phase epochs (default 100).", callback=opt.at_least(1)),
    batch: Optional[int] = typer.Option(None, "--batch", help="Mini-batch size (default 64).", callback=opt.at_least(2)),
    lr: Optional[float] = typer.Option(None, "--lr", help="Adam learning rate (default 1e-3; StepLR(100, 0.5) per epoch).", callback=opt.positive()),
    device: Optional[str] = typer.Option(None, "--device", help="cpu (default) or cuda (no CPU fallback).", callback=opt.device()),
    seed: Optional[int] = typer.Option(None, "--seed", help="Seed of initialisation, shuffling, noise and the validation split (default 0).", callback=opt.at_least(0)),
    steps: Optional[int] = typer.Option(None, "--steps", help="Default sampling steps stored with the model (FM 1, SI 10, DM 10).", callback=opt.at_least(1)),
    width: Optional[int] = typer.Option(None, "--width", help="FNO width (default 40 physical, 20 latent).", callback=opt.at_least(1)),
    modes: Optional[int] = typer.Option(None, "--modes", help="FNO Fourier modes (default 6 physical, 4 latent).", callback=opt.at_least(1)),
    si_source: Optional[str] = typer.Option(None, "--si-source", help="Stochastic-interpolant source: gaussian (default) or empirical (the condition)."),
    ga_landmarks: Optional[int] = typer.Option(None, "--ga-landmarks", help="Landmarks of the GA diffusion potentials (default 2000; 0 = exact).", callback=opt.at_least(0)),
    ga_scale: Optional[str] = typer.Option(None, "--ga-scale", help="GA term: median (default; distances over their training median, scale-fitted stress) or reference (published formula; its exp(-D) weights underflow).", callback=opt.choice("median", "reference")),
    ga_weight: Optional[float] = typer.Option(None, "--ga-weight", help="Weight of the GA term (default 1e-3, the reference's).", callback=opt.non_negative()),
    standardise: Optional[bool] = typer.Option(None, "--standardise/--no-standardise", help="Scalar standardisation of the latents before the generator (default on; off = raw latents, as the reference)."),
    threads: Optional[int] = typer.Option(None, "--threads", help="torch CPU threads (default: torch's).", callback=opt.at_least(1)),
    resume: bool = typer.Option(False, "--resume", help="Continue RUN_DIR/last.pt exactly (only --epochs, --device, --data may change)."),
    nproc: Optional[int] = typer.Option(None, "--nproc", help="Train on N processes: runs this command under torchrun (python -m torch.distributed.run --nproc-per-node N); --batch is the global batch, divisible by N.", callback=opt.at_least(1)),
) -> None:
    """Train and print a summary table."""
    with friendly_errors():  # before torch loads: bad paths and data are refused at once
        preflight.train_resources(data, out, resume=resume, batch=batch, width=width, reg=reg,
                                  ga_landmarks=ga_landmarks, teacher=teacher)
    import torch

    from closure.data_parallel import ranks_from_environment
    from closure.errors import ConfigurationError
    from closure.models import ModelConfig
    from closure.training import TrainConfig, resume_config, train as run_training

    with friendly_errors():
        if threads is not None:
            torch.set_num_threads(threads)
        model_opts: dict[str, Any] = {k: v for k, v in dict(model=model, reg=reg, autoencoder=autoencoder,
                                                             condition=condition, steps=steps, width=width, modes=modes,
                                                             si_source=si_source).items() if v is not None}
        if ae_channels is not None:
            model_opts["ae_channels"] = tuple(int(c) for c in ae_channels.split(","))
        train_opts: dict[str, Any] = {k: v for k, v in dict(epochs=epochs, ae_epochs=ae_epochs, batch=batch, lr=lr,
                                                             device=device, seed=seed,
                                                             teacher=str(teacher) if teacher else None,
                                                             teacher_steps=teacher_steps, ga_scale=ga_scale, ga_weight=ga_weight,
                                                             standardise=standardise).items() if v is not None}
        if data is not None:
            train_opts["data"] = str(data)
        if ga_landmarks is not None:
            train_opts["ga_landmarks"] = ga_landmarks or None
        if resume:
            config = resume_config(out, **model_opts, **train_opts)
        else:
            if data is None or model is None:
                raise ConfigurationError("a new run needs --data DATA.h5 and --model NAME (or --resume to continue "
                                         f"{out})")
            config = TrainConfig(model=ModelConfig(**model_opts), **train_opts)
        if nproc is not None:  # checked here, then the same command runs under torchrun
            from cli.torchrun import command_line, run_torchrun, torchrun_command

            preflight.train_processes(nproc, config, out, resume)
            command = torchrun_command(nproc, command_line(ctx, drop={"nproc"}))
            console.print(f"[bold]torchrun[/]: {escape(' '.join(command[1:]))}", highlight=False, soft_wrap=True)
            raise typer.Exit(run_torchrun(command))
        ranks = ranks_from_environment()
        if not ranks.main:  # the other torchrun processes train silently
            run_training(config, out, resume=resume)
            return
        with Progress(TextColumn("[bold]{task.fields[phase]}[/]"), BarColumn(), TextColumn("{task.completed}/{task.total} ep"),
                      TextColumn("{task.fields[status]}"), TimeElapsedColumn(), TimeRemainingColumn(),
                      console=console, transient=False) as bar:
            task = bar.add_task("train", total=1, phase="starting", status="")
            state: dict[str, Any] = {"val": None}

            def progress(ev) -> None:  # noqa: ANN001
                if ev.kind == "phase":
                    bar.console.print(f"[bold]{ev.phase}[/]: {ev.message} — epochs {ev.epoch}/{ev.epochs}")
                    bar.update(task, total=max(ev.epochs, 1), completed=ev.epoch, phase=ev.phase, status="")
                elif ev.kind == "batch":
                    val = f" val {state['val']:.4g}" if state["val"] is not None else ""
                    bar.update(task, status=f"batch {ev.batch}/{ev.batches} loss {ev.loss:.4g}{val}")
                elif ev.kind == "epoch":
                    state["val"] = ev.val_loss
                    parts = " ".join(_term(k, v, ev.weighted.get(k)) for k, v in ev.components.items())
                    bar.update(task, completed=ev.epoch,
                               status=f"loss {ev.loss:.4g} ({parts}) val {ev.val_loss:.4g}{' *' if ev.best else ''} "
                                      f"lr {ev.lr:.2g} {ev.samples_per_s:.0f} samples/s")

            result = run_training(config, out, resume=resume, progress=progress)
        table = Table(title=f"kolmo train — {config.model.describe()}")
        table.add_column("quantity")
        table.add_column("value", justify="right")
        table.add_row("run directory", str(result.run_dir))
        table.add_row("run id", result.run_id)
        if result.history:
            last = result.history[-1]
            table.add_row("last epoch", f"{last['phase']} {last['epoch']}: loss {last['train_loss']:.4g}, "
                                        f"val {last['val_loss']:.4g}")
            for phase in dict.fromkeys(h["phase"] for h in result.history):
                end = [h for h in result.history if h["phase"] == phase][-1]
                table.add_row(f"loss terms, {phase} epoch {end['epoch']}",
                              ", ".join(_term(k, v, end.get("weighted", {}).get(k)) for k, v in end["components"].items()))
        if result.best:
            table.add_row("best (best.pt)", f"{result.best['phase']} epoch {result.best['epoch']}: "
                                            f"val {result.best['val_loss']:.4g}")
        for phase, rate in result.throughput.items():
            procs = f"{ranks.world_size} processes × " if ranks.distributed else ""
            table.add_row(f"throughput {phase}", f"{rate:.0f} samples/s ({config.device}, "
                                                 f"{procs}{torch.get_num_threads()} threads)")
        table.add_row("parameters", ", ".join(f"{k} {v:,}" for k, v in result.parameters.items()))
        table.add_row("wall time (s)", f"{result.seconds:.1f}")
        console.print(table)
