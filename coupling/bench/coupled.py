r"""Timing the online protocol (``kolmo bench coupled``): the solver alone, then with each closure.

Wall-clock of whole rollouts without file I/O, split three ways within the same run (``perf_counter``
around each section, no second run):

* **network**: the artifact calls (:attr:`coupling.learned.ArtifactClosure.model_seconds`, timed
  around ``module.sample`` only; 0 for closures without a network);
* **coupling**: the rest of the closure hand-off, :attr:`kolmo.simulation.Simulation.closure_seconds`
  minus the network: building the state, the casts and transforms on resample steps, the noise and
  jitter draws, the checks, the solver's injection diagnostics (for an eddy-viscosity closure, its
  whole computation);
* **solver**: everything else of the rollout (the steps, the noise, the per-step diagnostics and guard).

``coupling_share = coupling_s / wall_s`` is what issue 13's target (≤ 5 %) is about.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable

from kolmo.errors import ConfigurationError

__all__ = ["CoupledTiming", "bench_coupled"]


@dataclass
class CoupledTiming:
    """Wall-clock of one online rollout (seconds); ``overhead`` is relative to the solver-only run.

    ``wall_s = solver_s + closure_s`` and ``closure_s = network_s + coupling_s`` (see the module docstring).
    """

    closure: str
    steps: int
    members: int
    every: int
    wall_s: float
    closure_s: float
    solver_s: float
    closure_calls: int = 0
    artifact_calls: int = 0
    network_s: float = 0.0
    overhead: float = float("nan")
    notes: list[str] = field(default_factory=list)  # what prepare_run set or ignored for this closure

    @property
    def coupling_s(self) -> float:
        """The closure hand-off outside the network calls."""
        return self.closure_s - self.network_s

    def share(self, seconds: float) -> float:
        """``seconds`` as a fraction of the rollout's wall time."""
        return seconds / self.wall_s if self.wall_s > 0 else float("nan")

    @property
    def closure_share(self) -> float:
        return self.share(self.closure_s)

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.update(coupling_s=self.coupling_s, closure_share=self.closure_share, solver_share=self.share(self.solver_s),
                 network_share=self.share(self.network_s), coupling_share=self.share(self.coupling_s))
        return d


def bench_coupled(closures: list[str], preset: str = "dong2026", grid: int | None = 64, steps: int = 20000,
                  every: int = 5, jitter: float = 5e-5, members: int = 1, init: str | None = None,
                  threads: int = 1, device: str = "cpu", dtype: str = "float32", seed: int = 0,
                  progress: Callable[[CoupledTiming], None] | None = None) -> list[CoupledTiming]:
    """The online protocol's wall-clock: the solver alone, then with each closure (no file I/O), each
    after an untimed warm-up of ``min(steps, 4 every)`` steps.

    All runs share the configuration the first closure implies (e.g. the dong2026 reduced model
    for a ``missing-physics`` artifact: advection off, cn-euler), so the solver-only row is the
    same equation without the closure term. Each row splits its wall time into solver, network and
    coupling (module docstring), all measured in that row's run.
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
    warm = min(steps, 4 * every)
    for spec in [None, *closures]:
        # an untimed short run first (its own closure instance): compiled kernels, FFTW plans and the
        # artifact's first (profiling) calls are paid there, not by whichever row happens to run first
        online = None if spec is None else setup(spec)
        cfg = base_cfg if online is None else online.config
        Simulation(cfg.replace(t_end=warm * base_cfg.dt, save_every=warm * base_cfg.dt),
                   closure=None if online is None else online.closure, threads=threads).run(None)
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
                            network_s=float(d.get("closure_model_seconds", 0.0) or 0.0),
                            notes=list(online.notes) if online is not None else [])
        rows.append(row)
        if progress is not None:
            progress(row)
    for r in rows:
        r.overhead = r.wall_s / rows[0].wall_s
    return rows
