r"""The closure artifact contract (normative), and its reader, loader and checker.

This docstring is the specification that ``closure/export.py`` writes to and
:class:`coupling.learned.ArtifactClosure` (or any C++/Fortran host) reads from. A user holding
only the artifact file and ``torch`` can run it: nothing of this project is imported to load it.

File
----
Two formats, one contract, dispatched by file suffix (:data:`READERS`):

- ``*.pt`` (any suffix but ``.pt2``): a TorchScript archive written by ``torch.jit.save``. The
  format of C++ (libtorch) and Fortran hosts (FTorch, TorchFort load only TorchScript).
- ``*.pt2``: an AOTInductor package (``kolmo export --format aoti``; layout in :mod:`coupling.aoti`):
  ``sample(omega, noise)`` compiled ahead of time by ``torch.export`` and AOTInductor for one device
  and dtype with a dynamic batch, and the same ``metadata.json`` as the archive's extra file
  ``extra/metadata.json``. Python hosts load it with
  ``torch._C._aoti.AOTIModelPackageLoader(path, "model", False, 1, -1).boxed_run([omega, noise])[0]``
  (or ``torch._inductor.aoti_load_package(path)(omega, noise)``), C++ hosts with
  ``torch::inductor::AOTIModelPackageLoader`` (``examples/cpp/run_closure_aoti.cpp``).

:func:`load_artifact` is the one loader: the closure of a run, the export self-check and the
benchmarks all read artifacts through it, and it gives both formats the same module interface.

Methods of the saved module (shapes: ``B`` members, ``N`` grid points per side)
------------------------------------------------------------------------------
``forward(omega: Tensor[B, N, N]) -> Tensor[B, N, N]``
    One closure sample per member; the noise is drawn inside, on ``omega``'s device and dtype
    (with the global torch RNG).
``sample(omega: Tensor[B, N, N], noise: Tensor) -> Tensor[B, N, N]``
    The same with the noise given explicitly (standard normal, shape ``noise_shape(B)``):
    reproducible, and the signature ``torch.export``/AOTI can take.
``noise_shape(batch: int) -> List[int]``
    The shape of ``noise`` for a batch, e.g. ``[B, 1, 16, 16]`` for one-step latent flow
    matching, ``[n_steps + 1, B, C, n, n]`` for samplers that also draw per-step noise.

Units and dtypes: ``omega`` is the **physical vorticity** on the solver's grid (1/time), the
output is the **vorticity tendency** ``H`` in solver units (1/time²) on the same grid;
normalisation and de-normalisation live inside the artifact. Each member is its own sample
(members are never averaged). Outputs have the dtype and device of ``omega``; a TorchScript
module must also run after ``.to(torch.float64)`` (an AOTI package runs in its compiled dtype only).

Metadata
--------
An extra file ``metadata.json`` of the archive, holding a JSON object with at least the keys below
(:data:`REQUIRED_METADATA`). TorchScript: ``torch.jit.save(m, path, _extra_files={"metadata.json": text})``,
read back with ``extra = {"metadata.json": ""}; torch.jit.load(path, _extra_files=extra)``. AOTI:
the archive's ``extra/metadata.json`` (``package_pt2(..., extra_files={"metadata.json": text})``), with
``noise_dims``, ``batch_range`` and ``format_variant`` besides (:mod:`coupling.aoti`).

=====================  ========================================================================
key                    value
=====================  ========================================================================
format                 ``"kolmo-closure"``
format_version         ``2`` (``1`` is read; its ``missing-physics`` is ``missing-physics-noisy``)
preset                 solver preset it was trained on (``"dong2026"``, ``"kolmogorov"``)
target                 a name of :data:`kolmo.targets.TARGETS`: ``"missing-physics"`` (H replaces
                       advection: advection off, the solver draws the noise),
                       ``"missing-physics-noisy"`` (H holds advection and noise: both off),
                       ``"sgs"`` / ``"sgs-resolved"`` (subgrid term of an LES: advection on)
grid                   N (int): the coarse grid the closure acts on
L                      domain side
dt                     solver Δt of the training data
family                 model family (e.g. ``"latent-fm"``, ``"physical-fm"``, ``"diffusion"``)
regularizer            latent regularizer (``"none"``, ``"mp"``, ``"ga"``, ``"joint"``, or ``null``)
nfe                    network evaluations per sample (int)
dtype                  dtype it was exported in (``"float32"``/``"float64"``)
normalisation          JSON object describing the normalisation folded into the module
dataset_fingerprint    fingerprint of the training dataset
run_id                 training-run identifier
torch_version          ``torch.__version__`` at export
created                ISO-8601 UTC time of export
=====================  ========================================================================

Further keys are allowed and kept. Readers must reject another ``format`` or a
``format_version`` they do not know (:class:`~coupling.errors.ArtifactFormatError`).
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch

from coupling.aoti import aoti_metadata_text, open_aoti
from coupling.errors import ArtifactFormatError, ClosureShapeError, DeviceError, DtypeError
from kolmo.targets import TARGETS, read_target

__all__ = ["FORMAT", "FORMAT_VERSION", "METADATA_FILE", "REQUIRED_METADATA", "DTYPES", "LoadedArtifact",
           "ArtifactReader", "READERS", "artifact_reader", "read_metadata", "validate_metadata", "load_artifact",
           "check_contract", "resolve_device", "resolve_dtype", "write_artifact"]

log = logging.getLogger(__name__)

FORMAT = "kolmo-closure"
FORMAT_VERSION = 2
READABLE_VERSIONS = (1, 2)
"""Version 1 artifacts are read too: their ``missing-physics`` means ``missing-physics-noisy`` now
(:func:`kolmo.targets.read_target`)."""
METADATA_FILE = "metadata.json"
REQUIRED_METADATA = ("format", "format_version", "preset", "target", "grid", "L", "dt", "family", "regularizer",
                     "nfe", "dtype", "normalisation", "dataset_fingerprint", "run_id", "torch_version", "created")
ARTIFACT_TARGETS = tuple(TARGETS)
DTYPES = {"float32": torch.float32, "float64": torch.float64}
METHODS = ("forward", "sample", "noise_shape")


# ---------------------------------------------------------------------- device and dtype
def resolve_device(device: str | torch.device) -> torch.device:
    """``device`` as a :class:`torch.device`, or :class:`DeviceError` if it is unknown or absent.

    Never falls back to the CPU: ``"cuda"`` without a visible GPU is an error.
    """
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise DeviceError(f"unknown device {device!r} ({exc}); expected cpu, cuda or cuda:K") from None
    if dev.type == "cpu":
        return dev
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise DeviceError(f"device {device!r} was asked for but torch.cuda.is_available() is False "
                              f"(torch {torch.__version__}); expected a visible CUDA GPU (no CPU fallback)")
        count = torch.cuda.device_count()
        if dev.index is not None and dev.index >= count:
            raise DeviceError(f"device {device!r} was asked for but only {count} CUDA device(s) are visible")
        return dev
    raise DeviceError(f"device {device!r} is not supported; expected cpu, cuda or cuda:K")


def resolve_dtype(dtype: str | torch.dtype) -> torch.dtype:
    """``"float32"``/``"float64"`` (or the torch dtypes) as a torch dtype, else :class:`DtypeError`."""
    if isinstance(dtype, torch.dtype):
        if dtype in DTYPES.values():
            return dtype
    elif str(dtype) in DTYPES:
        return DTYPES[str(dtype)]
    raise DtypeError(f"closure dtype {dtype!r} is not supported; expected one of {', '.join(DTYPES)}")


# ---------------------------------------------------------------------- metadata
def validate_metadata(meta: Any, path: str | Path = "<artifact>") -> dict[str, Any]:
    """Check format, version, required keys and their basic types; return ``meta``."""
    if not isinstance(meta, dict):
        raise ArtifactFormatError(f"{path}: {METADATA_FILE} holds {type(meta).__name__}, expected a JSON object")
    if meta.get("format") != FORMAT:
        raise ArtifactFormatError(f"{path}: format {meta.get('format')!r}, expected {FORMAT!r}")
    if meta.get("format_version") not in READABLE_VERSIONS:
        raise ArtifactFormatError(f"{path}: format_version {meta.get('format_version')!r} is not supported; "
                                  f"expected one of {list(READABLE_VERSIONS)}")
    missing = [k for k in REQUIRED_METADATA if k not in meta]
    if missing:
        raise ArtifactFormatError(f"{path}: metadata lacks {missing}; required keys: {list(REQUIRED_METADATA)}")
    meta["target"] = read_target(str(meta["target"]), FORMAT, meta["format_version"])
    if meta["target"] not in ARTIFACT_TARGETS:
        raise ArtifactFormatError(f"{path}: target {meta['target']!r}, expected one of {list(ARTIFACT_TARGETS)}")
    grid = meta["grid"]
    if isinstance(grid, bool) or not isinstance(grid, int) or grid < 4:
        raise ArtifactFormatError(f"{path}: grid {grid!r}, expected the grid size N as an integer >= 4")
    for key in ("L", "dt"):
        v = meta[key]
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0:
            raise ArtifactFormatError(f"{path}: {key} = {v!r}, expected a positive number")
    if meta["dtype"] not in DTYPES:
        raise ArtifactFormatError(f"{path}: dtype {meta['dtype']!r}, expected one of {list(DTYPES)}")
    return meta


def _open_torchscript(p: Path, device: torch.device, dtype: torch.dtype) -> tuple[Any, dict[str, Any]]:
    """A TorchScript artifact's module (on ``device``; ``load_artifact`` sets the dtype) and metadata."""
    extra = {METADATA_FILE: ""}
    try:
        module = torch.jit.load(str(p), map_location=device, _extra_files=extra)
    except Exception as exc:  # noqa: BLE001 - torch raises RuntimeError/ValueError/... for foreign files
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ArtifactFormatError(f"{p} is not a TorchScript archive or is corrupt ({first}); expected a "
                                  "closure artifact written by torch.jit.save") from None
    text = extra[METADATA_FILE]
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    if not text:
        raise ArtifactFormatError(f"{p} has no {METADATA_FILE} extra file: a TorchScript module, but not a "
                                  f"{FORMAT} artifact")
    return module, _parse(text, p)


def _open_aoti(p: Path, device: torch.device, dtype: torch.dtype) -> tuple[Any, dict[str, Any]]:
    """An AOTInductor package's compiled model (:class:`coupling.aoti.AOTIModule`) and metadata."""
    meta = _parse(aoti_metadata_text(p), p)
    return open_aoti(p, meta, device, dtype), meta


@dataclass(frozen=True)
class ArtifactReader:
    """How one artifact file format is read: ``open`` (module on a device/dtype, and the validated
    metadata) and ``metadata`` (the validated metadata alone)."""

    name: str
    open: Callable[[Path, torch.device, torch.dtype], tuple[Any, dict[str, Any]]]
    metadata: Callable[[Path], dict[str, Any]]


TORCHSCRIPT = ArtifactReader("torchscript", _open_torchscript,
                             lambda p: _open_torchscript(p, torch.device("cpu"), torch.float32)[1])
AOTI = ArtifactReader("aoti", _open_aoti, lambda p: _parse(aoti_metadata_text(p), p))
READERS: dict[str, ArtifactReader] = {".pt2": AOTI}
"""File-format readers by suffix; any other suffix is read as TorchScript (:data:`TORCHSCRIPT`).
A reader's module has ``forward``, ``sample`` and ``noise_shape``, and ``to``/``eval``/``parameters``."""


def artifact_reader(path: str | Path) -> ArtifactReader:
    """The reader of an existing artifact file, by suffix (:class:`ArtifactFormatError` if it is missing)."""
    p = Path(path)
    if not p.is_file():
        raise ArtifactFormatError(f"closure artifact {p} does not exist (expected a TorchScript .pt file or an "
                                  "AOTInductor .pt2 package)")
    return READERS.get(p.suffix.lower(), TORCHSCRIPT)


def _parse(text: str, path: str | Path) -> dict[str, Any]:
    try:
        meta = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ArtifactFormatError(f"{path}: {METADATA_FILE} is not valid JSON ({exc})") from None
    return validate_metadata(meta, path)


def read_metadata(path: str | Path) -> dict[str, Any]:
    """The validated metadata of an artifact (used by ``kolmo info CLOSURE.pt``)."""
    return artifact_reader(path).metadata(Path(path))


# ---------------------------------------------------------------------- loading and checking
@dataclass
class LoadedArtifact:
    """A loaded, checked artifact: the scripted module in eval mode on ``device``/``dtype``."""

    path: Path
    module: Any
    metadata: dict[str, Any]
    device: torch.device
    dtype: torch.dtype
    file_format: str = "torchscript"
    """``"torchscript"`` or ``"aoti"`` (:data:`READERS`)."""

    @property
    def grid(self) -> int:
        return int(self.metadata["grid"])


def check_contract(module: Any, n: int, device: torch.device, dtype: torch.dtype, batch: int = 2,
                   path: str | Path = "<artifact>") -> None:
    """Probe the contract: methods present, ``noise_shape`` a list of ints, ``sample`` and
    ``forward`` return ``(batch, n, n)`` tensors of ``dtype`` on ``device``.

    Raises :class:`ArtifactFormatError` (missing method, failing call),
    :class:`ClosureShapeError` or :class:`DtypeError` (wrong output).
    """
    missing = [m for m in METHODS if not hasattr(module, m)]
    if missing:
        raise ArtifactFormatError(f"{path}: the module lacks method(s) {missing}; the contract needs "
                                  f"{list(METHODS)}")
    gen = torch.Generator(device=device)
    gen.manual_seed(0)
    omega = torch.randn((batch, n, n), generator=gen, device=device, dtype=dtype)
    try:
        shape = [int(s) for s in module.noise_shape(batch)]
        noise = torch.randn(shape, generator=gen, device=device, dtype=dtype)
        with torch.inference_mode():
            outputs = {"sample": module.sample(omega, noise), "forward": module.forward(omega)}
    except Exception as exc:  # noqa: BLE001 - anything the scripted code raises
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ArtifactFormatError(f"{path}: probe call on a ({batch}, {n}, {n}) {dtype} field on {device} "
                                  f"failed: {first}") from None
    for method, out in outputs.items():
        check_output(out, (batch, n, n), dtype, device, f"{path}: {method}()")


def check_output(out: Any, shape: tuple[int, ...], dtype: torch.dtype, device: torch.device, who: str) -> None:
    """Raise :class:`ClosureShapeError`/:class:`DtypeError`/:class:`DeviceError` for a wrong output."""
    if not isinstance(out, torch.Tensor):
        raise ArtifactFormatError(f"{who} returned {type(out).__name__}, expected a Tensor")
    if tuple(out.shape) != tuple(shape):
        raise ClosureShapeError(f"{who} returned shape {tuple(out.shape)}, expected {tuple(shape)}")
    if out.dtype != dtype:
        raise DtypeError(f"{who} returned dtype {out.dtype}, expected {dtype} (the input's dtype)")
    if out.device.type != device.type:
        raise DeviceError(f"{who} returned a tensor on {out.device}, expected {device}")


def freeze_for_inference(module: Any, path: str | Path = "<artifact>") -> Any:
    """``torch.jit.freeze`` of a TorchScript artifact already on its device and dtype, keeping the contract's
    methods: weights become constants, attribute reads and the ops on constants alone (the spectral
    layers' block matrices, dtype casts) fold away (benchmarks/RESULTS.md §3 has what it saves). A module that cannot be frozen (one that writes its own attributes, say) is
    returned unchanged, with a log line."""
    try:
        return torch.jit.freeze(module, preserved_attrs=[m for m in METHODS if m != "forward"])
    except Exception as exc:  # noqa: BLE001 - freezing raises RuntimeError and friends for odd modules
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        log.info("closure artifact %s runs unfrozen (torch.jit.freeze failed: %s)", path, first)
        return module


def load_artifact(path: str | Path, device: str | torch.device = "cpu", dtype: str | torch.dtype = "float32",
                  probe: bool = True, freeze: bool = True) -> LoadedArtifact:
    """Load an artifact once: resolve device and dtype (typed errors, no fallback), read and
    validate its metadata, move it to ``device``/``dtype``, eval mode, no gradients, freeze a
    TorchScript module for inference (:func:`freeze_for_inference`; ``freeze=False`` keeps the
    module as saved, with its state dict), and (by default) probe the contract with
    :func:`check_contract`."""
    dev = resolve_device(device)
    dt = resolve_dtype(dtype)
    reader = artifact_reader(path)
    module, meta = reader.open(Path(path), dev, dt)
    try:
        module = module.to(device=dev, dtype=dt)
    except Exception as exc:  # noqa: BLE001
        raise DtypeError(f"{path}: cannot move the module to {dev} / {dt} ({exc})") from None
    module.eval()
    for p in module.parameters():
        p.requires_grad_(False)
    if freeze and reader is TORCHSCRIPT:
        module = freeze_for_inference(module, path)
    if probe:
        check_contract(module, int(meta["grid"]), dev, dt, path=path)
    log.info("closure artifact %s (%s) loaded on %s as %s (family %s, nfe %s)", path, reader.name, dev, dt,
             meta.get("family"), meta.get("nfe"))
    return LoadedArtifact(Path(path), module, meta, dev, dt, reader.name)


# ---------------------------------------------------------------------- writing (for exporters and tests)
def write_artifact(module: Any, path: str | Path, metadata: dict[str, Any]) -> Path:
    """Script ``module`` (if it is not scripted yet) and save it with its ``metadata.json``.

    Fills ``format``, ``format_version``, ``torch_version`` and ``created`` when absent, then
    validates the metadata (:class:`ArtifactFormatError` on a missing key). It does not run the
    export self-check (reload and compare with the eager model): that is the exporter's job.
    """
    meta = {"format": FORMAT, "format_version": FORMAT_VERSION, "torch_version": torch.__version__,
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(), **metadata}
    validate_metadata(meta, path)
    if not isinstance(module, torch.jit.ScriptModule):
        module = torch.jit.script(module)
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    from kolmo.atomic import atomic_output

    with atomic_output(p) as tmp:
        torch.jit.save(module, str(tmp), _extra_files={METADATA_FILE: json.dumps(meta, sort_keys=True)})
    return p
