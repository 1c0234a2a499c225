"""``kolmo info``: describe a run file, dataset file or closure artifact."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.table import Table

from cli.common import console, friendly_errors
from cli.preflight import artifact_input


def info(path: Path = typer.Argument(..., help="A run/dataset .h5 file, a closure artifact (.pt TorchScript, .pt2 AOTInductor), or a shipped closure name (dong2026-default).")) -> None:
    """Print attributes and contents."""
    with friendly_errors():
        if not path.exists() and path.suffix == "" and str(path).lower() in ("dong2026-default",):
            from coupling.online import SHIPPED_CLOSURES

            path = SHIPPED_CLOSURES[str(path).lower()]
        if path.suffix in (".pt", ".pt2"):
            artifact_input(path, "PATH")  # before torch loads
            from coupling.artifact import artifact_reader, read_metadata  # torch only when asked

            meta = read_metadata(path)
            table = Table(title=f"closure artifact {path} (format {artifact_reader(path).name})")
            table.add_column("key")
            table.add_column("value")
            for k, v in meta.items():
                table.add_row(k, json.dumps(v) if not isinstance(v, str) else v)
            console.print(table)
            return
        from kolmo.io import open_run

        with open_run(path) as h5:
            table = Table(title=f"{path} ({h5.attrs.get('format', 'unknown format')})")
            table.add_column("attribute")
            table.add_column("value", overflow="fold")
            for k, v in sorted(h5.attrs.items()):
                text = v if isinstance(v, str) else repr(v)
                if isinstance(v, str) and v.startswith("{"):
                    try:
                        text = json.dumps(json.loads(v), indent=1)
                    except json.JSONDecodeError:
                        pass
                table.add_row(k, text)
            console.print(table)
            ds = Table(title="datasets")
            for c in ("name", "shape", "dtype", "units"):
                ds.add_column(c)

            def visit(name: str, obj) -> None:  # noqa: ANN001
                if hasattr(obj, "shape"):
                    ds.add_row(name, str(obj.shape), str(obj.dtype), str(obj.attrs.get("units", "")))

            h5.visititems(visit)
            console.print(ds)
