"""The closed set of typed errors raised by :mod:`coupling`.

Every error derives from :class:`kolmo.errors.KolmoError` (so ``kolmo`` prints it as one clean
line) and from the matching ``kolmo`` category, so code that already catches, say,
:class:`kolmo.errors.ShapeError` also catches a closure's shape error. Every message names the
offending value and what was expected.

==========================  ==========================  =================================================
error                       also a                      raised when
==========================  ==========================  =================================================
ArtifactFormatError         FileFormatError             an artifact is missing, corrupt, foreign, of an
                                                        unsupported format version, lacks a metadata
                                                        key or a contract method, or fails its probe
DatasetFormatError          FileFormatError             a dataset file for :class:`ReplayClosure` lacks
                                                        a split, dataset, trajectory or attribute
GridMismatchError           ShapeError                  closure grid N or domain side L differ from the
                                                        solver's
PresetMismatchError         ConfigurationError          closure preset differs from the solver's
TargetMismatchError         ConfigurationError          closure target (``missing-physics``/``sgs``)
                                                        does not fit the equation (advection off/on),
                                                        or two composed closures have different targets
ClosureShapeError           ShapeError                  a closure returned an array of the wrong shape
DtypeError                  ConfigurationError          an unsupported dtype was asked for, or a closure
                                                        returned the wrong dtype
DeviceError                 ConfigurationError          a device was asked for that is absent or unknown
                                                        (never a silent CPU fallback)
NonFiniteClosureError       NonFiniteError              a closure returned NaN/inf under the ``raise``
                                                        policy
ReplayRangeError            ConfigurationError          a replayed run asks for a time outside the
                                                        stored records
==========================  ==========================  =================================================
"""

from __future__ import annotations

from kolmo.errors import EXIT_BAD_INPUT, ConfigurationError, FileFormatError, KolmoError, NonFiniteError, ShapeError

__all__ = [
    "CouplingError",
    "ArtifactFormatError",
    "DatasetFormatError",
    "GridMismatchError",
    "PresetMismatchError",
    "TargetMismatchError",
    "ClosureShapeError",
    "DtypeError",
    "DeviceError",
    "NonFiniteClosureError",
    "ReplayRangeError",
]


class CouplingError(KolmoError):
    """Base class of every error raised on purpose by :mod:`coupling`."""


class ArtifactFormatError(CouplingError, FileFormatError):
    """A closure artifact is missing, corrupt, foreign, or breaks the artifact contract."""


class DatasetFormatError(CouplingError, FileFormatError):
    """A dataset file does not hold what a replayed closure needs."""


class GridMismatchError(CouplingError, ShapeError):
    """The closure's grid (N or L) differs from the solver's."""


class PresetMismatchError(CouplingError, ConfigurationError):
    """The closure was made for another preset than the solver runs."""

    exit_code = EXIT_BAD_INPUT


class TargetMismatchError(CouplingError, ConfigurationError):
    """The closure's target does not fit the equation being solved."""

    exit_code = EXIT_BAD_INPUT


class ClosureShapeError(CouplingError, ShapeError):
    """A closure returned an array of the wrong shape."""


class DtypeError(CouplingError, ConfigurationError):
    """An unsupported dtype was requested, or a closure returned the wrong dtype."""


class DeviceError(CouplingError, ConfigurationError):
    """The requested device is absent or unknown."""


class NonFiniteClosureError(CouplingError, NonFiniteError):
    """A closure returned NaN or infinity (``nonfinite="raise"`` policy)."""


class ReplayRangeError(CouplingError, ConfigurationError):
    """A replayed closure was asked for a time its dataset does not cover."""
