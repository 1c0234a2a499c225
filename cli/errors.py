"""The CLI's error boundary: every failure a user can cause ends as one line and a documented exit status.

Exit statuses (also in ``kolmo --help`` and the README; the numbers live in :mod:`kolmo.errors`):

====  ==========================================================================================
0     success
1     a bug: an unexpected exception, shown with its traceback so that it can be reported
2     usage error: an option is invalid, out of range, non-finite, malformed, or does not apply
3     bad input: a file or path named on the command line is missing, unreadable, corrupt, of the
      wrong kind or for another grid/preset, or cannot be written (permissions, parent is a file)
4     runtime failure: the job was valid but failed or cannot run here (blow-up, non-finite
      output, failed self-check, not enough memory or disk space; also a ``MemoryError``)
130   interrupted (Ctrl-C / SIGINT); unfinished outputs are left only under temporary names
====  ==========================================================================================

:func:`friendly_errors` is the boundary (a context manager); :func:`guard` wraps a command function
in it, and :func:`guard_app` wraps every command of a typer app (``cli.main`` does this once, so
no command can escape it). :func:`run_app` runs the app so that command-line parsing errors are
one line as well.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import re
import signal
import sys
import threading
from typing import Any, Callable, Iterator, NoReturn, Optional

import typer
from rich.console import Console
from rich.markup import escape

from kolmo.errors import EXIT_INTERRUPTED, EXIT_USAGE, KolmoError, PathError, ResourceError

err_console = Console(stderr=True, soft_wrap=True, highlight=False)

EXIT_EPILOG = ("Exit status: 0 success; 2 usage error (an option is invalid, out of range or does not apply); "
               "3 bad input (a named file or path is missing, corrupt, of the wrong kind, or not writable); "
               "4 runtime failure (blow-up, non-finite output, not enough memory or disk); 130 interrupted (Ctrl-C). "
               "Status 1 with a traceback is a bug: please report it.")

_PATH_ERRNOS = {
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.EEXIST: "already exists",
    errno.EISDIR: "is a folder, a file was expected",
    errno.ENOTDIR: "a parent of it is not a folder",
    errno.ENOENT: "no such file or folder",
    errno.EROFS: "read-only file system",
    errno.ENAMETOOLONG: "file name too long",
    errno.ELOOP: "too many symbolic links",
}
_FULL_ERRNOS = {errno.ENOSPC: "no space left on device", errno.EDQUOT: "disk quota exceeded"}
_H5_NAME = re.compile(r"name = '([^']*)'.*?errno = (\d+)")


def translate_os_error(exc: OSError) -> Optional[KolmoError]:
    """The typed error of an OS error on a path (or a full disk), or ``None`` when it is not one.

    ``PermissionError``, ``FileExistsError``, ``IsADirectoryError``, ``NotADirectoryError``,
    ``FileNotFoundError``, a read-only file system or a too long name that name a path become
    :class:`~kolmo.errors.PathError`; ``ENOSPC``/``EDQUOT`` become :class:`~kolmo.errors.ResourceError`.
    h5py's ``OSError`` messages (``name = '...', errno = N``) are read the same way.
    """
    code, filename = exc.errno, exc.filename
    if code is None:
        m = _H5_NAME.search(str(exc))
        if m:
            filename, code = m.group(1), int(m.group(2))
    if code in _FULL_ERRNOS:
        where = f" while writing {filename}" if filename else ""
        return ResourceError(f"{_FULL_ERRNOS[code]}{where}; free space or choose another output folder "
                             "(no complete-looking file was left)")
    if code in _PATH_ERRNOS and filename:
        other = f" → {exc.filename2}" if getattr(exc, "filename2", None) else ""
        return PathError(f"cannot use path {str(filename)!r}{other}: {_PATH_ERRNOS[code]}; expected a readable "
                         "input file or a writable output location")
    return None


def report(exc: KolmoError) -> int:
    """Print ``error: Type: message`` on one line (stderr) and return the exit status of ``exc``."""
    message = escape(" ".join(str(exc).split()))  # one line, whatever the message holds
    err_console.print(f"[bold red]error[/]: {type(exc).__name__}: {message}", highlight=False, soft_wrap=True)
    return int(getattr(exc, "exit_code", 4))


@contextlib.contextmanager
def friendly_errors() -> Iterator[None]:
    """The error boundary: a :class:`~kolmo.errors.KolmoError` (or an OS error on a path, translated)
    prints one line and exits with its status; Ctrl-C exits 130; anything else propagates (a bug,
    with its traceback). Nesting is harmless."""
    try:
        yield
    except KolmoError as exc:
        raise typer.Exit(report(exc)) from None
    except KeyboardInterrupt:
        _exit_interrupted()
    except MemoryError as exc:  # the estimate of kolmo.resources was too low, or memory was taken meanwhile
        raise typer.Exit(report(ResourceError(f"out of memory ({exc or 'allocation failed'}); use a smaller grid, "
                                              "fewer members or a smaller batch"))) from None
    except OSError as exc:
        if caused_by_interrupt(exc):
            _exit_interrupted()
        typed = translate_os_error(exc)
        if typed is None:
            raise
        raise typer.Exit(report(typed)) from None
    except typer.Exit:  # a nested boundary already reported (click's Exit is a RuntimeError)
        raise
    except Exception as exc:
        if caused_by_interrupt(exc):
            _exit_interrupted()
        raise


def _exit_interrupted() -> NoReturn:
    err_console.print("[yellow]interrupted[/]: no unfinished output was left under its final name "
                      "(resumable work stays in *.partial)")
    raise typer.Exit(EXIT_INTERRUPTED) from None


def caused_by_interrupt(exc: BaseException) -> bool:
    """Whether ``exc`` is Ctrl-C in disguise: a ``KeyboardInterrupt`` raised inside a library call that
    reported it as another error (numba's dispatcher: ``SystemError: CPUDispatcher(...) returned a result
    with an exception set``, with the interrupt as its cause), after a SIGINT was received."""
    if not _interrupted.is_set():
        return False
    seen: set[int] = set()
    cur: Optional[BaseException] = exc
    while cur is not None and id(cur) not in seen:
        if isinstance(cur, KeyboardInterrupt):
            return True
        seen.add(id(cur))
        cur = cur.__cause__ if cur.__cause__ is not None else (None if cur.__suppress_context__ else cur.__context__)
    return False


def guard(command: Callable[..., Any]) -> Callable[..., Any]:
    """``command`` run inside :func:`friendly_errors` (same signature, for typer)."""
    if getattr(command, "__kolmo_guarded__", False):
        return command

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with friendly_errors():
            return command(*args, **kwargs)

    wrapper.__kolmo_guarded__ = True  # type: ignore[attr-defined]
    return wrapper


def guard_app(app: typer.Typer) -> typer.Typer:
    """Wrap every command of ``app`` and of its sub-apps in :func:`guard`; returns ``app``."""
    for info in app.registered_commands:
        if info.callback is not None:
            info.callback = guard(info.callback)
    for group in app.registered_groups:
        if group.typer_instance is not None:
            guard_app(group.typer_instance)
    return app


_interrupted = threading.Event()


def _on_sigint(signum: int, frame: Any) -> None:
    _interrupted.set()
    raise KeyboardInterrupt


def _quiet_unraisable(hook: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """``sys.unraisablehook`` that drops a ``KeyboardInterrupt`` of a received SIGINT (one that landed in a
    ``__del__`` or a weakref callback, where Python can only print it, traceback and all): it is remembered,
    and :func:`check_interrupt` raises it at the next safe point."""

    def quiet(unraisable: Any) -> Any:
        if isinstance(unraisable.exc_value, KeyboardInterrupt) and _interrupted.is_set():
            return None
        return hook(unraisable)

    quiet.__kolmo_quiet__ = True  # type: ignore[attr-defined]
    return quiet


def install_interrupt_handler() -> None:
    """SIGINT raises ``KeyboardInterrupt`` as usual and is also remembered, so :func:`check_interrupt`
    can raise it again where a first one was swallowed (an interrupt landing in a ``__del__`` or a
    library callback would be printed as "Exception ignored" with a traceback, and lost: such a report
    is dropped instead, see :func:`_quiet_unraisable`). Main thread only."""
    if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
        signal.signal(signal.SIGINT, _on_sigint)
        if not getattr(sys.unraisablehook, "__kolmo_quiet__", False):
            sys.unraisablehook = _quiet_unraisable(sys.unraisablehook)


def check_interrupt() -> None:
    """Raise ``KeyboardInterrupt`` if Ctrl-C was pressed (call it at safe points: progress callbacks)."""
    if _interrupted.is_set():
        raise KeyboardInterrupt


def run_app(app: typer.Typer, args: Optional[list[str]] = None) -> int:
    """Run ``app`` like a console script, with command-line parsing errors as one line
    (``error: usage: ...``, exit 2) instead of a framed panel; returns the exit status."""
    install_interrupt_handler()
    try:
        result = app(args=args, standalone_mode=False)
    except typer.Exit as exc:  # pragma: no cover - typer returns these in non-standalone mode
        return int(exc.exit_code)
    except typer.TyperException as exc:  # click's usage errors (ClickException derives from it)
        show = getattr(exc, "format_message", None)
        if show is None or not hasattr(exc, "exit_code"):
            raise
        ctx = getattr(exc, "ctx", None)
        if type(exc).__name__ == "NoArgsIsHelpError" and ctx is not None:
            print(ctx.get_help())
            return EXIT_USAGE
        where = f" (see {ctx.command_path} --help)" if ctx is not None else ""
        message = escape(" ".join(str(show()).split()))
        err_console.print(f"[bold red]error[/]: usage: {message}{where}", highlight=False, soft_wrap=True)
        return int(exc.exit_code)
    except KeyboardInterrupt:  # pragma: no cover - interrupted while parsing
        return EXIT_INTERRUPTED
    return int(result) if isinstance(result, int) else 0


def main(app: typer.Typer) -> None:  # pragma: no cover - console script
    """Exit the process with :func:`run_app`'s status."""
    sys.exit(run_app(app))
