r"""Timing closure artifacts exactly as the solver calls them (``kolmo bench closures``, and the
batch-1 latency ``kolmo export`` prints): the one place an artifact's latency is measured.

For every artifact (TorchScript ``.pt`` or AOTInductor ``.pt2``) and batch size: load once with
:func:`coupling.artifact.load_artifact` (the contract's typed errors: a missing or foreign file,
incomplete metadata, an absent device or an unsupported dtype are refused, never guessed; the
load time, contract probe included, is reported as ``load_ms``), warm up, then time
``repeat`` calls of ``forward(omega)`` (noise drawn inside, as in a run). On CUDA every call
is bracketed by ``torch.cuda.synchronize()`` (optionally replayed from a captured CUDA graph);
host↔device copies of the field (float64 NumPy ↔ device tensor) are timed separately so the
call time is the closure alone. Reported per (artifact, batch): median, min and inter-quartile
range of the latency per call, samples per second, NFE, parameter count, FLOPs per sample
(from the artifact's metadata) and the speed-up relative to a baseline artifact.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from coupling.artifact import load_artifact
from kolmo import atomic
from kolmo.errors import ConfigurationError

__all__ = ["ClosureTiming", "machine_info", "time_artifact", "bench_closures", "write_json", "plot_bars"]


@dataclass
class ClosureTiming:
    """One (artifact, batch) row; times in milliseconds."""

    artifact: str
    batch: int
    device: str
    dtype: str
    median_ms: float
    min_ms: float
    iqr_ms: float
    h2d_ms: float
    d2h_ms: float
    nfe: int | None
    parameters: int
    flops_per_sample: float | None
    family: str = ""
    speedup: float = float("nan")
    cuda_graph: bool = False
    file_format: str = "torchscript"
    load_ms: float = float("nan")
    samples_per_second: float = field(init=False)

    def __post_init__(self) -> None:
        self.samples_per_second = 1e3 * self.batch / self.median_ms if self.median_ms > 0 else float("nan")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def machine_info(device: str = "cpu") -> dict[str, Any]:
    """:func:`kolmo.benchmark.machine_info` plus torch threads and version, and the GPU when on CUDA."""
    from kolmo.benchmark import machine_info as solver_machine_info

    info: dict[str, Any] = solver_machine_info()
    info.update({"torch_threads": torch.get_num_threads(), "torch": torch.__version__})
    if device.startswith("cuda") and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
        info["cuda"] = torch.version.cuda
    return info


def _quantiles(xs: list[float]) -> tuple[float, float, float]:
    q = np.percentile(np.asarray(xs), [25, 50, 75])
    return float(q[1]), float(min(xs)), float(q[2] - q[0])


def time_artifact(path: str | Path, batches: list[int], device: str = "cpu", dtype: str = "float32",
                  repeat: int = 50, warmup: int = 5, cuda_graph: bool = False) -> list[ClosureTiming]:
    """Time one artifact at every batch size (see the module docstring).

    Raises :class:`~coupling.errors.ArtifactFormatError` (missing, corrupt or foreign file),
    :class:`~coupling.errors.DeviceError`, :class:`~coupling.errors.DtypeError` or
    :class:`ConfigurationError` (``repeat``/``warmup``).
    """
    path = Path(path)
    if repeat < 1 or warmup < 0:
        raise ConfigurationError(f"repeat must be >= 1 and warmup >= 0, got {repeat}, {warmup}")
    t_load = time.perf_counter()
    loaded = load_artifact(path, device, dtype)
    load_ms = (time.perf_counter() - t_load) * 1e3
    module, meta, tdtype = loaded.module, loaded.metadata, loaded.dtype
    n = loaded.grid
    params = sum(p.numel() for p in module.parameters()) + sum(b.numel() for b in module.buffers())
    if params == 0 and isinstance(meta.get("parameters"), dict):  # AOTI: weights compiled in; buffers not counted
        params = int(meta["parameters"].get("total", 0))
    sync: Callable[[], None] = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    rows = []
    rng = np.random.default_rng(0)
    for b in batches:
        host = rng.standard_normal((b, n, n))
        calls, h2d, d2h, graph_used = _time_batch(module, host, tdtype, device, repeat, warmup, cuda_graph, sync)
        med, mn, iqr = _quantiles(calls)
        flops = meta.get("flops_per_sample")
        rows.append(ClosureTiming(artifact=str(path), batch=b, device=device, dtype=dtype, median_ms=med,
                                  min_ms=mn, iqr_ms=iqr, h2d_ms=statistics.median(h2d),
                                  d2h_ms=statistics.median(d2h), nfe=meta.get("nfe"), parameters=int(params),
                                  flops_per_sample=float(flops) if flops is not None else None,
                                  family=str(meta.get("family", "")), cuda_graph=graph_used,
                                  file_format=loaded.file_format, load_ms=load_ms))
    return rows


def _time_batch(module: Any, host: np.ndarray, tdtype: torch.dtype, device: str, repeat: int, warmup: int,
                cuda_graph: bool, sync: Callable[[], None]) -> tuple[list[float], list[float], list[float], bool]:
    """Per-call times (ms) of ``forward`` on ``host`` ``(B, N, N)``: call, host→device, device→host,
    and whether a captured CUDA graph was replayed."""
    h2d: list[float] = []
    d2h: list[float] = []
    calls: list[float] = []
    with torch.inference_mode():
        omega = torch.as_tensor(host, dtype=tdtype, device=device)
        call: Callable[[], torch.Tensor] = lambda: module(omega)  # noqa: E731
        graph_used = False
        if cuda_graph and device.startswith("cuda"):
            try:
                static_in = omega.clone()
                for _ in range(3):
                    module(static_in)
                sync()
                graph = torch.cuda.CUDAGraph()
                with torch.cuda.graph(graph):
                    static_out = module(static_in)
                call = lambda: (graph.replay(), static_out)[1]  # noqa: E731
                graph_used = True
            except RuntimeError:
                graph_used = False  # the artifact cannot be captured: plain calls
        for _ in range(warmup):
            call()
        sync()
        for _ in range(repeat):
            t0 = time.perf_counter()
            x = torch.as_tensor(host, dtype=tdtype, device=device)
            sync()
            t1 = time.perf_counter()
            out = call()
            sync()
            t2 = time.perf_counter()
            out.cpu().numpy()
            t3 = time.perf_counter()
            h2d.append((t1 - t0) * 1e3)
            calls.append((t2 - t1) * 1e3)
            d2h.append((t3 - t2) * 1e3)
            del x
    return calls, h2d, d2h, graph_used


def bench_closures(paths: list[str | Path], batches: list[int], device: str = "cpu", dtype: str = "float32",
                   repeat: int = 50, warmup: int = 5, cuda_graph: bool = False, baseline: int = 0,
                   progress: Callable[[ClosureTiming], None] | None = None,
                   threads: int | None = None) -> list[ClosureTiming]:
    """Time every artifact at every batch; speed-ups are relative to ``paths[baseline]`` at the same batch.

    ``threads`` sets torch's CPU threads for the whole process (``torch.set_num_threads``; default: leave
    torch's own setting, one per core). At batch 1 on a CPU one thread is fastest for the small closures
    (no fork-join per operator); the machine info of :func:`write_json` records the setting."""
    if not paths:
        raise ConfigurationError("bench closures needs at least one artifact")
    if not 0 <= baseline < len(paths):
        raise ConfigurationError(f"baseline index {baseline} is outside 0..{len(paths) - 1}")
    if threads is not None:
        if threads < 1:
            raise ConfigurationError(f"threads must be >= 1, got {threads}")
        torch.set_num_threads(threads)
    rows: list[ClosureTiming] = []
    for p in paths:
        for r in time_artifact(p, batches, device, dtype, repeat, warmup, cuda_graph):
            rows.append(r)
            if progress is not None:
                progress(r)
    base = {r.batch: r.median_ms for r in rows if r.artifact == str(Path(paths[baseline]))}
    for r in rows:
        r.speedup = base[r.batch] / r.median_ms if r.median_ms > 0 else float("nan")
    return rows


def write_json(rows: list[ClosureTiming], path: str | Path, device: str = "cpu") -> None:
    """Write the rows and :func:`machine_info` as JSON (atomically, :func:`kolmo.atomic.write_json`)."""
    atomic.write_json(path, {"machine": machine_info(device), "rows": [r.as_dict() for r in rows]}, indent=1)


def plot_bars(rows: list[ClosureTiming], path: str | Path) -> None:
    """Grouped bar chart of median latency per call (log scale), one group per batch size, written
    atomically (:func:`kolmo.atomic.atomic_output`).

    Needs matplotlib (``pip install kolmo[plots]``; else :class:`~kolmo.errors.OptionalDependencyError`).
    """
    from kolmo.evaluation.figures import figure_class

    Figure = figure_class()

    names = list(dict.fromkeys(Path(r.artifact).stem for r in rows))
    batches = sorted({r.batch for r in rows})
    fig = Figure(figsize=(1.6 + 1.2 * len(batches) * max(1, len(names)) / 2, 4))
    ax = fig.add_subplot()
    width = 0.8 / len(names)
    for i, name in enumerate(names):
        vals = [next((r.median_ms for r in rows if Path(r.artifact).stem == name and r.batch == b), np.nan)
                for b in batches]
        ax.bar(np.arange(len(batches)) + i * width, vals, width, label=name)
    ax.set_xticks(np.arange(len(batches)) + 0.4 - width / 2, [f"B={b}" for b in batches])
    ax.set_yscale("log")
    ax.set_ylabel("median latency per call [ms]")
    ax.legend(fontsize=8)
    fig.tight_layout()
    with atomic.atomic_output(path) as tmp:  # the temporary name keeps the suffix matplotlib reads
        fig.savefig(tmp, dpi=120)
