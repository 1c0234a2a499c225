"""The Dask client of a distributed build or run: ``--workers N`` or ``--scheduler ADDRESS``.

``--workers N`` starts ``distributed.LocalCluster(n_workers=N, threads_per_worker=1,
processes=True)`` on this machine for the duration of the command; ``--scheduler ADDRESS``
connects to a running scheduler (``tcp://host:8786``, or the address of a
``dask_jobqueue.SLURMCluster``) and leaves it running. The two are mutually exclusive.

Every worker runs one single-threaded task at a time (FFTW threads = 1): the unit of work is a
batch of members, and parallelism comes from workers, not threads. Dask imports lazily: without
the extra, asking for workers raises :class:`~kolmo.errors.OptionalDependencyError` naming
``pip install kolmo[distributed]``; the serial path never imports it.
"""

from __future__ import annotations

import logging
import os
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterator

from kolmo.errors import ConfigurationError, OptionalDependencyError

__all__ = ["ClusterOptions", "require_distributed", "open_client", "TASK_RETRIES"]

#: Extra attempts of a task that raised (a worker that dies mid-task is a separate case: its task is
#: rescheduled by the scheduler, up to ``distributed.scheduler.allowed-failures`` = 3 times by default).
TASK_RETRIES = 1

_CONNECT_TIMEOUT = "20s"
#: Allocator settings the worker processes inherit from the client (dask's nanny would otherwise set
#: ``MALLOC_TRIM_THRESHOLD_=65536`` before spawning them: page faults cost ~2 µs per step here).
_INHERITED_ENV = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")


@dataclass(frozen=True)
class ClusterOptions:
    """Where the tasks run: ``workers`` local worker processes, or the cluster at ``scheduler``.

    Parameters
    ----------
    workers
        Start a local cluster of this many single-threaded worker processes (>= 1).
    scheduler
        Address of a running Dask scheduler (e.g. ``tcp://10.0.0.5:8786``).
    """

    workers: int | None = None
    scheduler: str | None = None

    def __post_init__(self) -> None:
        if self.workers is not None and self.scheduler is not None:
            raise ConfigurationError(
                f"--workers {self.workers} and --scheduler {self.scheduler} exclude each other: --workers N starts a "
                "local Dask cluster, --scheduler ADDRESS uses a running one; give one of them")
        if self.workers is not None and (isinstance(self.workers, bool) or not isinstance(self.workers, int)
                                         or self.workers < 1):
            raise ConfigurationError(f"--workers {self.workers!r}: expected an integer >= 1")
        if self.scheduler is not None and (not isinstance(self.scheduler, str) or not self.scheduler.strip()):
            raise ConfigurationError(f"--scheduler {self.scheduler!r}: expected a scheduler address such as "
                                     "tcp://host:8786")

    @property
    def requested(self) -> bool:
        """Whether a cluster was asked for at all."""
        return self.workers is not None or self.scheduler is not None

    def describe(self) -> str:
        if self.workers is not None:
            return f"local Dask cluster, {self.workers} worker process(es) x 1 thread"
        return f"Dask scheduler {self.scheduler}" if self.scheduler else "serial (no cluster)"


def require_distributed() -> Any:
    """The ``distributed`` module, or :class:`OptionalDependencyError` naming the extra to install."""
    try:
        import distributed
    except ImportError:
        raise OptionalDependencyError(
            "--workers / --scheduler need Dask's distributed scheduler, which is not installed; install it with "
            "`pip install kolmo[distributed]` (the serial build and run need nothing more)") from None
    return distributed


@contextmanager
def open_client(cluster: ClusterOptions | Any) -> Iterator[Any]:
    """A ``distributed.Client`` for ``cluster``, closed (with its local cluster) on exit.

    ``cluster`` may also be a ``distributed.Client`` already open (tests, notebooks): it is used
    as it is and left open.
    """
    if not isinstance(cluster, ClusterOptions):
        yield cluster
        return
    if not cluster.requested:
        raise ConfigurationError("open_client needs --workers N or --scheduler ADDRESS")
    distributed = require_distributed()
    import dask

    if cluster.workers is not None:
        environ = dict(dask.config.get("distributed.nanny.pre-spawn-environ", default={}) or {})
        environ.update({k: os.environ[k] for k in _INHERITED_ENV if k in os.environ})
        with dask.config.set({"distributed.nanny.pre-spawn-environ": environ}), \
                distributed.LocalCluster(n_workers=cluster.workers, threads_per_worker=1, processes=True,
                                         dashboard_address=None, silence_logs=logging.CRITICAL) as local, \
                distributed.Client(local) as client:
            yield client
        return
    try:
        client = distributed.Client(cluster.scheduler, timeout=_CONNECT_TIMEOUT)
    except (OSError, TimeoutError, ValueError) as exc:
        raise ConfigurationError(f"--scheduler {cluster.scheduler}: cannot connect to a Dask scheduler there "
                                 f"within {_CONNECT_TIMEOUT} ({exc}); expected the address of a running "
                                 "scheduler, e.g. tcp://host:8786") from None
    with client:
        yield client
