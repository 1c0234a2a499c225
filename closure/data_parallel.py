"""Data-parallel training over the processes of ``torchrun``: one model replica per process, gradients averaged.

``torchrun --nproc-per-node N -m cli.main train …`` (or ``kolmo train --nproc N``) starts ``N`` processes and
sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT`` in each; those variables,
and only those, switch :func:`closure.training.train` to data-parallel mode (:func:`ranks_from_environment`).
The process group uses gloo on the CPU and nccl on CUDA (process ``r`` on GPU ``cuda:LOCAL_RANK``).

What one optimiser step computes (the same as one process with the same global batch ``B``)
-----------------------------------------------------------------------------------------------
* Every process holds the whole dataset and draws the same shuffling permutation from the same seeded
  generator (the :class:`~torch.utils.data.distributed.DistributedSampler` contract: same seed, every
  process, every epoch). Global batch ``k`` is rows ``perm[kB:(k+1)B]``, as in one process; process ``r``
  takes the contiguous shard ``r B/N … (r+1) B/N − 1`` of it (:meth:`DataParallel.shard`). ``B`` must be
  divisible by ``N`` (:class:`~closure.errors.ConfigurationError` otherwise), so ``--batch`` stays the
  global batch the user asked for.
* The random numbers of the path losses are the single-process draw of the whole batch, each process
  keeping its rows (:mod:`closure.batch_shard`).
* The loss of a shard is the mean over its ``B/N`` rows; the gradients are summed over the processes and
  divided by ``N`` (:meth:`DataParallel.average_gradients`): the mean over the global batch. The terms that
  couple the rows of a batch (MP neighbours, GA stress, batch KL) are computed on the whole batch gathered
  from the shards with a differentiable all-gather (:meth:`DataParallel.gather_rows`, whose backward sums
  the gradients of every process), so they too equal the single-process term and gradient.
* Only the floating-point summation order differs (the per-shard means, the all-reduce); on the CPU the
  per-epoch losses agree with one process to ~1e-7 relative (tests/closure/test_data_parallel.py asserts 1e-5).

Why not ``torch.nn.parallel.DistributedDataParallel``: training runs in phases that train different
parameter sets (autoencoders, then the generator with frozen coders), MeanFlow's loss calls the network
inside ``torch.func.jvp`` (forward-mode AD that DDP's forward hooks do not see), and the batch-coupled
terms need the gathered batch anyway. Averaging the gradients by hand after ``backward()`` (one flat
all-reduce per step) is exact for every family and phase, and the model is never wrapped, so its
``state_dict`` (and every checkpoint) has no ``module.`` prefix: checkpoints are the single-process ones.

Set-up work that every process needs (latents of all pairs, reflow couplings drawn by the teacher) is
split over the processes in the single-process chunks of 256 rows and assembled on every process
(:meth:`DataParallel.map_chunks`): bit-identical to one process. Validation runs on process 0 over the
whole validation set and its value is broadcast (the same number as one process). Process 0 alone writes
checkpoints, ``run.json`` and progress; the others are silent.
"""

from __future__ import annotations

import contextlib
import math
import os
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Mapping, Optional, Sequence

import torch
import torch.distributed as dist
from torch import Tensor, nn

from closure.errors import ConfigurationError, DeviceError
from coupling.artifact import resolve_device

__all__ = ["TORCHRUN_VARIABLES", "Ranks", "ranks_from_environment", "shard_rows", "check_processes", "DataParallel"]

TORCHRUN_VARIABLES = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")
"""The environment variables ``torchrun`` sets in each process; all present = data-parallel mode."""


@dataclass(frozen=True)
class Ranks:
    """Where this process stands: ``rank`` of ``world_size`` processes, ``local_rank`` on its machine."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def main(self) -> bool:
        """Process 0: the one that writes files and shows progress."""
        return self.rank == 0


def ranks_from_environment(environ: Optional[Mapping[str, str]] = None) -> Ranks:
    """The :class:`Ranks` that ``torchrun`` set in the environment; one process (rank 0 of 1) when none is set.

    Raises
    ------
    ConfigurationError
        Only some of :data:`TORCHRUN_VARIABLES` are set, or they are not consistent integers.
    """
    env = os.environ if environ is None else environ
    present = [k for k in TORCHRUN_VARIABLES if k in env]
    if not present:
        return Ranks()
    if len(present) < len(TORCHRUN_VARIABLES):
        missing = [k for k in TORCHRUN_VARIABLES if k not in env]
        raise ConfigurationError(f"torchrun environment is incomplete: {', '.join(present)} set but "
                                 f"{', '.join(missing)} not; expected all of {', '.join(TORCHRUN_VARIABLES)} "
                                 "(start with torchrun or kolmo train --nproc N)")
    try:
        rank, world, local = (int(env[k]) for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK"))
    except ValueError:
        raise ConfigurationError(f"torchrun environment RANK={env['RANK']!r} WORLD_SIZE={env['WORLD_SIZE']!r} "
                                 f"LOCAL_RANK={env['LOCAL_RANK']!r}; expected integers") from None
    if not (world >= 1 and 0 <= rank < world and 0 <= local <= rank):
        raise ConfigurationError(f"torchrun environment RANK={rank} WORLD_SIZE={world} LOCAL_RANK={local}; expected "
                                 "0 <= LOCAL_RANK <= RANK < WORLD_SIZE")
    return Ranks(rank, world, local)


def shard_rows(batch: int, world_size: int, rank: int, what: Optional[str] = None) -> slice:
    """Rows ``[r B/N, (r+1) B/N)`` of a global batch of ``B = batch`` rows for process ``rank`` of ``N = world_size``.

    Raises
    ------
    ConfigurationError
        ``batch`` is not divisible by ``world_size`` (naming both; ``what`` names the batch, default "batch B").
    """
    if world_size < 1 or batch % world_size:
        raise ConfigurationError(f"{what or f'batch {batch}'} is not divisible by the {world_size} training processes; "
                                 f"the batch is the global batch, split evenly: choose a multiple of {world_size}")
    rows = batch // world_size
    return slice(rank * rows, (rank + 1) * rows)


def check_processes(batch: int, device: str, nproc: int) -> None:
    """Refuse, before launching ``nproc`` processes, a ``--batch`` they cannot split evenly, an explicit GPU
    index (each process takes ``cuda:LOCAL_RANK``) or fewer GPUs than processes.

    Raises
    ------
    ConfigurationError, DeviceError
    """
    if nproc < 1:
        raise ConfigurationError(f"--nproc {nproc}; expected an integer >= 1")
    if batch % nproc:
        raise ConfigurationError(f"--batch {batch} is not divisible by --nproc {nproc}; the batch is the global batch, "
                                 f"split evenly over the processes: choose a multiple of {nproc}")
    dev = torch.device(device)
    if dev.type == "cuda":
        if dev.index is not None and nproc > 1:
            raise ConfigurationError(f"--device {device} with --nproc {nproc}: each process takes its own GPU "
                                     "(cuda:LOCAL_RANK); give --device cuda")
        resolve_device("cuda")
        if torch.cuda.device_count() < nproc:
            raise DeviceError(f"--nproc {nproc} on --device {device} needs one GPU per process; "
                              f"{torch.cuda.device_count()} visible")


class _GatherRows(torch.autograd.Function):
    """All-gather along rows (equal shard sizes); the backward sums the incoming gradient over the processes
    and returns this process's rows (each process computes the same loss of the gathered batch)."""

    @staticmethod
    def forward(ctx: Any, x: Tensor) -> Tensor:  # noqa: D102
        x = x.contiguous()
        parts = [torch.empty_like(x) for _ in range(dist.get_world_size())]
        dist.all_gather(parts, x)
        ctx.rows, ctx.rank = x.shape[0], dist.get_rank()
        return torch.cat(parts)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> Tensor:  # noqa: D102
        grad = grad.contiguous().clone()
        dist.all_reduce(grad)
        return grad[ctx.rank * ctx.rows:(ctx.rank + 1) * ctx.rows]


class DataParallel:
    """The processes of one training run and the few collective operations the trainer needs.

    With one process (no torchrun environment) every method is the identity or a no-op, so the trainer has
    one code path and a single-process run is unchanged bit for bit.

    Parameters
    ----------
    ranks : Ranks
        From :func:`ranks_from_environment`.
    device : torch.device
        This process's device (``cuda:LOCAL_RANK`` for a multi-process CUDA run).
    """

    def __init__(self, ranks: Ranks, device: torch.device) -> None:
        self.ranks, self.device = ranks, device
        self._owns_group = False

    @classmethod
    def from_environment(cls, device: str) -> "DataParallel":
        """The processes ``torchrun`` started, on ``device`` (``cpu`` or ``cuda``, checked; no fallback)."""
        ranks = ranks_from_environment()
        dev = resolve_device(device)
        if ranks.distributed and dev.type == "cuda":
            if dev.index is not None:
                raise ConfigurationError(f"device {device!r} under torchrun with {ranks.world_size} processes: each "
                                         "process takes cuda:LOCAL_RANK; give --device cuda")
            dev = resolve_device(f"cuda:{ranks.local_rank}")
        return cls(ranks, dev)

    @property
    def distributed(self) -> bool:
        return self.ranks.distributed

    @property
    def main(self) -> bool:
        return self.ranks.main

    @property
    def world_size(self) -> int:
        return self.ranks.world_size

    @property
    def backend(self) -> str:
        return "nccl" if self.device.type == "cuda" else "gloo"

    @contextlib.contextmanager
    def session(self) -> Iterator["DataParallel"]:
        """Join the process group (``init_process_group`` from the torchrun variables, then a barrier) and leave
        it (``destroy_process_group``) on the way out, also on an error."""
        if self.distributed and not dist.is_initialized():
            cuda = self.device.type == "cuda"
            if cuda:
                torch.cuda.set_device(self.device)
            dist.init_process_group(self.backend, init_method="env://", rank=self.ranks.rank,
                                    world_size=self.world_size, device_id=self.device if cuda else None)
            self._owns_group = True
        try:
            self.barrier()
            yield self
        finally:
            if self._owns_group:
                self._owns_group = False
                dist.destroy_process_group()

    # ------------------------------------------------------------------ batches
    def shard(self, batch: int) -> Optional[slice]:
        """This process's rows of a global batch of ``batch`` rows (``None`` with one process)."""
        if not self.distributed:
            return None
        return shard_rows(batch, self.world_size, self.ranks.rank)

    def gather_rows(self, x: Tensor) -> Tensor:
        """The whole batch ``(B, ...)`` from every process's shard ``(B/N, ...)``, in rank order (differentiable)."""
        return _GatherRows.apply(x) if self.distributed else x

    def average_gradients(self, params: Sequence[nn.Parameter]) -> None:
        """``grad ← (Σ_processes grad) / N`` for ``params``, in one all-reduce per dtype; a parameter without a
        gradient on every process keeps none (as in one process, where Adam then skips it)."""
        if not self.distributed:
            return
        groups: dict[tuple[torch.dtype, torch.device], list[nn.Parameter]] = {}
        for p in params:
            groups.setdefault((p.dtype, p.device), []).append(p)
        for (dtype, device), group in groups.items():
            grads = [(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1) for p in group]
            used = torch.tensor([p.grad is not None for p in group], dtype=dtype, device=device)
            flat = torch.cat(grads + [used])
            dist.all_reduce(flat)
            offset = 0
            for p, count in zip(group, flat[-len(group):].tolist()):
                size = p.numel()
                p.grad = (flat[offset:offset + size] / self.world_size).view_as(p).clone() if count > 0 else None
                offset += size

    def mean(self, values: Sequence[Tensor | float]) -> list[float]:
        """The mean over the processes of each scalar of ``values`` (as floats; one all-reduce)."""
        if not self.distributed:
            return [float(v) for v in values]
        flat = torch.tensor([float(v) for v in values], dtype=torch.float64, device=self.device)
        dist.all_reduce(flat)
        return (flat / self.world_size).tolist()

    # ------------------------------------------------------------------ process 0
    def broadcast_float(self, value: float) -> float:
        """Process 0's ``value`` on every process."""
        if not self.distributed:
            return value
        t = torch.tensor([value if self.main else math.nan], dtype=torch.float64, device=self.device)
        dist.broadcast(t, src=0)
        return float(t.item())

    def broadcast_object(self, obj: Any) -> Any:
        """Process 0's ``obj`` (picklable) on every process."""
        if not self.distributed:
            return obj
        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def broadcast_module(self, module: nn.Module) -> None:
        """Process 0's parameters and buffers into every replica of ``module``."""
        if not self.distributed:
            return
        with torch.no_grad():
            for t in list(module.parameters()) + list(module.buffers()):
                dist.broadcast(t.data, src=0)

    def barrier(self) -> None:
        if self.distributed and dist.is_initialized():
            dist.barrier()

    # ------------------------------------------------------------------ set-up work
    def map_chunks(self, fn: Callable[[int, int], tuple[Tensor, ...]], n: int, size: int = 256) -> tuple[Tensor, ...]:
        """``fn(start, stop)`` over the chunks ``[0, size), [size, 2 size), …`` of ``n`` rows, concatenated.

        Chunk ``k`` runs on process ``k mod N`` and the results are exchanged, so every process ends with the
        tensors one process computes (the same calls on the same chunks: bit-identical). With one process the
        chunks run in order on its device.
        """
        starts = list(range(0, n, size))
        if not self.distributed:
            parts = [fn(s, min(s + size, n)) for s in starts]
        else:
            mine = {s: tuple(t.cpu() for t in fn(s, min(s + size, n)))
                    for k, s in enumerate(starts) if k % self.world_size == self.ranks.rank}
            gathered: list[Any] = [None] * self.world_size
            dist.all_gather_object(gathered, mine)
            merged = {s: part for d in gathered for s, part in d.items()}
            parts = [tuple(t.to(self.device) for t in merged[s]) for s in starts]
        return tuple(torch.cat([p[j] for p in parts]) for j in range(len(parts[0])))
