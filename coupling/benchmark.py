r"""Timing closure artifacts exactly as the solver calls them (``kolmo bench closures``).

For every artifact and batch size: load once, move to the device/dtype, warm up, then time
``repeat`` calls of ``forward(omega)`` (noise drawn inside, as in a run). On CUDA every call
is bracketed by ``torch.cuda.synchronize()`` (optionally replayed from a captured CUDA graph);
host↔device copies of the field (float64 NumPy ↔ device tensor) are timed separately so the
call time is the closure alone. Reported per (artifact, batch): median, min and inter-quartile
range of the latency per call, samples per second, NFE, parameter count, FLOPs per sample
(from the artifact's metadata) and the speed-up relative to a baseline artifact.
"""

from __future__ import annotations

import json
import statistics
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from coupling.errors import ArtifactFormatError
from kolmo.errors import ConfigurationError


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


def _metadata(path: Path) -> dict[str, Any]:
    extra = {"metadata.json": ""}
    try:
        module = torch.jit.load(str(path), map_location="cpu", _extra_files=extra)
    except Exception as exc:  # noqa: BLE001 - torch raises many types for foreign or corrupt files
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ArtifactFormatError(f"{path} is not a TorchScript archive or is corrupt ({first[:200]}); expected a "
                                  "closure artifact written by torch.jit.save") from None
    try:
        meta = json.loads(extra["metadata.json"] or "{}")
    except json.JSONDecodeError:
        meta = {}
    return {"module": module, "meta": meta}


def _quantiles(xs: list[float]) -> tuple[float, float, float]:
    q = np.percentile(np.asarray(xs), [25, 50, 75])
    return float(q[1]), float(min(xs)), float(q[2] - q[0])


def time_artifact(path: str | Path, batches: list[int], device: str = "cpu", dtype: str = "float32",
                  repeat: int = 50, warmup: int = 5, cuda_graph: bool = False) -> list[ClosureTiming]:
    """Time one artifact at every batch size (see the module docstring)."""
    path = Path(path)
    if not path.exists():
        raise ConfigurationError(f"closure artifact {path} does not exist")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigurationError(f"device {device!r} asked for but CUDA is not available (no silent CPU fallback)")
    if dtype not in ("float32", "float64"):
        raise ConfigurationError(f"dtype must be float32 or float64, got {dtype!r}")
    if repeat < 1 or warmup < 0:
        raise ConfigurationError(f"repeat must be >= 1 and warmup >= 0, got {repeat}, {warmup}")
    loaded = _metadata(path)
    module, meta = loaded["module"], loaded["meta"]
    tdtype = getattr(torch, dtype)
    module = module.to(device=device, dtype=tdtype).eval()
    n = int(meta.get("grid", 64))
    params = sum(p.numel() for p in module.parameters()) + sum(b.numel() for b in module.buffers())
    sync: Callable[[], None] = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    rows = []
    rng = np.random.default_rng(0)
    for b in batches:
        host = rng.standard_normal((b, n, n))
        h2d, d2h, calls = [], [], []
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
        med, mn, iqr = _quantiles(calls)
        flops = meta.get("flops_per_sample")
        rows.append(ClosureTiming(artifact=str(path), batch=b, device=device, dtype=dtype, median_ms=med,
                                  min_ms=mn, iqr_ms=iqr, h2d_ms=statistics.median(h2d),
                                  d2h_ms=statistics.median(d2h), nfe=meta.get("nfe"), parameters=int(params),
                                  flops_per_sample=float(flops) if flops is not None else None,
                                  family=str(meta.get("family", "")), cuda_graph=graph_used))
    return rows


def bench_closures(paths: list[str | Path], batches: list[int], device: str = "cpu", dtype: str = "float32",
                   repeat: int = 50, warmup: int = 5, cuda_graph: bool = False, baseline: int = 0,
                   progress: Callable[[ClosureTiming], None] | None = None) -> list[ClosureTiming]:
    """Time every artifact at every batch; speed-ups are relative to ``paths[baseline]`` at the same batch."""
    if not paths:
        raise ConfigurationError("bench closures needs at least one artifact")
    if not 0 <= baseline < len(paths):
        raise ConfigurationError(f"baseline index {baseline} is outside 0..{len(paths) - 1}")
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
    from kolmo.atomic import write_json as _write_json

    _write_json(path, {"machine": machine_info(device), "rows": [r.as_dict() for r in rows]}, indent=1)


def plot_bars(rows: list[ClosureTiming], path: str | Path) -> None:
    """Grouped bar chart of median latency per call (log scale), one group per batch size."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(dict.fromkeys(Path(r.artifact).stem for r in rows))
    batches = sorted({r.batch for r in rows})
    fig, ax = plt.subplots(figsize=(1.6 + 1.2 * len(batches) * max(1, len(names)) / 2, 4))
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
    from kolmo.atomic import atomic_output

    with atomic_output(path) as tmp:
        fig.savefig(tmp, dpi=120)
    plt.close(fig)


# ---------------------------------------------------------------------------------- coupled runs
@dataclass
class CoupledTiming:
    """Wall-clock of one online rollout (seconds); ``overhead`` is relative to the solver-only run."""

    closure: str
    steps: int
    members: int
    every: int
    wall_s: float
    closure_s: float
    solver_s: float
    closure_calls: int = 0
    artifact_calls: int = 0
    overhead: float = float("nan")

    @property
    def closure_share(self) -> float:
        return self.closure_s / self.wall_s if self.wall_s > 0 else float("nan")

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["closure_share"] = self.closure_share
        return d


def bench_coupled(closures: list[str], preset: str = "dong2026", grid: int | None = 64, steps: int = 20000,
                  every: int = 5, jitter: float = 5e-5, members: int = 1, init: str | None = None,
                  threads: int = 1, device: str = "cpu", dtype: str = "float32", seed: int = 0,
                  progress: Callable[[CoupledTiming], None] | None = None) -> list[CoupledTiming]:
    """The online protocol's wall-clock: the solver alone, then with each closure (no file I/O).

    All runs share the configuration the first closure implies (e.g. the dong2026 reduced model
    for a ``missing-physics`` artifact: advection off, cn-euler), so the solver-only row is the
    same equation without the closure term. Time in the closure (its call, the jitter, the
    solver-side transforms of H) is measured inside :meth:`kolmo.simulation.Simulation.advance`.
    """
    from coupling.online import ClosureOptions, prepare_run
    from kolmo.simulation import Simulation

    if not closures:
        raise ConfigurationError("bench coupled needs at least one closure")
    if steps < 1 or every < 1 or members < 1:
        raise ConfigurationError(f"steps, every and members must be >= 1, got {steps}, {every}, {members}")
    options = ClosureOptions(every=every, jitter=jitter, seed=seed, device=device, dtype=dtype, threads=threads)

    def setup(spec: str | None):  # noqa: ANN202
        overrides: dict[str, Any] = {"members": members, "seed": seed}
        online = prepare_run(preset, grid, overrides, spec, options, init=init)
        return online.config, online.closure

    base_cfg, _ = setup(closures[0])
    base_cfg = base_cfg.replace(t_end=steps * base_cfg.dt, save_every=steps * base_cfg.dt)
    rows: list[CoupledTiming] = []
    for spec in [None, *closures]:
        cfg, closure = (base_cfg, None) if spec is None else setup(spec)
        cfg = base_cfg if spec is None else cfg.replace(t_end=base_cfg.t_end, save_every=base_cfg.save_every)
        sim = Simulation(cfg, closure=closure, threads=threads)
        t0 = time.perf_counter()
        sim.run(None)
        wall = time.perf_counter() - t0
        d = closure.describe() if closure is not None else {}
        row = CoupledTiming(closure=spec or "none (solver only)", steps=sim.step, members=members, every=every,
                            wall_s=wall, closure_s=sim.closure_seconds, solver_s=wall - sim.closure_seconds,
                            closure_calls=int(d.get("closure_calls", 0) or 0),
                            artifact_calls=int(d.get("closure_artifact_calls", 0) or 0))
        rows.append(row)
        if progress is not None:
            progress(row)
    for r in rows:
        r.overhead = r.wall_s / rows[0].wall_s
    return rows
