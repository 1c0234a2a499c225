"""``kolmo train --nproc N``: run the same command under ``torchrun`` with ``N`` processes.

The command launched is exactly::

    python -m torch.distributed.run --nproc-per-node N -m cli.main train <the options given, without --nproc>

(:func:`torchrun_command`), in a child process in a session of its own; its exit status is returned.
Ctrl-C reaches this process only, which passes one SIGINT on to torchrun (torchrun passes it on to its
workers, which stop, and exits); torchrun gets :data:`STOP_GRACE_S` seconds for that, then SIGTERM, then
SIGKILL, so no training process outlives the command.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from typing import Any, Iterable

__all__ = ["command_line", "torchrun_command", "run_torchrun", "STOP_GRACE_S"]

STOP_GRACE_S = 20.0
"""Seconds torchrun is given to stop its workers after an interrupt, before SIGTERM (then SIGKILL)."""


def command_line(ctx: Any, drop: Iterable[str] = ()) -> list[str]:
    """The options the user gave to the command of ``ctx`` (a typer/click context; not the defaults), as
    command-line words in the command's option order, leaving out the parameters named in ``drop``."""
    dropped = set(drop)
    words: list[str] = []
    for param in ctx.command.params:
        name = param.name or ""
        if name in dropped or getattr(param, "param_type_name", "") != "option":
            continue
        source = ctx.get_parameter_source(name)
        if source is None or getattr(source, "name", "") in ("DEFAULT", "DEFAULT_MAP"):
            continue
        value: Any = ctx.params.get(name)
        if param.is_flag and param.secondary_opts:  # --x/--no-x
            words.append(param.opts[0] if value else param.secondary_opts[0])
        elif param.is_flag:
            if value:
                words.append(param.opts[0])
        elif value is not None:
            words += [_long(param.opts), str(value)]
    return words


def _long(opts: list[str]) -> str:
    return next((o for o in opts if o.startswith("--")), opts[0])


def torchrun_command(nproc: int, args: list[str], command: str = "train") -> list[str]:
    """``python -m torch.distributed.run --nproc-per-node N -m cli.main COMMAND ARGS`` (this interpreter)."""
    return [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(nproc), "-m", "cli.main", command,
            *args]


def run_torchrun(command: list[str]) -> int:
    """Run ``command`` (from :func:`torchrun_command`) and return its exit status.

    Raises
    ------
    KeyboardInterrupt
        After Ctrl-C, once torchrun and its workers have stopped.
    """
    proc = subprocess.Popen(command, start_new_session=True)
    try:
        return proc.wait()
    except KeyboardInterrupt:
        _stop(proc)
        raise


def _stop(proc: subprocess.Popen) -> None:
    """SIGINT to torchrun (it passes it on to its workers), then SIGTERM and SIGKILL to its whole process
    group (torchrun and the workers), until torchrun has exited."""
    for sig, wait in ((signal.SIGINT, STOP_GRACE_S), (signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
        if proc.poll() is not None:
            return
        try:
            if sig == signal.SIGINT:
                proc.send_signal(sig)
            else:
                os.killpg(proc.pid, sig)
            proc.wait(timeout=wait)
            return
        except (subprocess.TimeoutExpired, ProcessLookupError):
            continue
        except KeyboardInterrupt:  # a second Ctrl-C: go on to the next, harder signal
            continue
