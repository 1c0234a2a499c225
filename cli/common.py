"""Shared CLI plumbing: one console; the error boundary (:mod:`cli.errors`) re-exported."""

from __future__ import annotations

import json
from typing import Any

from rich.console import Console

from cli.errors import err_console, friendly_errors  # noqa: F401 - re-exported for the commands

console = Console(stderr=False)


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
