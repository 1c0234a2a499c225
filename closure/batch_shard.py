"""One process's rows of a global batch, and the random numbers it draws for them.

Data-parallel training (:mod:`closure.data_parallel`) splits each global batch of ``B`` rows into ``N``
contiguous shards of ``B / N`` rows, one per process. The path losses draw per-row random numbers (source
noise ``x0``, times ``t``, ...) from a generator. For the union over the processes to be the very numbers
a single process draws for the whole batch, every process draws the WHOLE batch's numbers from the same
seeded generator (identical on every process) and keeps the rows of its shard::

    single process:  x0 = randn(B, ...)                       (rows 0 … B−1)
    process r of N:  x0 = randn(B, ...)[r B/N : (r+1) B/N]     (same generator state, same numbers)

so both leave the generator in the same state, and a resumed run continues identically whatever its
process count. The cost is drawing ``N`` times the numbers, negligible next to the network.

:func:`draw_rand` and :func:`draw_randn` are the two draws of :mod:`closure.paths`; they take a plain
``torch.Generator`` (or ``None``, the global generator) or a :class:`BatchShard`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence, Union

import torch
from torch import Tensor

__all__ = ["BatchShard", "RandomSource", "draw_rand", "draw_randn"]


@dataclass(frozen=True)
class BatchShard:
    """Rows ``[start, stop)`` of a global batch of ``total`` rows, drawn from ``generator``.

    Attributes
    ----------
    generator : torch.Generator
        The training noise generator (the same state on every process).
    start, stop : int
        This process's rows of the global batch.
    total : int
        Rows of the global batch ``B``.
    """

    generator: torch.Generator
    start: int
    stop: int
    total: int

    def __post_init__(self) -> None:
        if not 0 <= self.start < self.stop <= self.total:
            raise ValueError(f"batch shard [{self.start}, {self.stop}) of {self.total} rows; expected "
                             "0 <= start < stop <= total")

    @property
    def rows(self) -> int:
        return self.stop - self.start

    def check_rows(self, batch: int) -> None:
        if batch != self.rows:
            raise ValueError(f"a draw for {batch} rows from a shard of {self.rows} rows [{self.start}, {self.stop}) "
                             f"of a batch of {self.total}")


RandomSource = Union[torch.Generator, BatchShard, None]
"""What the path losses draw from: a generator, ``None`` (torch's global one) or a :class:`BatchShard`."""


def draw_rand(batch: int, like: Tensor, source: RandomSource) -> Tensor:
    """``U[0, 1)`` numbers of shape ``(batch,)`` on ``like``'s device and dtype (a shard's rows of the global draw)."""
    if isinstance(source, BatchShard):
        source.check_rows(batch)
        full = torch.rand(source.total, generator=source.generator, device=like.device, dtype=like.dtype)
        return full[source.start:source.stop]
    return torch.rand(batch, generator=source, device=like.device, dtype=like.dtype)


def draw_randn(shape: Sequence[int], like: Tensor, source: RandomSource) -> Tensor:
    """``N(0, 1)`` numbers of ``shape`` (rows first) on ``like``'s device and dtype (a shard's rows of the global draw)."""
    shape = tuple(shape)
    if isinstance(source, BatchShard):
        source.check_rows(shape[0])
        full = torch.randn((source.total, *shape[1:]), generator=source.generator, device=like.device,
                           dtype=like.dtype)
        return full[source.start:source.stop]
    return torch.randn(shape, generator=source, device=like.device, dtype=like.dtype)

