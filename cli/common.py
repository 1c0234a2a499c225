"""Shared CLI plumbing: one console, typed errors turned into clean one-line messages."""

from __future__ import annotations

import contextlib
import json
from typing import Any, Iterator

import typer
from rich.console import Console

from kolmo.errors import KolmoError

console = Console(stderr=False)
err_console = Console(stderr=True, soft_wrap=True)


@contextlib.contextmanager
def friendly_errors() -> Iterator[None]:
    """Print a typed error as ``error: message`` and exit with code 2 (no traceback)."""
    try:
        yield
    except KolmoError as exc:
        err_console.print(f"[bold red]error[/]: {type(exc).__name__}: {exc}")
        raise typer.Exit(2) from None
    except KeyboardInterrupt:
        err_console.print("[yellow]interrupted[/]: partial results kept; rerun with --resume to continue")
        raise typer.Exit(130) from None


def parse_sets(items: list[str] | None) -> dict[str, Any]:
    """``KEY=VALUE`` pairs (VALUE parsed as JSON when it can be) into a dict."""
    from kolmo.errors import ConfigurationError

    out: dict[str, Any] = {}
    for item in items or []:
        if "=" not in item:
            raise ConfigurationError(f"--set expects KEY=VALUE, got {item!r}")
        key, value = item.split("=", 1)
        try:
            out[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            out[key.strip()] = value
    return out
