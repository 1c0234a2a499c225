r"""Training data: coarse (vorticity, closure) pairs from fine-grid truth runs (``kolmo dataset``).

The fine truth is integrated in batches of members; after the burn-in, at every recording
time :math:`t_n = n\Delta t` the coarse vorticity and the closure term are computed from the
fine state and stored on the coarse grid (layout and reader: :mod:`kolmo.pairs`).

Targets
-------
Names, definitions and coarse models live in :mod:`kolmo.targets`; this module computes them.

``missing-physics`` (dong2026 default) / ``missing-physics-noisy``
    Coarse vorticity :math:`\bar\omega = S\omega` with :math:`S` = take every
    :math:`(N_f/N_c)`-th grid point (no filter). Closure

    .. math:: H^n = S\big[-P_f(u\cdot\nabla\omega)(t_n)\big] \quad [+\, S\sigma_W\xi^n\ \text{(noisy)}]

    evaluated on the fine grid at the recording step: the dealiased advection of the state at
    :math:`t_n`, and for the noisy variant the Q-Wiener noise drawn for the step
    :math:`t_n \to t_n + \Delta t`. The coarse model has no advection and steps with
    ``cn-euler``; it draws its own noise for ``missing-physics`` and none for the noisy variant
    (:meth:`DatasetSpec.coarse_config`), i.e. the paper's reduced model
    :math:`\hat\omega^{n+1} = [\hat\omega^n + \Delta t(\hat f + \hat H^n) + \sigma_W\Delta\hat W - \tfrac12\Delta t\nu|k|^2
    \hat\omega^n]/(1 + \tfrac12\Delta t\nu|k|^2)` (with drag μ where the preset has one). The noisy
    variant's file states its irreducible error floor (``stats["irreducible_floor"]``,
    :func:`kolmo.targets.noise_floor`).
``sgs`` / ``sgs-resolved`` (kolmogorov LES)
    Coarse vorticity :math:`\bar\omega = T G\omega` with :math:`T` the sharp spectral truncation
    to the coarse grid's modes (:func:`kolmo.coarse.truncate_hat`) and :math:`G` an optional
    Gaussian filter (``filter="gaussian"``; identity for ``"sharp"``). Closure :math:`-\tau` with

    .. math:: \tau = T G\,P_f(u\cdot\nabla\omega) - P_c(\bar u\cdot\nabla\bar\omega),

    :math:`P_c(\bar u\cdot\nabla\bar\omega)` computed by a coarse :class:`~kolmo.equation.VorticityEquation`
    (its own 2/3 rule); ``sgs-resolved`` stores :math:`-P_c\tau` (the coarse 2/3 band only). The
    coarse model keeps its advection and adds the closure; then
    :math:`\mathrm{RHS}_c(\bar\omega) - \tau = T G\,\mathrm{RHS}_f(\omega)` to round-off (for the
    Gaussian filter up to the forcing, which the coarse model takes unfiltered). The noise of a
    stochastic preset is not part of τ: the coarse model draws its own.

Trajectories, batches and the split
-----------------------------------
Trajectory ``j`` (0-based) is member ``j`` of the fine run: its initial condition and noise
depend only on ``(seed, j)`` (:func:`kolmo.forcing.member_generators`). Batch ``b`` integrates
members ``[bB, min((b+1)B, n))`` (``B`` = ``members_per_batch``) with ``Config.first_member = bB``.
**Split rule**: trajectories ``0 … n−m−1`` are ``train``, the last ``m`` (``test_trajectories``)
are ``test``; the split is by trajectory, never by snapshot.

Recording times are ``burn_in + k·every`` for ``k = 0, 1, …`` while below ``t_end`` (half-open:
the paper's t ∈ [20, 40) every 0.1 gives 200 per trajectory). ``every`` must be a whole number of
time steps: if the preset's Δt does not divide it, Δt is lowered to ``every / ceil(every/Δt)``
(e.g. kolmogorov at 256², every 0.1: Δt = 0.1/58); ``burn_in`` must then be a whole number of steps.

Files and resuming
------------------
(The file's layout, resume checks and finalisation: :mod:`kolmo.dataset_file`; the closure terms:
:mod:`kolmo.closure_terms`.) The file is built as ``OUT.partial``; every dataset is preallocated at full size, each finished
batch is written at its fixed rows and then marked in the per-trajectory ``done`` mask. Rerunning
with the same arguments resumes: finished batches are skipped, unfinished ones recomputed
from the start. Batch composition and arithmetic do not depend on the interruption, so the
final arrays (and the content fingerprint) equal an uninterrupted build's. FFTW threads are not
part of the arguments checked; bit-identity assumes the same FFTW wisdom (``kolmo.fft``). At
the end the train statistics and the fingerprint are computed and ``OUT.partial`` is renamed.

On Dask (``cluster=``, ``kolmo dataset --workers N`` / ``--scheduler ADDRESS``) the batches are the
tasks (:mod:`kolmo.cluster.dataset`): this process plans every FFT shape, ships its FFTW wisdom
with the tasks, and writes each returned batch exactly as the serial loop would, so the file,
its resume and its fingerprint are those of the serial build in this process.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import time as _time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from kolmo import __version__
from kolmo.closure_terms import MissingPhysicsRecorder, Recorder, SGSRecorder, \
    coarse_equation, missing_physics_closure_hat, sgs_closure_hat  # noqa: F401 - the closures re-exported here
from kolmo.coarse import coarsening_factor
from kolmo.dataset_file import COARSE_GRAININGS, SPLIT_RULE, create, done_mask, finalize, open_partial, \
    write_batch  # noqa: F401 - SPLIT_RULE re-exported here
from kolmo.errors import ConfigurationError, NonFiniteError, OutputExistsError
from kolmo.io import partial_path, to_json
from kolmo.presets import PRESETS, Config, preset
from kolmo.simulation import Simulation
from kolmo.targets import DEFAULT_TARGETS, get_target, reduced_model

_BUILDER_FIELDS = ("n", "members", "first_member", "seed", "t_end", "save_every", "preset")


# ---------------------------------------------------------------------------------------------- spec
@dataclass(frozen=True)
class DatasetSpec:
    """Everything that defines a dataset's content (the ``kolmo dataset`` arguments).

    Defaults reproduce the paper's dataset: dong2026, 256² → 64², 100 trajectories (90 train /
    10 test), burn-in 20, recordings every 0.1 for t ∈ [20, 40) → 18,000 / 2,000 pairs.

    Attributes
    ----------
    preset
        ``dong2026`` or ``kolmogorov`` (physics of the fine run, :func:`kolmo.presets.preset`).
    fine, coarse
        Grid points per side of the truth run and of the coarse model (``coarse`` divides ``fine``).
    trajectories, test_trajectories
        Number of trajectories in all, and how many (the last ones) form the test split.
    burn_in, t_end, every
        Discarded spin-up time, end time, recording interval (preset time units).
    members_per_batch
        Trajectories integrated together (memory and speed only; fixed for a build and its resume).
        Default 1: at 256² batching is slower per member on the 2-core test machine (2.2 ms per
        member-step at B = 1, 2.75 at B = 2 and 4: the working set leaves the cache), and an
        interrupt then loses at most one trajectory. At 64² batches of 2–4 are ~1.5× faster.
    seed
        Root seed; trajectory ``j`` uses streams of ``(seed, j)``.
    target
        ``missing-physics`` or ``sgs`` (default: by preset).
    filter
        Coarse-graining: ``subsample`` (missing-physics, the only choice), ``sharp`` (sgs default)
        or ``gaussian`` (sgs).
    overrides
        Extra fine-run :class:`~kolmo.presets.Config` fields (e.g. ``{"stepper": "cn-euler"}``).
    """

    preset: str = "dong2026"
    fine: int = 256
    coarse: int = 64
    trajectories: int = 100
    test_trajectories: int = 10
    burn_in: float = 20.0
    t_end: float = 40.0
    every: float = 0.1
    members_per_batch: int = 1
    seed: int = 0
    target: str | None = None
    filter: str | None = None
    overrides: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.preset not in PRESETS:
            raise ConfigurationError(f"unknown preset {self.preset!r}; valid: {', '.join(PRESETS)}")
        target = self.target if self.target is not None else DEFAULT_TARGETS[self.preset]
        graining = get_target(target).coarse_grainings
        method = self.filter if self.filter is not None else graining[0]
        if method not in COARSE_GRAININGS:
            raise ConfigurationError(f"unknown filter {method!r}; valid: {', '.join(COARSE_GRAININGS)}")
        if method not in graining:
            raise ConfigurationError(
                f"filter {method!r} does not apply to target {target!r}: it coarse-grains by "
                f"{' or '.join(graining)}")
        object.__setattr__(self, "target", target)
        object.__setattr__(self, "filter", method)
        object.__setattr__(self, "overrides", dict(self.overrides))
        self._validate()

    def _validate(self) -> None:
        def bad(name: str, expected: str) -> ConfigurationError:
            return ConfigurationError(f"invalid {name} = {getattr(self, name)!r}: expected {expected}")

        for name in ("fine", "coarse", "trajectories", "members_per_batch"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
                raise bad(name, "a positive integer")
        if not isinstance(self.seed, (int, np.integer)) or self.seed < 0:
            raise bad("seed", "an integer >= 0")
        if not isinstance(self.test_trajectories, (int, np.integer)) or not 0 <= self.test_trajectories < self.trajectories:
            raise bad("test_trajectories", f"an integer in [0, trajectories = {self.trajectories}) (train must not be empty)")
        for name in ("burn_in", "t_end", "every"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v >= 0):
                raise bad(name, "a finite number >= 0")
        if self.every <= 0:
            raise bad("every", "a positive number")
        if self.t_end <= self.burn_in:
            raise bad("t_end", f"a time after the burn-in ({self.burn_in})")
        coarsening_factor(self.fine, self.coarse)
        clash = sorted(set(self.overrides) & set(_BUILDER_FIELDS))
        if clash:
            raise ConfigurationError(f"config field(s) {clash} are set by the dataset arguments, not overrides")
        self.fine_config()

    # ------------------------------------------------------------------ derived
    @property
    def train_trajectories(self) -> int:
        return self.trajectories - self.test_trajectories

    def fine_config(self) -> Config:
        """The fine truth run's :class:`Config` for batch 0 (``members_per_batch`` members).

        Δt is the preset's, lowered if needed so that ``every`` is a whole number of steps.
        """
        cfg = preset(self.preset, self.fine, **self.overrides)
        if not cfg.advection:
            raise ConfigurationError("the fine truth run needs advection (override advection=false is not allowed)")
        dt = cfg.dt
        ratio = self.every / dt
        if abs(ratio - round(ratio)) > 1e-9 * ratio or round(ratio) < 1:
            dt = self.every / math.ceil(ratio)
        burn = self.burn_in / dt
        if abs(burn - round(burn)) > 1e-6:
            raise ConfigurationError(
                f"burn-in {self.burn_in} is not a whole number of time steps (dt = {dt:.6g}); "
                f"choose a multiple of {dt:.6g}")
        return cfg.replace(dt=dt, t_end=self.t_end, save_every=self.every,
                           members=min(self.members_per_batch, self.trajectories), first_member=0,
                           seed=int(self.seed))

    def record_steps(self, dt: float | None = None) -> np.ndarray:
        """Fine-run step indices of the recordings, ``(T,)``: ``burn_in + k·every < t_end``."""
        dt = self.fine_config().dt if dt is None else dt
        burn = int(round(self.burn_in / dt))
        every = int(round(self.every / dt))
        count = max(1, math.ceil((self.t_end - self.burn_in) / self.every - 1e-9))
        return burn + every * np.arange(count, dtype=np.int64)

    def coarse_config(self) -> Config:
        """The coarse model the closure completes, on the ``coarse`` grid (one member).

        :func:`kolmo.targets.reduced_model` of the fine physics on the coarse grid: for
        ``missing-physics`` no advection, the solver's own noise, stepper ``cn-euler`` (the paper's
        reduced model); for ``sgs`` targets the fine physics (own advection).
        """
        cfg = self.fine_config().replace(n=self.coarse, members=1, first_member=0)
        return reduced_model(cfg, str(self.target))

    def batches(self) -> list[tuple[int, int]]:
        """``(first trajectory, members)`` of every batch, in order."""
        b = int(self.members_per_batch)
        return [(s, min(b, self.trajectories - s)) for s in range(0, self.trajectories, b)]

    def locate(self, j: int) -> tuple[str, int]:
        """Split and position within the split of trajectory ``j``."""
        return ("train", j) if j < self.train_trajectories else ("test", j - self.train_trajectories)

    def build_arguments(self) -> dict[str, Any]:
        """What must match for a partial file to be resumed (the spec plus the software version)."""
        args = dataclasses.asdict(self)
        args["kolmo_version"] = __version__
        return json.loads(to_json(args))


# ---------------------------------------------------------------------------------------------- progress
@dataclass(frozen=True)
class BuildProgress:
    """What the progress callback of :func:`build_dataset` receives.

    ``phase`` is ``"start"`` (once, after resuming), ``"step"`` (every recording; serial builds only),
    ``"batch"`` (a batch was written) or ``"finalize"`` (statistics and fingerprint).
    ``work_*`` count member-steps of this call (for an ETA).
    """

    phase: str
    batch: int
    batches: int
    first_trajectory: int
    members: int
    step: int
    steps: int
    work_done: int
    work_total: int
    trajectories_done: int
    trajectories: int
    pairs_written: int
    elapsed: float


@dataclass
class DatasetSummary:
    """What :func:`build_dataset` reports. Seconds are wall-clock within this call."""

    path: Path
    spec: DatasetSpec
    pairs_total: int
    pairs_written: int
    trajectories_computed: int
    trajectories_resumed: int
    wall_seconds: float
    setup_seconds: float
    solver_seconds: float
    closure_seconds: float
    io_seconds: float
    finalize_seconds: float
    fingerprint: str
    stats: dict[str, Any]
    dt: float
    where: str = "serial"  # "serial", or the Dask cluster (then the solver/closure/setup seconds are summed over workers)

    @property
    def pairs_per_second(self) -> float:
        return self.pairs_written / self.wall_seconds if self.wall_seconds > 0 else float("nan")

    @property
    def overhead_seconds(self) -> float:
        """Closure evaluation + I/O + statistics/fingerprint: everything beyond the solver and setup."""
        return self.closure_seconds + self.io_seconds + self.finalize_seconds

    @property
    def overhead_vs_solver(self) -> float:
        """Overhead relative to the solver alone."""
        return self.overhead_seconds / self.solver_seconds if self.solver_seconds > 0 else float("nan")

    @property
    def overhead_share(self) -> float:
        """Overhead as a share of the wall-clock."""
        return self.overhead_seconds / self.wall_seconds if self.wall_seconds > 0 else float("nan")



# ---------------------------------------------------------------------------------------------- build
#: A computed batch: ``(batch index, first trajectory, members, vorticity, closure, timings)`` with float32
#: ``(members, T, N_c, N_c)`` arrays.
BatchResult = tuple[int, int, int, np.ndarray, np.ndarray, dict[str, float]]

def batch_solvers(spec: DatasetSpec, cfg: Config, start: int, members: int, backend: str, threads: int,
                  planner: str) -> tuple[Simulation, Recorder]:
    """The fine :class:`Simulation` of trajectories ``start … start+members−1`` and its target's recorder
    (every FFT of the batch is planned here)."""
    sim = Simulation(cfg.replace(members=members, first_member=start), backend=backend, threads=threads,
                     planner=planner)
    target = get_target(str(spec.target))
    rec: Recorder
    if not target.advection:
        rec = MissingPhysicsRecorder(sim, spec.coarse, target.includes_noise)
    else:
        rec = SGSRecorder(sim, spec, backend, threads, planner)
    return sim, rec


def integrate_batch(spec: DatasetSpec, cfg: Config, steps: np.ndarray, start: int, members: int,
                    backend: str, threads: int, planner: str,
                    on_step: Callable[[int], None] | None) -> tuple[np.ndarray, np.ndarray, dict[str, float]]:
    """Fine run of trajectories ``start … start+members−1``; returns float32 ``(members, T, N_c, N_c)``
    coarse vorticity and closure, and timings."""
    t0 = _time.perf_counter()
    sim, rec = batch_solvers(spec, cfg, start, members, backend, threads, planner)
    t_count, nc = len(steps), spec.coarse
    vort = np.empty((members, t_count, nc, nc), dtype=np.float32)
    clos = np.empty_like(vort)
    times = {"setup": _time.perf_counter() - t0, "closure": 0.0}
    last = int(steps[-1]) + 1  # one more step: the noise of the step starting at the last recording
    k = 0
    sim.check()
    while sim.step < last:
        recording = k < t_count and sim.step == steps[k]
        if recording:
            tc = _time.perf_counter()
            rec.before_step()
            times["closure"] += _time.perf_counter() - tc
        sim.advance()
        if recording:
            tc = _time.perf_counter()
            w, h = rec.after_step()
            vort[:, k], clos[:, k] = w, h
            times["closure"] += _time.perf_counter() - tc
            k += 1
        if sim.step % cfg.check_every == 0 or recording:
            sim.check()
        if on_step is not None and (recording or sim.step == last):
            on_step(sim.step)
    times["solver"] = sim.solver_seconds
    for name, arr in (("vorticity", vort), ("closure", clos)):
        if not np.isfinite(arr).all():
            m = int(np.argmin(np.isfinite(arr).all(axis=(1, 2, 3))))
            raise NonFiniteError(f"{spec.target} {name} of trajectory {start + m} holds NaN or infinity")
    return vort, clos, times

def _serial_batches(spec: DatasetSpec, cfg: Config, steps: np.ndarray, todo: list[tuple[int, int, int]],
                    backend: str, threads: int, planner: str,
                    on_step: Callable[[int, int, int, int], None] | None) -> Iterator[BatchResult]:
    """The batches of ``todo`` computed here, one after the other, in order."""
    for i, s, m in todo:
        step_cb = (lambda step, i=i, s=s, m=m: on_step(i, s, m, step)) if on_step is not None else None
        yield (i, s, m, *integrate_batch(spec, cfg, steps, s, m, backend, threads, planner, step_cb))


def build_dataset(spec: DatasetSpec, out: str | os.PathLike, *, overwrite: bool = False, threads: int = 1,
                  backend: str = "fftw", planner: str = "measure",
                  progress: Callable[[BuildProgress], None] | None = None,
                  cluster: Any = None) -> DatasetSummary:
    """Build (or resume) the dataset ``spec`` into ``out``; the CLI's ``kolmo dataset``.

    Work happens in ``out.partial``: rerunning with the same ``spec`` after an interrupt resumes
    it without recomputing finished batches. ``out`` existing raises :class:`OutputExistsError`
    unless ``overwrite`` (which also discards an unfinished build and replaces ``out`` at the end).
    A partial file built with other arguments raises :class:`ConfigurationError` naming the
    differences; a corrupt one :class:`FileFormatError`; neither is touched.

    ``cluster`` (a :class:`kolmo.cluster.ClusterOptions` asking for workers or a scheduler, or an
    open ``distributed.Client``) computes the batches on Dask workers
    (:func:`kolmo.cluster.dataset.distributed_batches`): they return the arrays, this process
    writes them as they complete, in any order, at their fixed rows. The file and its
    fingerprint equal the serial build's; progress then comes once per finished batch.
    """
    t_start = _time.perf_counter()
    final = Path(out)
    part = partial_path(final)
    if final.exists() and not overwrite:
        raise OutputExistsError(f"output file {final} already exists; choose another name or pass --overwrite")
    distributed = cluster is not None and getattr(cluster, "requested", True)
    if distributed and threads != 1:
        raise ConfigurationError(f"--threads {threads} with Dask workers: every worker runs one task with 1 FFTW "
                                 "thread (start more workers instead)")
    cfg = spec.fine_config()
    steps = spec.record_steps(cfg.dt)
    with contextlib.ExitStack() as stack:
        client = None
        if distributed:  # connect (or start the local cluster) before any file is touched
            from kolmo.cluster.client import open_client

            client = stack.enter_context(open_client(cluster))
        if part.exists() and overwrite:
            part.unlink()
        h5 = open_partial(part, spec) if part.exists() else create(part, spec, cfg, steps, backend)
        summary = _build(spec, h5, part, cfg, steps, client, threads, backend, planner, progress, t_start)
    if final.exists() and not overwrite:
        raise OutputExistsError(f"{final} appeared during the build; the result is kept in {part}")
    os.replace(part, final)
    summary.path = final
    summary.wall_seconds = _time.perf_counter() - t_start
    summary.where = _where(cluster) if distributed else "serial"
    return summary


def _build(spec: DatasetSpec, h5: Any, part: Path, cfg: Config, steps: np.ndarray, client: Any, threads: int,
           backend: str, planner: str, progress: Callable[[BuildProgress], None] | None,
           t_start: float) -> DatasetSummary:
    """The batches still to do (here, or on ``client``'s workers), each written as it arrives, then the
    statistics and fingerprint; closes ``h5``."""
    t_count = len(steps)
    timing = {"setup": 0.0, "solver": 0.0, "closure": 0.0, "io": 0.0, "finalize": 0.0}
    computed = 0
    try:
        done = done_mask(h5)
        resumed = int(done.sum())
        batches = spec.batches()
        todo = [(i, s, m) for i, (s, m) in enumerate(batches) if not done[s:s + m].all()]
        nsteps = int(steps[-1]) + 1
        work_total = sum(m for _, _, m in todo) * nsteps
        state = {"work": 0, "done": int(sum(m for s, m in batches if done[s:s + m].all()))}

        def event(phase: str, i: int, s: int, m: int, step: int) -> BuildProgress:
            return BuildProgress(phase, i, len(batches), s, m, step, nsteps, state["work"] + m * step, work_total,
                                 state["done"], spec.trajectories, computed * t_count,
                                 _time.perf_counter() - t_start)

        if progress is not None:
            progress(event("start", 0, 0, 0, 0))
        if client is not None:
            from kolmo.cluster.dataset import distributed_batches

            results = distributed_batches(client, spec, cfg, steps, todo, backend, planner)
        else:
            on_step = (lambda i, s, m, step: progress(event("step", i, s, m, step))) if progress else None
            results = _serial_batches(spec, cfg, steps, todo, backend, threads, planner, on_step)
        with contextlib.closing(results):
            for i, s, m, vort, clos, t in results:
                for k in ("setup", "solver", "closure"):
                    timing[k] += t[k]
                tw = _time.perf_counter()
                write_batch(h5, spec, s, vort, clos)
                timing["io"] += _time.perf_counter() - tw
                computed += m
                state["work"] += m * nsteps
                state["done"] += m
                if progress is not None:
                    progress(event("batch", i, s, m, 0))
        if progress is not None:
            progress(event("finalize", len(batches), 0, 0, 0))
        tf = _time.perf_counter()
        stats, fp = finalize(h5, part, spec, cfg)
        timing["finalize"] = _time.perf_counter() - tf
    finally:
        h5.close()
    return DatasetSummary(
        path=part, spec=spec, pairs_total=spec.trajectories * t_count, pairs_written=computed * t_count,
        trajectories_computed=computed, trajectories_resumed=resumed,
        wall_seconds=_time.perf_counter() - t_start, setup_seconds=timing["setup"],
        solver_seconds=timing["solver"], closure_seconds=timing["closure"], io_seconds=timing["io"],
        finalize_seconds=timing["finalize"], fingerprint=fp, stats=stats, dt=cfg.dt)


def _where(cluster: Any) -> str:
    describe = getattr(cluster, "describe", None)
    return describe() if callable(describe) else "Dask client"
