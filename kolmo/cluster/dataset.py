"""A dataset build's batches on Dask workers (``kolmo dataset --workers N`` / ``--scheduler ADDRESS``).

The unit of work is one batch of :func:`kolmo.dataset.DatasetSpec.batches` (``members_per_batch``
trajectories, 1 by default): :func:`compute_batch` integrates it on a worker and returns the
float32 coarse vorticity and closure ``(members, T, N_c, N_c)`` and its timings. It is a pure
function of its arguments (trajectory ``j`` depends only on ``(seed, j)``), so a task whose
worker dies is simply run again elsewhere (by the scheduler, up to its ``allowed-failures``), and
one that raises is retried :data:`~kolmo.cluster.client.TASK_RETRIES` time(s).

Only the client writes the file (:func:`kolmo.dataset.build_dataset` consumes
:func:`distributed_batches` in completion order and writes each batch at its fixed rows, then
marks it done), so an interrupted build resumes like a serial one and the arrays, hence the
fingerprint, are those of the serial build:

* same batches (``members_per_batch`` is part of the build arguments), same code, 1 FFTW thread;
* same FFT plans: the client plans every batch shape first and every task installs the client's
  wisdom before planning (:mod:`kolmo.cluster.wisdom`); without it each worker would measure
  its own plans and round differently.
"""

from __future__ import annotations

from typing import Any, Iterator

import numpy as np

from kolmo.cluster.client import TASK_RETRIES, open_client, require_distributed
from kolmo.cluster.wisdom import ClientWisdom
from kolmo.dataset import BatchResult, DatasetSpec, batch_solvers, integrate_batch
from kolmo.presets import Config

__all__ = ["plan_batches", "compute_batch", "distributed_batches"]


def plan_batches(spec: DatasetSpec, cfg: Config, sizes: set[int], backend: str, planner: str) -> ClientWisdom | None:
    """Plan, in this process, every FFT a batch of each size in ``sizes`` uses (one recording step
    each), and return the wisdom to ship (``None`` for the NumPy backend, which has no plans)."""
    if backend != "fftw":
        return None
    for m in sorted(sizes):
        sim, rec = batch_solvers(spec, cfg, 0, m, backend, 1, planner)
        rec.before_step()
        sim.advance()
        rec.after_step()
    return ClientWisdom.of_this_process()


def compute_batch(spec: DatasetSpec, cfg: Config, steps: np.ndarray, start: int, members: int, backend: str,
                  planner: str, wisdom: ClientWisdom | None) -> tuple[np.ndarray, np.ndarray, dict[str, float]]:
    """The task: trajectories ``start … start+members−1`` with the client's FFT plans, 1 FFTW thread."""
    if wisdom is not None:
        wisdom.install()
    vort, clos, times = integrate_batch(spec, cfg, steps, start, members, backend, 1, planner, None)
    if wisdom is not None:
        wisdom.verify(f"dataset batch of trajectories {start}-{start + members - 1}")
    return vort, clos, times


def distributed_batches(cluster: Any, spec: DatasetSpec, cfg: Config, steps: np.ndarray,
                        todo: list[tuple[int, int, int]], backend: str, planner: str) -> Iterator[BatchResult]:
    """Submit every batch of ``todo`` (``(index, first trajectory, members)``) and yield each result
    as soon as it completes, in completion order.

    ``cluster``: :class:`~kolmo.cluster.ClusterOptions` or an open ``distributed.Client``. Closing
    the generator (an error or interrupt in the consumer) cancels what is still queued.
    """
    if not todo:
        return
    distributed = require_distributed()
    wisdom = plan_batches(spec, cfg, {m for _, _, m in todo}, backend, planner)
    with open_client(cluster) as client:  # a Client is used as it is (build_dataset passes its own)
        futures = {client.submit(compute_batch, spec, cfg, steps, s, m, backend, planner, wisdom, pure=False,
                                 retries=TASK_RETRIES, key=f"kolmo-dataset-batch-{s}-{_token()}"): (i, s, m)
                   for i, s, m in todo}
        try:
            for future in distributed.as_completed(futures):
                vort, clos, times = future.result()
                i, s, m = futures[future]
                future.release()
                yield i, s, m, vort, clos, times
        finally:
            client.cancel([f for f in futures if not f.done()])


def _token() -> str:
    import uuid

    return uuid.uuid4().hex[:12]
