"""Typed errors of closure training, evaluation and export.

Each subclasses :class:`kolmo.errors.KolmoError` (so ``kolmo train|evaluate|export`` print them as one
clean line) and a matching builtin, and its message names the offending value and what was expected.
:class:`DeviceError` is the one of :mod:`coupling.errors` (raised by
:func:`coupling.artifact.resolve_device`, shared by training, export and coupling).
"""

from __future__ import annotations

from coupling.errors import DeviceError
from kolmo.errors import EXIT_BAD_INPUT, ConfigurationError, FileFormatError, KolmoError, OutputExistsError

__all__ = [
    "ConfigurationError",
    "FileFormatError",
    "OutputExistsError",
    "DeviceError",
    "CheckpointError",
    "CheckpointMismatchError",
    "ExportError",
    "ExportCheckError",
    "AOTIUnavailableError",
]


class CheckpointError(KolmoError, ValueError):
    """A run directory or checkpoint is missing, unreadable or not a ``kolmo`` training checkpoint."""

    exit_code = EXIT_BAD_INPUT


class CheckpointMismatchError(CheckpointError):
    """A checkpoint belongs to another model family, configuration or dataset than the one asked for."""


class ExportError(KolmoError, RuntimeError):
    """A closure artifact could not be built or written."""


class ExportCheckError(ExportError):
    """The saved artifact failed its self-check (reload and compare with the eager model); not kept."""


class AOTIUnavailableError(ExportError):
    """``--format aoti``: torch.export / AOTInductor cannot compile the closure here."""
