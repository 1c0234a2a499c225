"""``kolmo export``: write a self-checked closure artifact (TorchScript by default) from a trained run."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from cli import options as opt
from cli.common import console, friendly_errors
from kolmo.paths import existing_folder, writable_output


def export(
    run_dir: Path = typer.Argument(..., help="Run directory of `kolmo train`."),
    out: Path = typer.Option(..., "--out", "-o", help="Artifact file (never overwritten): CLOSURE.pt, or CLOSURE.pt2 for aoti."),
    steps: Optional[int] = typer.Option(None, "--steps", help="Fixed sampling steps inside the artifact (default: the model's; FM 1).", callback=opt.at_least(1)),
    sampler: Optional[str] = typer.Option(None, "--sampler", help="DM models: em (default) or heun.", callback=opt.choice("em", "heun")),
    device: str = typer.Option("cpu", "--device", help="cpu or cuda (no CPU fallback).", callback=opt.device()),
    dtype: str = typer.Option("float32", "--dtype", help="float32 or float64.", callback=opt.choice("float32", "float64")),
    format_: str = typer.Option("torchscript", "--format", help="torchscript (default; libtorch, FTorch and TorchFort load it) or aoti (torch.export + AOTInductor .pt2: metadata inside, batch 1..4096, this device and dtype only; needs a C++ compiler).", callback=opt.choice("torchscript", "aoti")),
    checkpoint: str = typer.Option("best", "--checkpoint", help="best or last.", callback=opt.choice("best", "last")),
    latency: bool = typer.Option(True, "--latency/--no-latency", help="Measure the batch-1 latency of the saved artifact."),
) -> None:
    """Export, self-check, and print a summary."""
    with friendly_errors():  # before torch loads
        existing_folder(run_dir, "RUN_DIR", "run directory of `kolmo train`")
        writable_output(out, "--out")
    from closure.export import export_closure

    with friendly_errors():
        res = export_closure(run_dir, out, steps=steps, sampler=sampler, device=device, dtype=dtype, format=format_,
                             checkpoint=checkpoint)
        meta = res.metadata
        table = Table(title=f"kolmo export — {res.path}")
        table.add_column("quantity")
        table.add_column("value", justify="right")
        table.add_row("family / regularizer", f"{meta['family']} / {meta['regularizer']}")
        table.add_row("sampler, steps, NFE", f"{meta['sampler']}, {meta['steps']}, {meta['nfe']}")
        table.add_row("grid, dtype, device", f"{meta['grid']}², {meta['dtype']}, {meta['device']}")
        for name, (diff, bound) in res.checks.items():
            table.add_row(f"self-check max |{name} − eager|", f"{diff:.3g} (bound {bound:.3g})")
        table.add_row("FLOPs per sample", f"{meta['flops_per_sample']:.3g}")
        table.add_row("parameters", f"{meta['parameters']['total']:,}")
        if latency:
            import torch

            from coupling.bench import time_artifact

            (lat,) = time_artifact(res.path, [1], device=device, dtype=dtype, repeat=30, warmup=3)
            table.add_row("latency, batch 1", f"{lat.median_ms:.3g} ms median ({torch.get_num_threads()} threads, "
                                              f"{device}, {dtype})")
        table.add_row("export + check (s)", f"{res.seconds:.2f}")
        console.print(table)
