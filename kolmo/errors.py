"""Typed errors raised by the solver.

Every error names the offending value and what was expected, so a user can fix the input
without reading the code. All derive from :class:`KolmoError`.
"""

from __future__ import annotations


class KolmoError(Exception):
    """Base class of every error raised on purpose by ``kolmo``."""


class ConfigurationError(KolmoError, ValueError):
    """An option or parameter has an invalid value (unknown name, wrong sign, bad combination)."""


class ShapeError(KolmoError, ValueError):
    """An array has the wrong shape or grid size for the solver it is given to."""


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
        self.step, self.time, self.member, self.reason = step, time, member, reason
        msg = f"simulation blew up at step {step} (t = {time:.6g}), member {member}: {reason}"
        if detail:
            msg += f" ({detail})"
        super().__init__(msg)


class OutputExistsError(KolmoError, FileExistsError):
    """The output file already exists and overwriting was not asked for."""


class FileFormatError(KolmoError, ValueError):
    """A file is missing, unreadable, truncated or not of the expected kind."""


class MissingDependencyError(KolmoError, ImportError):
    """An optional dependency is needed for what was asked (the message names the ``pip install``)."""
