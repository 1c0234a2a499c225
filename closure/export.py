"""Closure artifacts: one self-contained, self-checked TorchScript file per trained model.

The contract (normative, read by :mod:`coupling.artifact` and by C++/Fortran hosts) is written down in
:mod:`coupling.artifact`; this module writes to it. The scripted :class:`ClosureArtifact` holds

    physical ω (B, N, N) → ω_n = (ω − μ_ω)/σ_ω → ClosureSampler (closure.sampling: condition coder,
    source, sampler with fixed steps, target decoder; the very module ClosureModel.sample runs)
    → H_n → H = σ_H H_n + μ_H (B, N, N), a vorticity tendency in solver units

with methods ``forward(omega)`` (noise drawn with ``torch.randn`` on ``omega``'s device and dtype),
``sample(omega, noise)`` (explicit noise, shape ``noise_shape(B)``: ``[B, 1, n, n]`` for FM and the VE
Heun sampler, ``[n_steps + 1, B, 1, n, n]`` for SI and VE Euler–Maruyama with ``noise[0]`` the source
and ``noise[1:]`` the per-step increments; ``n`` the latent size, or ``N`` for physical models), and
``noise_shape(batch)``. Metadata (``metadata.json`` extra file) as listed in
:data:`coupling.artifact.REQUIRED_METADATA`, plus ``autoencoder``, ``condition``, ``steps``,
``sampler``, ``device``, ``flops_per_sample``, ``parameters``, ``latent``.

What is scripted is the model's inference form (:func:`closure.inference.inference_form`: the latent
generator's small spectral convolutions as matrix products, and a flow-matching Euler sampler's time path
evaluated once for its fixed times; the same map to round-off; metadata ``matrix_dft_layers`` and
``precomputed_time_paths`` count them), checked against the original eager model.

Writing (:func:`export_closure`): script, save under a temporary name beside ``--out``, reload with
the hosts' loader :func:`coupling.artifact.load_artifact`, compare with the eager model on fixed noise (max abs difference ≤ ``rtol × σ_H``,
``rtol`` 1e-5 in float32 and 1e-12 in float64), check the metadata round trip, and only then move it to
``--out`` (never over an existing file). A failing file is deleted and :class:`ExportCheckError` says why.

``--format aoti``: :func:`torch.export.export` of :meth:`ClosureArtifact.sample` with the noise as an
input and a dynamic batch ``1 <= B <= AOTI_MAX_BATCH`` (one package serves every ensemble size),
compiled by AOTInductor for the export's device and dtype into a ``.pt2`` package whose
``extra/metadata.json`` holds the metadata (plus ``noise_dims`` and ``batch_range``; layout in
:mod:`coupling.aoti`). The self-check reads the package back through
:func:`coupling.artifact.load_artifact` and compares it with the eager model at the check batch and at
batch 1 (bound ``AOTI_CHECK_RTOL × σ_H``: 1e-4 in float32, 1e-10 in float64, since Inductor fuses and
reorders reductions), and the TorchScript of the same module too (bound ``SELF_CHECK_RTOL × σ_H``).
Needs a C++ compiler (about one minute on a shared 2-core CPU, for the 16² test model as for the
shipped 64² closure: most of it is Inductor's fixed cost); otherwise :class:`AOTIUnavailableError`.
"""

from __future__ import annotations

import copy
import datetime as _dt
import json
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, List, Optional

import torch
from torch import Tensor, nn

from closure.data import Normalisation
from closure.errors import AOTIUnavailableError, ConfigurationError, ExportCheckError, ExportError, \
    OutputExistsError
from closure.inference import MatrixSpectralConv2d, TimeGridFlowEuler, inference_form, spectral_grids
from closure.models import ClosureModel
from coupling.aoti import MODEL_NAME as AOTI_MODEL_NAME
from coupling.artifact import DTYPES, FORMAT, FORMAT_VERSION, METADATA_FILE, load_artifact, resolve_device
from coupling.errors import ArtifactFormatError
from kolmo.atomic import publish, temporary_path

__all__ = ["FORMAT", "FORMAT_VERSION", "METADATA_FILE", "ClosureArtifact", "ExportResult", "artifact_metadata",
           "export_closure", "export_model", "resolve_device"]

SELF_CHECK_RTOL = {"float32": 1e-5, "float64": 1e-12}
"""Self-check bound of a TorchScript artifact against the eager model, in units of the closure's std σ_H."""
AOTI_CHECK_RTOL = {"float32": 1e-4, "float64": 1e-10}
"""The same for an AOTInductor package: looser, since Inductor fuses and reorders the float reductions."""
AOTI_MAX_BATCH = 4096
"""Largest batch (members) an AOTInductor package is compiled for; the smallest is 1."""


class ClosureArtifact(nn.Module):
    """Scriptable closure: physical coarse vorticity ``(B, N, N)`` → closure sample ``(B, N, N)``.

    Parameters
    ----------
    model : ClosureModel
        Trained model (its coders and network are shared, not copied).
    normalisation : Normalisation
        Train-split normalisation of ω and H.
    steps : int, optional
        Fixed sampling steps (default: the family's, 1 for FM).
    sampler : str, optional
        ``"em"`` or ``"heun"`` for ``dm`` models.
    """

    def __init__(self, model: ClosureModel, normalisation: Normalisation, steps: Optional[int] = None,
                 sampler: Optional[str] = None) -> None:
        super().__init__()
        self.pipeline = model.closure_sampler(steps, sampler)
        self.sampler = self.pipeline.sampler
        self.n_steps = int(self.pipeline.n_steps)
        self.stochastic = bool(self.pipeline.stochastic)
        self.grid = int(model.config.grid)
        self.omega_mean = float(normalisation.omega_mean)
        self.omega_std = float(normalisation.omega_std)
        self.closure_mean = float(normalisation.closure_mean)
        self.closure_std = float(normalisation.closure_std)

    def forward(self, omega: Tensor) -> Tensor:
        """One closure sample per member; noise from ``torch.randn`` on ``omega``'s device and dtype."""
        noise = torch.randn(self.noise_shape(omega.shape[0]), dtype=omega.dtype, device=omega.device)
        return self.sample(omega, noise)

    @torch.jit.export
    def noise_shape(self, batch: int) -> List[int]:
        """``[B, 1, n, n]``, or ``[n_steps + 1, B, 1, n, n]`` for samplers with per-step noise."""
        return self.pipeline.noise_shape(batch)

    @torch.jit.export
    def sample(self, omega: Tensor, noise: Tensor) -> Tensor:
        """Closure ``(B, N, N)`` (1/time²) for vorticity ``omega`` ``(B, N, N)`` (1/time) and standard
        normal ``noise`` of shape :meth:`noise_shape`."""
        if omega.dim() != 3 or omega.shape[1] != self.grid or omega.shape[2] != self.grid:
            raise ValueError("omega must have shape (B, " + str(self.grid) + ", " + str(self.grid) + "), got "
                             + str(list(omega.shape)))
        expected = self.noise_shape(omega.shape[0])
        if list(noise.shape) != expected:
            raise ValueError("noise must have shape " + str(expected) + ", got " + str(list(noise.shape)))
        omega_n = ((omega - self.omega_mean) / self.omega_std).unsqueeze(1)
        h_n = self.pipeline(omega_n, noise)
        return h_n.squeeze(1) * self.closure_std + self.closure_mean


class _SampleOnly(nn.Module):
    """``forward = artifact.sample`` (what torch.export traces for AOTInductor)."""

    def __init__(self, artifact: ClosureArtifact) -> None:
        super().__init__()
        self.artifact = artifact

    def forward(self, omega: Tensor, noise: Tensor) -> Tensor:
        return self.artifact.sample(omega, noise)


@dataclass(frozen=True)
class ExportResult:
    """What :func:`export_closure` wrote and how it checked.

    Attributes
    ----------
    path : Path
        The artifact.
    metadata : dict
        Its metadata.
    max_abs_diff : float
        Max abs difference between the reloaded artifact and the eager model on fixed noise (1/time²).
    tolerance : float
        The bound it had to meet (``rtol × σ_H``).
    seconds : float
        Wall time of scripting (or compiling), saving and checking.
    checks : dict
        Every comparison with the eager model: name → (max abs difference, bound), 1/time².
        TorchScript: ``"torchscript"``; AOTI: ``"aoti"`` (check batch), ``"aoti, batch 1"`` and
        ``"torchscript"`` (the same module scripted, as a reference).
    """

    path: Path
    metadata: dict[str, Any]
    max_abs_diff: float
    tolerance: float
    seconds: float
    checks: dict[str, tuple[float, float]] = field(default_factory=dict)


def artifact_metadata(model: ClosureModel, artifact: ClosureArtifact, normalisation: Normalisation,
                      dataset: dict[str, Any], run_id: str, sampler: Optional[str], dtype: str,
                      device: str) -> dict[str, Any]:
    """The ``metadata.json`` object of an artifact (every key of the contract and a few more)."""
    cfg = model.config
    return {
        "format": FORMAT, "format_version": FORMAT_VERSION,
        "preset": dataset["preset"], "target": dataset["target"], "grid": int(cfg.grid),
        "L": float(dataset["L"]), "dt": float(dataset["dt"]),
        "family": cfg.model, "regularizer": cfg.reg if cfg.latent else None,
        "autoencoder": cfg.autoencoder if cfg.latent else None,
        "condition": cfg.condition if cfg.latent else None,
        "latent": [1, cfg.state_size, cfg.state_size] if cfg.latent else None,
        "nfe": int(artifact.sampler.nfe), "steps": artifact.n_steps, "sampler": artifact.sampler.name,
        "noise_shape": "[n_steps + 1, B, 1, n, n] (noise[0] source, noise[1:] per-step)" if artifact.stochastic
        else "[B, 1, n, n] (source sample)",
        "dtype": dtype, "device": device,
        "normalisation": normalisation.to_dict(),
        "dataset_fingerprint": dataset.get("fingerprint", ""), "run_id": run_id,
        "torch_version": str(torch.__version__),
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "flops_per_sample": model.flops_per_sample(artifact.n_steps, sampler),
        "parameters": model.parameter_counts(),
        "model_config": cfg.to_dict(),
    }


def _fixed_inputs(artifact: ClosureArtifact, normalisation: Normalisation, batch: int, device: torch.device,
                  dtype: torch.dtype) -> tuple[Tensor, Tensor]:
    g = torch.Generator().manual_seed(1234)
    omega = normalisation.omega_mean + normalisation.omega_std * torch.randn(batch, artifact.grid, artifact.grid,
                                                                             generator=g, dtype=torch.float64)
    noise = torch.randn(artifact.noise_shape(batch), generator=g, dtype=torch.float64)
    return omega.to(device=device, dtype=dtype), noise.to(device=device, dtype=dtype)


def _new_temporary(out: Path, suffix: str) -> Path:
    return temporary_path(out, suffix)


def _publish(tmp: Path, out: Path) -> None:
    """Move ``tmp`` to ``out`` without ever replacing an existing ``out`` (:func:`kolmo.atomic.publish`)."""
    publish(tmp, out, overwrite=False)


def export_model(model: ClosureModel, normalisation: Normalisation, dataset: dict[str, Any], out: str | os.PathLike,
                 run_id: str = "", steps: Optional[int] = None, sampler: Optional[str] = None,
                 device: str = "cpu", dtype: str = "float32", format: str = "torchscript",
                 check_batch: int = 3) -> ExportResult:
    """Script, save, reload, self-check and publish the artifact of a trained model.

    Parameters
    ----------
    model : ClosureModel
        Trained model (copied to ``device``/``dtype``; the caller's model is not modified).
    normalisation : Normalisation
        Train-split normalisation.
    dataset : dict
        ``preset``, ``target``, ``L``, ``dt``, ``fingerprint`` of the training data
        (:meth:`closure.data.DatasetInfo.to_dict`).
    out : path-like
        Destination (must not exist).
    run_id : str
        Training-run identifier.
    steps, sampler : optional
        Sampling steps and DM sampler (defaults of the family; FM: one step).
    device : {"cpu", "cuda"}
        Device the artifact is saved on (no fallback).
    dtype : {"float32", "float64"}
        Dtype of the saved parameters and of the self-check.
    format : {"torchscript", "aoti"}
        TorchScript (default; C++ libtorch and FTorch load it) or an AOTInductor ``.pt2`` package.
    check_batch : int
        Batch of the self-check.

    Raises
    ------
    OutputExistsError, ConfigurationError, DeviceError, ExportCheckError, AOTIUnavailableError
    """
    t0 = time.perf_counter()
    out = Path(out)
    _check_request(out, dtype, format)
    dev = resolve_device(device)
    tdtype = DTYPES[dtype]
    model = copy.deepcopy(model).to(device=dev, dtype=tdtype).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    artifact = ClosureArtifact(model, normalisation, steps, sampler).eval()
    meta = artifact_metadata(model, artifact, normalisation, dataset, run_id, sampler, dtype, str(dev))
    omega, noise = _fixed_inputs(artifact, normalisation, check_batch, dev, tdtype)
    with torch.no_grad():
        reference = artifact.sample(omega, noise)
    tolerance = SELF_CHECK_RTOL[dtype] * normalisation.closure_std
    if not bool(torch.isfinite(reference).all()):
        raise ExportCheckError("the eager model returns non-finite closures on the self-check input; not exported")
    grids = spectral_grids(artifact, lambda: artifact.sample(omega, noise))
    artifact = inference_form(artifact, grids)
    meta["matrix_dft_layers"] = sum(isinstance(m, MatrixSpectralConv2d) for m in artifact.modules())
    meta["precomputed_time_paths"] = sum(isinstance(m, TimeGridFlowEuler) for m in artifact.modules())
    if format == "aoti":
        return _export_aoti(artifact, meta, out, omega, noise, reference, normalisation, dtype, dev, t0)
    tmp = _new_temporary(out, ".pt")
    try:
        try:
            scripted = torch.jit.script(artifact)
        except Exception as exc:  # noqa: BLE001 - TorchScript raises many types
            raise ExportError(f"TorchScript could not compile the closure ({str(exc).splitlines()[0]})") from None
        torch.jit.save(scripted, str(tmp), _extra_files={METADATA_FILE: json.dumps(meta, sort_keys=True)})
        diff = _verify_reloaded(tmp, out, meta, dev, dtype, omega, noise, reference, tolerance, normalisation,
                                check_batch)
        _publish(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return ExportResult(out, meta, diff, tolerance, time.perf_counter() - t0, {"torchscript": (diff, tolerance)})


def _check_request(out: Path, dtype: str, format: str) -> None:
    """Refuse an export before any work: an existing ``out``, a missing folder, an unknown dtype or format,
    an AOTI package not named ``*.pt2``."""
    if out.exists():
        raise OutputExistsError(f"{out} exists; choose another --out (artifacts are never overwritten)")
    if not out.parent.is_dir():
        raise ConfigurationError(f"the folder of --out, {out.parent}, does not exist")
    if dtype not in DTYPES:
        raise ConfigurationError(f"dtype {dtype!r} is not supported; expected one of {', '.join(DTYPES)}")
    if format not in ("torchscript", "aoti"):
        raise ConfigurationError(f"format {format!r} is not supported; expected torchscript or aoti")
    if format == "aoti" and out.suffix != ".pt2":
        raise ConfigurationError(f"--format aoti writes an AOTInductor package; name it *.pt2, got {out.name!r}")


def _verify_reloaded(tmp: Path, out: Path, meta: dict[str, Any], dev: torch.device, dtype: str, omega: Tensor,
                     noise: Tensor, reference: Tensor, tolerance: float, normalisation: Normalisation,
                     check_batch: int) -> float:
    """Reload the saved ``tmp`` through the hosts' reader and compare it with the eager ``reference`` on the
    fixed inputs (metadata, shapes, values); returns the max abs difference (:class:`ExportCheckError`)."""
    try:  # the one reader of every host (coupling.artifact), with its metadata validation
        back = load_artifact(tmp, dev, dtype, probe=False)
    except ArtifactFormatError as exc:
        raise ExportCheckError(f"{exc}; the file was not kept") from None
    loaded, meta_back = back.module, back.metadata
    if meta_back != json.loads(json.dumps(meta)):
        raise ExportCheckError(f"{out}: metadata did not round-trip through the saved file")
    with torch.no_grad():
        got = loaded.sample(omega, noise)
        shape = [int(s) for s in loaded.noise_shape(check_batch)]
        drawn = loaded(omega)
    if shape != list(noise.shape) or tuple(drawn.shape) != tuple(reference.shape):
        raise ExportCheckError(f"{out}: reloaded artifact's noise_shape {shape} / forward shape "
                               f"{tuple(drawn.shape)} differ from the eager {list(noise.shape)} / "
                               f"{tuple(reference.shape)}")
    diff = float((got - reference).abs().max())
    if not diff <= tolerance:
        raise ExportCheckError(
            f"{out}: reloaded artifact differs from the eager model on fixed noise by {diff:.3g} (max abs), "
            f"above the bound {tolerance:.3g} = {SELF_CHECK_RTOL[dtype]:g} x closure std "
            f"{normalisation.closure_std:.3g}; the file was not kept")
    return diff


def _aoti_compiler() -> Optional[str]:
    """The C++ compiler AOTInductor would use, or ``None``."""
    for name in (os.environ.get("CXX"), "c++", "g++", "clang++"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


def _noise_dims(artifact: ClosureArtifact) -> list[int]:
    """``noise_shape(B)`` with ``-1`` at the batch axis (found by comparing two batches)."""
    two, three = artifact.noise_shape(2), artifact.noise_shape(3)
    return [-1 if a != b else int(a) for a, b in zip(two, three)]


def _export_aoti(artifact: ClosureArtifact, meta: dict[str, Any], out: Path, omega: Tensor, noise: Tensor,
                 reference: Tensor, normalisation: Normalisation, dtype: str, dev: torch.device,
                 t0: float) -> ExportResult:
    """Compile, package, self-check (the package at the check batch and at batch 1, and the TorchScript
    of the same module, against the eager model) and publish an AOTInductor ``.pt2``."""
    if _aoti_compiler() is None:
        raise AOTIUnavailableError("--format aoti needs a C++ compiler for AOTInductor (none of $CXX, c++, g++, "
                                   "clang++ is on PATH); use the default --format torchscript")
    if omega.shape[0] < 2:
        raise ConfigurationError(f"--format aoti traces a dynamic batch from the self-check batch; it must be >= 2, "
                                 f"got {omega.shape[0]}")
    meta = dict(meta, format_variant="aoti", signature="sample(omega, noise)", noise_dims=_noise_dims(artifact),
                batch_range=[1, AOTI_MAX_BATCH])
    tmp = _new_temporary(out, ".pt2")
    tmp.unlink()
    try:
        _compile_aoti(artifact, omega, noise, meta, tmp)
        checks = _verify_aoti(tmp, out, meta, artifact, dev, dtype, omega, noise, reference, normalisation)
        _publish(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    diff, bound = checks["aoti"]
    return ExportResult(out, meta, diff, bound, time.perf_counter() - t0, checks)


def _compile_aoti(artifact: ClosureArtifact, omega: Tensor, noise: Tensor, meta: dict[str, Any], tmp: Path) -> None:
    """``torch.export`` of :meth:`ClosureArtifact.sample` with a dynamic batch ``1 <= B <= AOTI_MAX_BATCH``,
    AOTInductor, and a PT2 package at ``tmp`` holding the model and ``extra/metadata.json``
    (:class:`AOTIUnavailableError` if any step fails)."""
    batch = torch.export.Dim("batch", min=1, max=AOTI_MAX_BATCH)
    shapes = {"omega": {0: batch}, "noise": {meta["noise_dims"].index(-1): batch}}
    try:
        with torch.no_grad():
            program = torch.export.export(_SampleOnly(artifact), (omega, noise), dynamic_shapes=shapes, strict=False)
            from torch._inductor import aot_compile
            from torch.export.pt2_archive._package import package_pt2

            files = aot_compile(program.module(), (omega, noise), options={"aot_inductor.package": True})
            package_pt2(str(tmp), aoti_files={AOTI_MODEL_NAME: files},
                        extra_files={METADATA_FILE: json.dumps(meta, sort_keys=True)})
    except Exception as exc:  # noqa: BLE001 - export/inductor raise many types
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise AOTIUnavailableError(f"torch.export / AOTInductor could not compile the closure here ({first}); "
                                   "use the default --format torchscript") from None


def _verify_aoti(tmp: Path, out: Path, meta: dict[str, Any], artifact: ClosureArtifact, dev: torch.device,
                 dtype: str, omega: Tensor, noise: Tensor, reference: Tensor,
                 normalisation: Normalisation) -> dict[str, tuple[float, float]]:
    """Max abs differences (and bounds) against the eager ``reference`` of: the package read back by the
    hosts' reader at the check batch and at batch 1, and the TorchScript of the same module
    (:class:`ExportCheckError` when one is above its bound)."""
    try:
        back = load_artifact(tmp, dev, dtype, probe=False)
    except ArtifactFormatError as exc:
        raise ExportCheckError(f"{exc}; the package was not kept") from None
    if back.metadata != json.loads(json.dumps(meta)):
        raise ExportCheckError(f"{out}: metadata did not round-trip through the package's extra/metadata.json")
    axis = meta["noise_dims"].index(-1)
    aoti_bound = AOTI_CHECK_RTOL[dtype] * normalisation.closure_std
    script_bound = SELF_CHECK_RTOL[dtype] * normalisation.closure_std
    try:
        scripted = torch.jit.script(artifact)
    except Exception as exc:  # noqa: BLE001 - TorchScript raises many types
        raise ExportError(f"TorchScript could not compile the closure ({str(exc).splitlines()[0]})") from None
    with torch.no_grad():
        got = {"aoti": back.module.sample(omega, noise),
               "aoti, batch 1": back.module.sample(omega[:1], noise.narrow(axis, 0, 1)),
               "torchscript": scripted.sample(omega, noise)}
    checks = {}
    for name, value in got.items():
        want = reference[:1] if name == "aoti, batch 1" else reference
        bound = script_bound if name == "torchscript" else aoti_bound
        if tuple(value.shape) != tuple(want.shape):
            raise ExportCheckError(f"{out}: {name} returns shape {tuple(value.shape)}, expected {tuple(want.shape)}")
        diff = float((value - want).abs().max())
        if not diff <= bound:
            raise ExportCheckError(f"{out}: the {name} closure differs from the eager model on fixed noise by "
                                   f"{diff:.3g} (max abs), above the bound {bound:.3g} = "
                                   f"{bound / normalisation.closure_std:g} x closure std; the package was not kept")
        checks[name] = (diff, bound)
    return checks


def export_closure(run_dir: str | os.PathLike, out: str | os.PathLike, steps: Optional[int] = None,
                   sampler: Optional[str] = None, device: str = "cpu", dtype: str = "float32",
                   format: str = "torchscript", checkpoint: str = "best") -> ExportResult:
    """Export the model of a training run (``best.pt``, or ``last.pt``) as a closure artifact.

    See :func:`export_model` for the parameters and the self-check.
    """
    from closure.training import load_run

    run = load_run(run_dir, checkpoint)
    return export_model(run.model, run.normalisation, run.dataset, out, run_id=run.run_id, steps=steps,
                        sampler=sampler, device=device, dtype=dtype, format=format)
