r"""AOTInductor packages (``*.pt2``) as closure artifacts: their metadata and their loading.

A closure's AOTI package (``kolmo export --format aoti``, :mod:`closure.export`) is a PT2 archive,
a zip file with one root folder, holding

``data/aotinductor/model/``
    the compiled ``sample(omega, noise) -> H`` of the contract (:mod:`coupling.artifact`), one
    shared library for **one device and one dtype** (metadata ``device``, ``dtype``), with a
    **dynamic batch** ``B`` in ``batch_range``: flat inputs ``[omega (B, N, N), noise]``, flat
    outputs ``[H (B, N, N)]``;
``extra/metadata.json``
    the contract's metadata (the same JSON object a TorchScript artifact carries as its extra
    file), plus ``noise_dims`` (``noise_shape(B)`` with ``-1`` where ``B`` goes, e.g.
    ``[-1, 1, 16, 16]`` or ``[2, -1, 1, 64, 64]``), ``batch_range`` ``[min, max]`` and
    ``format_variant = "aoti"``.

:class:`AOTIModule` gives a loaded package the interface of a TorchScript artifact (``sample``,
``forward``, ``noise_shape``), so the coupling (noise drawn by the closure's own seeded generator,
bit-exact restarts), the export self-check and the benchmarks use it unchanged. Unlike a TorchScript
module it cannot be moved: asking for another device or dtype than the package's is a typed error.

It is built with ``torch._C._aoti.AOTIModelPackageLoader`` directly and called through
``boxed_run``: ``torch._inductor.aoti_load_package`` first probes the C++ compiler for the CPU's
vector ISAs (1.4–2.3 s on a 2-core VM, measured in ``benchmarks/data/aoti``) only to log a warning
on a mismatch, and its ``__call__`` re-parses the call spec every call. The ISA check is done here
from the package's own metadata against the CPU flags torch reads (``torch.cpu._is_avx512_supported``
...), which takes microseconds and refuses a package this CPU cannot execute instead of crashing.
"""

from __future__ import annotations

import sys
import zipfile
from pathlib import Path
from typing import Any, Callable, Iterator

import torch

from coupling.errors import ArtifactFormatError, ClosureShapeError, DeviceError, DtypeError

__all__ = ["MODEL_NAME", "AOTIModule", "aoti_metadata_text", "open_aoti"]

MODEL_NAME = "model"
"""Name of the one AOTI model in a closure package (``data/aotinductor/model``)."""
METADATA_ENTRY = "extra/metadata.json"
ISA_CHECKS: dict[str, Callable[[], bool]] = {
    "AVX2": torch.cpu._is_avx2_supported,
    "AVX512": torch.cpu._is_avx512_supported,
    "AVX512_VNNI": torch.cpu._is_vnni_supported,
    "AMX_TILE": torch.cpu._is_amx_tile_supported,
}
"""Vector ISAs an AOTI CPU package may be compiled for (``AOTI_CPU_ISA``), and the check of each on this CPU."""


def aoti_metadata_text(p: Path) -> str:
    """The ``extra/metadata.json`` text of a closure package, read from the zip alone (no library is loaded).

    Raises :class:`ArtifactFormatError` for a file that is not a zip archive, or that lacks the
    metadata or the compiled model.
    """
    try:
        with zipfile.ZipFile(p) as archive:
            names = archive.namelist()
            entry = next((n for n in names if n.split("/", 1)[-1] == METADATA_ENTRY), None)
            has_model = any(n.split("/", 1)[-1].startswith(f"data/aotinductor/{MODEL_NAME}/") for n in names)
            text = archive.read(entry).decode("utf-8", errors="replace") if entry is not None else ""
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, KeyError) as exc:
        raise ArtifactFormatError(f"{p} is not an AOTInductor package or is corrupt ({exc}); expected a closure "
                                  "artifact written by kolmo export --format aoti") from None
    if not has_model:
        raise ArtifactFormatError(f"{p} holds no AOTInductor model {MODEL_NAME!r} (data/aotinductor/{MODEL_NAME}/): "
                                  "not a package written by kolmo export --format aoti")
    if not text:
        raise ArtifactFormatError(f"{p} has no {METADATA_ENTRY}: a PT2 archive, but not a kolmo-closure artifact")
    return text


class AOTIModule:
    """A loaded closure package with the TorchScript artifact's methods.

    Parameters
    ----------
    loader : torch._C._aoti.AOTIModelPackageLoader
        The package's loaded model.
    path : Path
        The package (for messages).
    noise_dims : list of int
        ``noise_shape(B)`` with ``-1`` at the batch axis.
    batch_range : (int, int)
        Smallest and largest batch the package was compiled for.
    device : torch.device
        The device it was compiled for.
    dtype : torch.dtype
        The dtype it was compiled for.
    """

    def __init__(self, loader: Any, path: Path, noise_dims: list[int], batch_range: tuple[int, int],
                 device: torch.device, dtype: torch.dtype) -> None:
        self.loader = loader
        self.path = path
        self.noise_dims = list(noise_dims)
        self.batch_range = batch_range
        self.device = device
        self.dtype = dtype

    def noise_shape(self, batch: int) -> list[int]:
        """``noise_dims`` with ``batch`` at the batch axis."""
        return [int(batch) if d == -1 else int(d) for d in self.noise_dims]

    def sample(self, omega: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """Closure ``(B, N, N)`` (1/time²) for vorticity ``omega`` ``(B, N, N)`` (1/time) and standard
        normal ``noise`` of shape :meth:`noise_shape` ``(B)``, on the package's device and dtype."""
        b = int(omega.shape[0]) if omega.dim() == 3 else -1
        lo, hi = self.batch_range
        if not lo <= b <= hi:
            raise ClosureShapeError(f"{self.path}: omega of shape {tuple(omega.shape)}; this AOTInductor package "
                                    f"takes (B, N, N) with {lo} <= B <= {hi}")
        if list(noise.shape) != self.noise_shape(b):
            raise ClosureShapeError(f"{self.path}: noise of shape {list(noise.shape)}, expected {self.noise_shape(b)}")
        for x in (omega, noise):
            if x.dtype != self.dtype:
                raise DtypeError(f"{self.path}: input dtype {x.dtype}; this AOTInductor package was compiled for "
                                 f"{self.dtype}")
            if x.device.type != self.device.type:
                raise DeviceError(f"{self.path}: input on {x.device}; this AOTInductor package was compiled for "
                                  f"{self.device}")
        return self.loader.boxed_run([omega.contiguous(), noise.contiguous()])[0]

    def forward(self, omega: torch.Tensor) -> torch.Tensor:
        """One closure sample per member; noise from ``torch.randn`` on ``omega``'s device and dtype."""
        noise = torch.randn(self.noise_shape(int(omega.shape[0])), dtype=omega.dtype, device=omega.device)
        return self.sample(omega, noise)

    __call__ = forward

    def to(self, device: torch.device | None = None, dtype: torch.dtype | None = None) -> "AOTIModule":
        """``self`` when ``device``/``dtype`` are the package's; a compiled package cannot be moved."""
        if dtype is not None and dtype != self.dtype:
            raise DtypeError(f"{self.path} is an AOTInductor package compiled for {self.dtype}; it cannot run "
                             f"in {dtype} (use --closure-dtype {str(self.dtype).replace('torch.', '')}, or export "
                             "another package)")
        if device is not None and torch.device(device).type != self.device.type:
            raise DeviceError(f"{self.path} is an AOTInductor package compiled for {self.device}; it cannot run "
                              f"on {device} (export another package with --device {device})")
        return self

    def eval(self) -> "AOTIModule":
        """``self`` (a compiled package is always in inference mode)."""
        return self

    def parameters(self) -> Iterator[torch.Tensor]:
        """None: the weights are constants inside the compiled library."""
        return iter(())

    def buffers(self) -> Iterator[torch.Tensor]:
        """None (see :meth:`parameters`)."""
        return iter(())


def _check_machine(p: Path, built: dict[str, str]) -> None:
    """Refuse a package built for another platform, machine or a CPU ISA this CPU lacks."""
    import platform

    for key, here in (("AOTI_PLATFORM", sys.platform), ("AOTI_MACHINE", platform.machine())):
        if built.get(key, here) != here:
            raise ArtifactFormatError(f"{p} was compiled for {key[5:].lower()} {built[key]!r}; this one is "
                                      f"{here!r} (export the package on this kind of machine)")
    missing = [isa for isa in built.get("AOTI_CPU_ISA", "").split() if isa in ISA_CHECKS and not ISA_CHECKS[isa]()]
    if missing and built.get("AOTI_DEVICE_KEY", "cpu") == "cpu":
        raise ArtifactFormatError(f"{p} was compiled for CPUs with {' '.join(missing)} (AOTI_CPU_ISA "
                                  f"{built['AOTI_CPU_ISA']!r}), which this CPU lacks; export the package on this "
                                  "machine, or use the TorchScript artifact")


def open_aoti(p: Path, meta: dict[str, Any], device: torch.device, dtype: torch.dtype) -> AOTIModule:
    """Load the compiled model of a closure package whose validated metadata is ``meta``.

    Raises :class:`DtypeError` or :class:`DeviceError` when ``dtype``/``device`` are not the
    package's, :class:`ArtifactFormatError` for a package this machine cannot run or load.
    """
    noise_dims, batch_range = meta.get("noise_dims"), meta.get("batch_range")
    if (not isinstance(noise_dims, list) or sum(1 for d in noise_dims if d == -1) != 1
            or not all(isinstance(d, int) for d in noise_dims)):
        raise ArtifactFormatError(f"{p}: metadata noise_dims = {noise_dims!r}, expected a list of ints with one -1 "
                                  "(the batch axis)")
    if (not isinstance(batch_range, list) or len(batch_range) != 2 or not all(isinstance(b, int) for b in batch_range)
            or not 1 <= batch_range[0] <= batch_range[1]):
        raise ArtifactFormatError(f"{p}: metadata batch_range = {batch_range!r}, expected [min, max] with 1 <= min "
                                  "<= max")
    built_for = torch.device(str(meta.get("device", "cpu")))
    module = AOTIModule(None, p, noise_dims, (batch_range[0], batch_range[1]), built_for,
                        getattr(torch, str(meta["dtype"])))
    module.to(device, dtype)  # typed errors before any library is loaded
    try:
        built = torch._C._aoti.AOTIModelPackageLoader.load_metadata_from_package(str(p), MODEL_NAME)
    except Exception as exc:  # noqa: BLE001 - torch raises RuntimeError/c10::Error for bad packages
        raise ArtifactFormatError(f"{p}: cannot read the AOTInductor model's metadata ({_first_line(exc)})") from None
    _check_machine(p, dict(built))
    index = device.index if device.type == "cuda" and device.index is not None else -1
    try:
        module.loader = torch._C._aoti.AOTIModelPackageLoader(str(p), MODEL_NAME, False, 1, index)
    except Exception as exc:  # noqa: BLE001
        raise ArtifactFormatError(f"{p}: the AOTInductor package does not load here ({_first_line(exc)})") from None
    return module


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__

