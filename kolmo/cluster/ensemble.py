r"""An ensemble run integrated in batches of members, on Dask workers or here (``kolmo run --members B
--workers N``, ``--members-per-batch c``), written into one run file by the client.

Members are independent: member ``i`` draws its initial condition and noise from streams of
``(seed, first_member + i)`` only (:func:`kolmo.forcing.member_generators`), every kernel works
member by member, and the stability guard checks each member. The unit of work is a batch of
``c`` consecutive members (``members_per_batch``; 1 by default with workers):
:func:`integrate_members` runs it as a :class:`~kolmo.simulation.Simulation` with
``first_member`` set, on the client's FFT plans (:mod:`kolmo.cluster.wisdom`), and returns its
snapshots, spectra, per-step diagnostics, final state and closure counters. The client writes each
batch into its member columns of one run file (the layout of :mod:`kolmo.io`) as it completes.

What the file equals
--------------------
FFTW's plan for a batch of ``c`` transforms is not always the algorithm it uses for ``B``:
measured here, the batched forward transform of 2 or 4 fields differs in the last bits from one
field at a time at 64² and 128² (identical at 32² and 256²), and a turbulent flow grows such
differences. So a run integrated in batches of ``c`` members is defined by ``c``, not by the number
of workers: it equals, bit for bit, the same command with any other ``--workers``, or with none
(``kolmo run --members B --members-per-batch c`` runs the batches one after the other here), and
with ``c = 1`` each member equals the one-member run ``--members 1 --set first_member=i``. It equals
the one-batch serial run ``kolmo run --members B`` exactly when ``c >= B``, and otherwise to the
round-off of the FFTs (the file records ``members_per_batch``).

Refused, because equality could not be kept
-------------------------------------------
* a closure whose members share state: an artifact closure draws the samples of all members from
  one generator in one batched network call, so a member's samples depend on the batch
  (:func:`coupling.online.member_closure_factory` refuses it);
* ``--resume`` of a run integrated in batches of ``c < B``: the serial resume integrates all
  members as one batch (:meth:`kolmo.io.RunWriter.reopen` refuses it);
* an interrupted batched run leaves ``OUT.partial`` without a restart state (the members'
  histories end at different times); rerun it with ``--overwrite``.

A blow-up ends the run as the serial run would: at the first checked step at which any member
blew up, the file keeps the snapshots before it and the diagnostics up to it, names the member
the serial guard names, and holds no restart state (the other batches ran on).
"""

from __future__ import annotations

import contextlib
import time as _time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from kolmo import diagnostics
from kolmo.cluster.client import TASK_RETRIES, open_client, require_distributed
from kolmo.cluster.wisdom import ClientWisdom
from kolmo.errors import BlowUpError, ConfigurationError, ShapeError
from kolmo.io import RunWriter, load_snapshot
from kolmo.presets import Config
from kolmo.simulation import (CLOSURE_DIAGNOSTICS, DIAGNOSTICS, ClosureHook, RunSummary, Simulation, closure_attrs,
                              file_attrs)

__all__ = ["MemberBatch", "EnsembleProgress", "member_batches", "plan_members", "integrate_members", "run_ensemble"]

#: Builds a fresh closure (or ``None``) in the process that runs a batch (picklable for Dask).
ClosureFactory = Callable[[], "ClosureHook | None"]


@dataclass
class MemberBatch:
    """What :func:`integrate_members` returns for members ``start … start+members−1`` (offsets in the run).

    Shapes: ``vorticity`` float32 ``(T, c, N, N)``, ``energy_spectra``/``enstrophy_spectra``
    ``(T, c, K)``, ``diagnostics[name]`` ``(S, c)``; ``snapshot_steps`` ``(T,)``,
    ``diagnostic_steps`` ``(S,)``. ``blowup`` is ``None`` or the guard's error (then ``cfl`` holds
    the members' CFL numbers at that step, to name the member the serial guard would name).
    """

    start: int
    members: int
    snapshot_steps: np.ndarray
    vorticity: np.ndarray
    energy_spectra: np.ndarray
    enstrophy_spectra: np.ndarray
    diagnostic_steps: np.ndarray
    diagnostics: dict[str, np.ndarray]
    final: dict[str, np.ndarray]
    restart: dict[str, Any]
    closure: dict[str, Any]
    solver_seconds: float
    closure_seconds: float
    blowup: BlowUpError | None = None
    cfl: np.ndarray | None = None


@dataclass(frozen=True)
class EnsembleProgress:
    """What the progress callback of :func:`run_ensemble` receives after each finished batch."""

    batches_done: int
    batches: int
    members_done: int
    members: int
    elapsed: float


class _Recording:
    """Stands in for :class:`~kolmo.io.RunWriter` inside a task: keeps what the run loop writes."""

    def __init__(self) -> None:
        self.snap_steps: list[int] = []
        self.vorticity: list[np.ndarray] = []
        self.e_spec: list[np.ndarray] = []
        self.z_spec: list[np.ndarray] = []
        self.diag_steps: list[np.ndarray] = []
        self.diag: dict[str, list[np.ndarray]] = {}
        self.restart: dict[str, Any] = {}

    def append_snapshot(self, step: int, time: float, omega: np.ndarray, e_spec: np.ndarray,
                        z_spec: np.ndarray) -> None:
        self.snap_steps.append(int(step))
        self.vorticity.append(omega.astype(np.float32))
        self.e_spec.append(np.array(e_spec, dtype=np.float64))
        self.z_spec.append(np.array(z_spec, dtype=np.float64))

    def append_diagnostics(self, steps: np.ndarray, times: np.ndarray, values: dict[str, np.ndarray]) -> None:
        self.diag_steps.append(np.array(steps, dtype=np.int64))
        for name, arr in values.items():
            self.diag.setdefault(name, []).append(np.array(arr, dtype=np.float64))

    def save_restart(self, omega_hat: np.ndarray, step: int, time: float, rng_states: Any,
                     closure_state: dict[str, Any] | None = None) -> None:
        self.restart = {"omega_hat": omega_hat.copy(), "step": int(step), "rng_states": rng_states,
                        "closure": closure_state or {}}


def member_batches(members: int, per_batch: int) -> list[tuple[int, int]]:
    """``(first member offset, members)`` of every batch, in order."""
    return [(s, min(per_batch, members - s)) for s in range(0, members, per_batch)]


def _batch_config(config: Config, start: int, members: int) -> Config:
    return config.replace(members=members, first_member=config.first_member + start)


def _initial_slices(config: Config) -> np.ndarray | None:
    """The run's initial vorticity from ``--init`` (``(B, N, N)`` or ``(1, N, N)``), else ``None``
    (the batches draw their own from the member streams)."""
    if config.initial != "file":
        return None
    omega0 = load_snapshot(str(config.initial_params["path"]), config.n)
    if omega0.shape[0] not in (1, config.members):
        raise ShapeError(f"initial vorticity has shape {omega0.shape}, expected ({config.members} or 1, "
                         f"{config.n}, {config.n})")
    return omega0


def _slice(omega0: np.ndarray | None, start: int, members: int) -> np.ndarray | None:
    if omega0 is None or omega0.shape[0] == 1:
        return omega0
    return omega0[start:start + members]


def integrate_members(config: Config, start: int, members: int, omega0: np.ndarray | None,
                      closure_factory: ClosureFactory | None, backend: str, threads: int, planner: str,
                      wisdom: ClientWisdom | None) -> MemberBatch:
    """The task: members ``start … start+members−1`` of ``config`` (offsets), from ``t = 0`` to ``t_end``.

    ``omega0``: their initial vorticity (``(members, N, N)`` or ``(1, N, N)``), or ``None`` to draw it.
    A blow-up is returned (``MemberBatch.blowup``), not raised: the client decides what the run keeps.
    """
    if wisdom is not None:
        wisdom.install()
    cfg = _batch_config(config, start, members)
    closure = closure_factory() if closure_factory is not None else None
    sim = Simulation(cfg, closure=closure, omega0=omega0, backend=backend, threads=threads, planner=planner)
    rec = _Recording()
    blowup, cfl = None, None
    try:
        sim.run(rec)  # type: ignore[arg-type]  # _Recording has the three RunWriter methods the loop calls
    except BlowUpError as exc:
        blowup, cfl = exc, sim.equation.speed * cfg.dt / sim.grid.dx
    if wisdom is not None:
        wisdom.verify(f"the run batch of members {cfg.first_member}-{cfg.first_member + members - 1}")
    names = list(rec.diag)
    return MemberBatch(
        start=start, members=members, snapshot_steps=np.asarray(rec.snap_steps, dtype=np.int64),
        vorticity=np.stack(rec.vorticity), energy_spectra=np.stack(rec.e_spec), enstrophy_spectra=np.stack(rec.z_spec),
        diagnostic_steps=np.concatenate(rec.diag_steps) if rec.diag_steps else np.zeros(0, dtype=np.int64),
        diagnostics={k: np.concatenate(rec.diag[k]) for k in names}, final=sim.scalar_diagnostics(),
        restart=rec.restart, closure=closure_attrs(sim.closure), solver_seconds=sim.solver_seconds,
        closure_seconds=sim.closure_seconds, blowup=blowup, cfl=cfl)


def plan_members(config: Config, sizes: set[int], closure_factory: ClosureFactory | None, omega0: np.ndarray | None,
                  backend: str, planner: str) -> tuple[dict[str, Any], bool, Any, ClientWisdom | None]:
    """Plan here every FFT a batch of each size uses (one step each, closure and snapshot included).

    Returns the run file's attributes (from the largest batch, before it steps), whether there is
    a closure, the grid, and the wisdom to ship (``None`` for the NumPy backend).
    """
    attrs: dict[str, Any] | None = None
    has_closure, grid = False, None
    for m in sorted(sizes, reverse=True):
        closure = closure_factory() if closure_factory is not None else None
        sim = Simulation(_batch_config(config, 0, m), closure=closure, omega0=_slice(omega0, 0, m), backend=backend,
                         planner=planner)
        if attrs is None:
            attrs = {**file_attrs(sim, backend), **closure_attrs(sim.closure), "config": config.to_json()}
            has_closure, grid = sim.closure is not None, sim.grid
        sim.advance()
        sim.vorticity()
    assert attrs is not None
    return attrs, has_closure, grid, (ClientWisdom.of_this_process() if backend == "fftw" else None)


def _local_batches(config: Config, batches: list[tuple[int, int]], omega0: np.ndarray | None,
                   closure_factory: ClosureFactory | None, backend: str, threads: int,
                   planner: str) -> Iterator[MemberBatch]:
    for s, m in batches:
        yield integrate_members(config, s, m, _slice(omega0, s, m), closure_factory, backend, threads, planner, None)


def _distributed_batches(client: Any, config: Config, batches: list[tuple[int, int]], omega0: np.ndarray | None,
                         closure_factory: ClosureFactory | None, backend: str, planner: str,
                         wisdom: ClientWisdom | None) -> Iterator[MemberBatch]:
    distributed = require_distributed()
    futures = [client.submit(integrate_members, config, s, m, _slice(omega0, s, m), closure_factory, backend, 1,
                             planner, wisdom, pure=False, retries=TASK_RETRIES,
                             key=f"kolmo-run-members-{config.first_member + s}-{_token()}")
               for s, m in batches]
    try:
        for future in distributed.as_completed(futures):
            result = future.result()
            future.release()
            yield result
    finally:
        client.cancel([f for f in futures if not f.done()])


def _token() -> str:
    import uuid

    return uuid.uuid4().hex[:12]


def _expected_steps(config: Config) -> tuple[np.ndarray, np.ndarray]:
    """Snapshot and diagnostic steps of a run that does not blow up (the run loop's rule)."""
    n, every = config.steps, config.save_interval
    snaps = [0] + [s for s in range(1, n + 1) if s % every == 0 or s == n]
    return np.asarray(snaps, dtype=np.int64), np.arange(1, n + 1, dtype=np.int64)


@dataclass
class _Assembly:
    """The client's state while batches arrive."""

    restart: dict[int, dict[str, Any]] = field(default_factory=dict)
    final: dict[int, dict[str, np.ndarray]] = field(default_factory=dict)
    closure: dict[int, dict[str, Any]] = field(default_factory=dict)
    blowups: list[tuple[BlowUpError, np.ndarray | None, int]] = field(default_factory=list)
    solver_seconds: float = 0.0
    closure_seconds: float = 0.0


def _write_batch(h5: Any, b: MemberBatch) -> None:
    cols = slice(b.start, b.start + b.members)
    t, s = len(b.snapshot_steps), len(b.diagnostic_steps)
    if not (np.array_equal(b.snapshot_steps, h5["step"][:t]) and np.array_equal(b.diagnostic_steps,
                                                                                h5["diagnostics/step"][:s])):
        raise RuntimeError(f"batch of members {b.start}-{b.start + b.members - 1} recorded other steps than the "
                           "run's (a kolmo bug; please report it)")
    h5["vorticity"][:t, cols] = b.vorticity
    h5["spectra/energy"][:t, cols] = b.energy_spectra
    h5["spectra/enstrophy"][:t, cols] = b.enstrophy_spectra
    for name, arr in b.diagnostics.items():
        h5["diagnostics"][name][:s, cols] = arr


def _serial_blowup(blowups: list[tuple[BlowUpError, np.ndarray | None, int]], first_member: int) -> BlowUpError:
    """The error the one-batch guard raises: the earliest step; there, a non-finite member (the lowest)
    before a CFL excess (the member with the largest CFL, the lowest of equals)."""
    step = min(e.step for e, _, _ in blowups)
    at = [(e, cfl, start) for e, cfl, start in blowups if e.step == step]
    nonfinite = [e for e, _, _ in at if e.reason == "non-finite"]
    if nonfinite:
        return min(nonfinite, key=lambda e: e.member)
    best: tuple[float, int, BlowUpError] | None = None
    for e, cfl, start in at:
        if cfl is None:
            continue
        m = int(np.argmax(cfl))
        key = (-float(cfl[m]), first_member + start + m, e)
        if best is None or key[:2] < best[:2]:
            best = key
    assert best is not None
    return best[2]


def run_ensemble(config: Config, out: str | Path, *, members_per_batch: int | None = None, cluster: Any = None,
                 closure_factory: ClosureFactory | None = None, overwrite: bool = False, backend: str = "fftw",
                 threads: int = 1, planner: str = "measure",
                 progress: Callable[[EnsembleProgress], None] | None = None) -> RunSummary:
    """Run ``config``'s members in batches of ``members_per_batch`` into one run file ``out``.

    Parameters
    ----------
    config
        The whole run (``members`` = B, ``first_member``, ...), as for :func:`kolmo.simulation.run_simulation`.
    members_per_batch
        Members integrated together, one task each (default: 1 with a cluster, B without).
    cluster
        :class:`~kolmo.cluster.ClusterOptions` or an open ``distributed.Client``; ``None`` runs the batches here.
    closure_factory
        Picklable callable building the closure in each batch's process (``None``: no closure).

    Returns the :class:`~kolmo.simulation.RunSummary` (``final`` per member, in member order).
    Raises :class:`BlowUpError` after writing the file with status ``blew-up`` (see the module docstring).
    """
    t0 = _time.perf_counter()
    distributed = cluster is not None and getattr(cluster, "requested", True)
    if distributed and threads != 1:
        raise ConfigurationError(f"--threads {threads} with Dask workers: every worker runs one task with 1 FFTW "
                                 "thread (start more workers instead)")
    per = members_per_batch if members_per_batch is not None else (1 if distributed else config.members)
    if isinstance(per, bool) or not isinstance(per, int) or per < 1:
        raise ConfigurationError(f"--members-per-batch {per!r}: expected an integer >= 1")
    per = min(per, config.members)
    batches = member_batches(config.members, per)
    omega0 = _initial_slices(config)
    with contextlib.ExitStack() as stack:
        client = stack.enter_context(open_client(cluster)) if distributed else None  # before any file is touched
        return _run(config, out, batches, per, omega0, client, closure_factory, overwrite, backend, threads, planner,
                    progress, t0)


def _run(config: Config, out: str | Path, batches: list[tuple[int, int]], per: int, omega0: np.ndarray | None,
         client: Any, closure_factory: ClosureFactory | None, overwrite: bool, backend: str, threads: int,
         planner: str, progress: Callable[[EnsembleProgress], None] | None, t0: float) -> RunSummary:
    """Plan, create the file, write the batches as they arrive (from ``client``'s workers, or computed
    here when it is ``None``), close."""
    attrs, has_closure, grid, wisdom = plan_members(config, {m for _, m in batches}, closure_factory, omega0,
                                                    backend, planner)
    names = DIAGNOSTICS + (CLOSURE_DIAGNOSTICS if has_closure else ())
    attrs.update(members_per_batch=per, members_per_batch_note=(
        "members integrated in batches of this size (kolmo.cluster.ensemble): the arrays equal any run with the "
        "same batches, whatever the number of workers"))
    members = np.arange(config.first_member, config.first_member + config.members)
    writer = RunWriter.create(out, attrs, config.n, config.L, members, diagnostics.spectrum_wavenumbers(grid),
                              names, overwrite=overwrite)
    snaps, dsteps = _expected_steps(config)
    h5 = writer.h5
    for name in ("time", "step", "vorticity", "spectra/energy", "spectra/enstrophy"):
        h5[name].resize(len(snaps), axis=0)
    h5["step"][:], h5["time"][:] = snaps, snaps * config.dt
    for d in h5["diagnostics"].values():
        d.resize(len(dsteps), axis=0)
    h5["diagnostics/step"][:], h5["diagnostics/time"][:] = dsteps, dsteps * config.dt
    results = (_distributed_batches(client, config, batches, omega0, closure_factory, backend, planner, wisdom)
               if client is not None else
               _local_batches(config, batches, omega0, closure_factory, backend, threads, planner))
    acc = _Assembly()
    try:
        with contextlib.closing(results):
            for done, b in enumerate(results, start=1):
                _write_batch(h5, b)
                acc.restart[b.start], acc.final[b.start], acc.closure[b.start] = b.restart, b.final, b.closure
                acc.solver_seconds += b.solver_seconds
                acc.closure_seconds += b.closure_seconds
                if b.blowup is not None:
                    acc.blowups.append((b.blowup, b.cfl, b.start))
                if progress is not None:
                    progress(EnsembleProgress(done, len(batches), sum(m for s, m in batches if s in acc.final),
                                              config.members, _time.perf_counter() - t0))
    except BaseException:
        writer.abandon()
        raise
    return _close(writer, config, batches, acc, _time.perf_counter() - t0)


def _close(writer: RunWriter, config: Config, batches: list[tuple[int, int]], acc: _Assembly,
           wall: float) -> RunSummary:
    """Restart state, counters and status; truncation and the serial guard's error after a blow-up."""
    h5 = writer.h5
    starts = [s for s, _ in batches]
    closure = dict(acc.closure[starts[0]])
    for key in ("closure_nonfinite_events", "closure_nonfinite_members"):  # summed over the batches
        if key in closure:
            closure[key] = int(sum(int(acc.closure[s][key]) for s in starts))
    writer.set_attrs(wall_seconds=wall, solver_seconds=acc.solver_seconds, closure_seconds=acc.closure_seconds,
                     **closure)
    if closure:
        writer.set_attrs(closure_fraction=acc.closure_seconds / acc.solver_seconds if acc.solver_seconds > 0 else 0.0)
    final = {k: np.concatenate([acc.final[s][k] for s in starts]) for k in acc.final[starts[0]]}
    if acc.blowups:
        error = _serial_blowup(acc.blowups, config.first_member)
        keep_snaps = int(np.searchsorted(h5["step"][()], error.step, side="left"))
        for name in ("time", "step", "vorticity", "spectra/energy", "spectra/enstrophy"):
            h5[name].resize(keep_snaps, axis=0)
        for d in h5["diagnostics"].values():
            d.resize(error.step, axis=0)
        writer.set_attrs(error=str(error), restart_note="no restart state: the batches' histories end at different "
                                                        "steps after a blow-up")
        writer.close("blew-up")
        raise error
    rng = [state for s in starts for state in acc.restart[s]["rng_states"]]
    omega_hat = np.concatenate([acc.restart[s]["omega_hat"] for s in starts])
    single = len(starts) == 1
    writer.save_restart(omega_hat, config.steps, config.steps * config.dt, rng,
                        acc.restart[starts[0]]["closure"] if single else None)
    path = writer.close("complete")
    return RunSummary(path=path, status="complete", steps=config.steps, time=config.steps * config.dt,
                      wall_seconds=wall, final=final, closure_seconds=acc.closure_seconds)
