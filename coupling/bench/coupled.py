r"""Timing the online protocol (``kolmo bench coupled``): the solver alone, then with each closure.

Wall-clock of whole rollouts without file I/O; the time inside the closure (its call, the jitter,
the solver-side transforms of H) is the :attr:`kolmo.simulation.Simulation.closure_seconds`
measured by the solver's one timer.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable

from kolmo.errors import ConfigurationError

__all__ = ["CoupledTiming", "bench_coupled"]


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
    notes: list[str] = field(default_factory=list)  # what prepare_run set or ignored for this closure

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
    from coupling.online import ClosureOptions, OnlineRun, prepare_run
    from kolmo.simulation import Simulation

    if not closures:
        raise ConfigurationError("bench coupled needs at least one closure")
    if steps < 1 or every < 1 or members < 1:
        raise ConfigurationError(f"steps, every and members must be >= 1, got {steps}, {every}, {members}")
    options = ClosureOptions(every=every, jitter=jitter, seed=seed, device=device, dtype=dtype, threads=threads)

    def setup(spec: str | None) -> OnlineRun:
        overrides: dict[str, Any] = {"members": members, "seed": seed}
        return prepare_run(preset, grid, overrides, spec, options, init=init)

    base_cfg = setup(closures[0]).config
    base_cfg = base_cfg.replace(t_end=steps * base_cfg.dt, save_every=steps * base_cfg.dt)
    rows: list[CoupledTiming] = []
    for spec in [None, *closures]:
        online = None if spec is None else setup(spec)
        cfg, closure = (base_cfg, None) if online is None else (online.config, online.closure)
        cfg = base_cfg if spec is None else cfg.replace(t_end=base_cfg.t_end, save_every=base_cfg.save_every)
        sim = Simulation(cfg, closure=closure, threads=threads)
        t0 = time.perf_counter()
        sim.run(None)
        wall = time.perf_counter() - t0
        d = closure.describe() if closure is not None else {}
        row = CoupledTiming(closure=spec or "none (solver only)", steps=sim.step, members=members, every=every,
                            wall_s=wall, closure_s=sim.closure_seconds, solver_s=wall - sim.closure_seconds,
                            closure_calls=int(d.get("closure_calls", 0) or 0),
                            artifact_calls=int(d.get("closure_artifact_calls", 0) or 0),
                            notes=list(online.notes) if online is not None else [])
        rows.append(row)
        if progress is not None:
            progress(row)
    for r in rows:
        r.overhead = r.wall_s / rows[0].wall_s
    return rows
