"""Typed errors raised by the solver.

Every error names the offending value and what was expected, so a user can fix the input
without reading the code. All derive from :class:`KolmoError`.

Each class carries the exit status the ``kolmo`` command ends with when it reports the error
(``exit_code``; the CLI's error boundary, :mod:`cli.errors`, reads it):

========================  ====  ===========================================================
constant                  code  meaning
========================  ====  ===========================================================
:data:`EXIT_USAGE`        2     an option is invalid, out of range, or does not apply (also
                                every command-line parsing error)
:data:`EXIT_BAD_INPUT`    3     a file or path the user named is missing, unreadable,
                                corrupt, of the wrong kind or for another grid/preset, or
                                cannot be written
:data:`EXIT_RUNTIME`      4     the job was valid but failed or cannot run here: blow-up,
                                non-finite values, failed self-check, not enough memory or
                                disk
:data:`EXIT_INTERRUPTED`  130   interrupted (Ctrl-C / SIGINT)
========================  ====  ===========================================================

Exit status 1 with a traceback is reserved for bugs (an exception that is not a ``KolmoError``).
"""

from __future__ import annotations

EXIT_USAGE = 2
EXIT_BAD_INPUT = 3
EXIT_RUNTIME = 4
EXIT_INTERRUPTED = 130


class KolmoError(Exception):
    """Base class of every error raised on purpose by ``kolmo``.

    ``exit_code`` is the status of the ``kolmo`` command that reports it (:data:`EXIT_RUNTIME`
    unless a subclass says otherwise).
    """

    exit_code: int = EXIT_RUNTIME


class ConfigurationError(KolmoError, ValueError):
    """An option or parameter has an invalid value (unknown name, wrong sign, bad combination)."""

    exit_code = EXIT_USAGE


class ShapeError(KolmoError, ValueError):
    """An array has the wrong shape or grid size for the solver it is given to."""

    exit_code = EXIT_BAD_INPUT


class NonFiniteError(KolmoError, FloatingPointError):
    """A field holds NaN or infinity where finite values are required."""


class BlowUpError(KolmoError, RuntimeError):
    """The simulation became unstable (non-finite state or CFL above the limit).

    Attributes
    ----------
    step, time, member
        Where it happened: the step index, the simulated time and the first bad member.
    reason
        ``"non-finite"`` or ``"cfl"``.
    """

    def __init__(self, step: int, time: float, member: int, reason: str, detail: str = "") -> None:
        self.step, self.time, self.member, self.reason, self.detail = step, time, member, reason, detail
        msg = f"simulation blew up at step {step} (t = {time:.6g}), member {member}: {reason}"
        if detail:
            msg += f" ({detail})"
        super().__init__(msg)

    def __reduce__(self) -> tuple:
        """Picklable with its fields (it crosses process boundaries from Dask workers)."""
        return type(self), (self.step, self.time, self.member, self.reason, self.detail)


class OutputExistsError(KolmoError, FileExistsError):
    """The output file already exists and overwriting was not asked for."""

    exit_code = EXIT_USAGE


class FileFormatError(KolmoError, ValueError):
    """A file is missing, unreadable, truncated or not of the expected kind."""

    exit_code = EXIT_BAD_INPUT


class PathError(KolmoError, OSError):
    """A path the user named cannot be used: no permission, a parent is a regular file, a folder
    where a file is expected (or the reverse), a read-only file system. Names the path."""

    exit_code = EXIT_BAD_INPUT


class ResourceError(KolmoError, RuntimeError):
    """The job does not fit this machine: its estimated memory exceeds the available memory, or its
    output exceeds the free disk space (or the disk filled up while writing). Names both numbers."""

    exit_code = EXIT_RUNTIME


class OptionalDependencyError(KolmoError, ImportError):
    """An optional extra (e.g. matplotlib for figures, ``pip install kolmo[plots]``) is not installed.

    A valid job that cannot run in this environment: :data:`EXIT_RUNTIME`."""

    exit_code = EXIT_RUNTIME
