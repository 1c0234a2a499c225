"""Coupling: plug any closure into the ``kolmo`` solver, once per step.

Imports ``kolmo`` and ``torch`` (never ``closure``): a user holding only an exported artifact
file can run it. Torch is imported only when an artifact is used.

Public API
----------
:mod:`coupling.protocol`        :class:`Closure` (call with a :class:`kolmo.simulation.CoarseState`,
                                get a ``(B, N, N)`` vorticity tendency), :class:`NoClosure`,
                                :class:`SumClosure`, :class:`ScaledClosure` (``a + b``, ``c * a``)
:mod:`coupling.eddy_viscosity`  :class:`Smagorinsky`, :class:`Leith`
:mod:`coupling.learned`         :class:`ArtifactClosure` (torch)
:mod:`coupling.replay`          :class:`ReplayClosure` (the true closure from a dataset file)
:mod:`coupling.artifact`        the artifact contract; :func:`read_metadata`, :func:`load_artifact`,
                                :func:`write_artifact` (torch)
:mod:`coupling.aoti`            AOTInductor ``.pt2`` packages read for :func:`load_artifact` (torch)
:mod:`coupling.online`          ``--closure`` specs, equation from the closure's target, the paper's
                                online protocol (:func:`prepare_run`)
:mod:`coupling.errors`          the closed set of typed errors

Offline measurement lives apart from the live boundary: :mod:`coupling.bench` (``kolmo bench
closures|coupled``; torch). The evaluation of online runs needs no torch and lives in
:mod:`kolmo.evaluation`.
"""

from __future__ import annotations

from typing import Any

from coupling.eddy_viscosity import Leith, Smagorinsky
from coupling.errors import (ArtifactFormatError, ClosureShapeError, CouplingError, DatasetFormatError,
                             DeviceError, DtypeError, GridMismatchError, NonFiniteClosureError,
                             PresetMismatchError, ReplayRangeError, TargetMismatchError)
from coupling.protocol import Closure, NoClosure, ScaledClosure, SumClosure
from coupling.replay import ReplayClosure

__all__ = [
    "Closure", "NoClosure", "SumClosure", "ScaledClosure", "Smagorinsky", "Leith", "ReplayClosure",
    "ArtifactClosure", "read_metadata", "load_artifact", "write_artifact",
    "CouplingError", "ArtifactFormatError", "DatasetFormatError", "GridMismatchError", "PresetMismatchError",
    "TargetMismatchError", "ClosureShapeError", "DtypeError", "DeviceError", "NonFiniteClosureError",
    "ReplayRangeError",
]

_TORCH = {"ArtifactClosure": "coupling.learned", "read_metadata": "coupling.artifact",
          "load_artifact": "coupling.artifact", "write_artifact": "coupling.artifact"}


def __getattr__(name: str) -> Any:  # PEP 562: import torch only when an artifact name is used
    if name in _TORCH:
        import importlib

        return getattr(importlib.import_module(_TORCH[name]), name)
    raise AttributeError(f"module 'coupling' has no attribute {name!r}")
