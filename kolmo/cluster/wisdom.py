"""The client's FFTW plans, shipped to every worker so that all of them compute the same bits.

``FFTW_MEASURE`` picks an algorithm by timing candidates, so two processes that plan the same
shape on their own can pick different algorithms and round differently (:mod:`kolmo.fft`). A
distributed build or run therefore plans every shape it will use *in the client* first (the
same code path and wisdom file a serial build in that process would use), exports that wisdom
and sends it with every task. A worker installs it once (:meth:`ClientWisdom.install`, replacing
whatever it had, never touching the wisdom file), and after each task checks that it planned
nothing the client had not (:meth:`ClientWisdom.verify`): a task that had to measure a plan of
its own fails instead of returning results that could differ from the serial build.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from kolmo.fft import export_wisdom, use_wisdom, wisdom_changed

__all__ = ["ClientWisdom"]

_installed: dict[str, tuple[bytes, ...]] = {}  # digest -> wisdom as exported after installing it (this process)


@dataclass(frozen=True)
class ClientWisdom:
    """FFTW wisdom exported by the client (``wisdom``) and its sha256 ``digest``."""

    wisdom: tuple[bytes, ...]
    digest: str

    @classmethod
    def of_this_process(cls) -> "ClientWisdom":
        """The wisdom of this process now (call it after planning every shape the tasks will use)."""
        wisdom = export_wisdom()
        return cls(wisdom, hashlib.sha256(b"".join(wisdom)).hexdigest())

    def install(self) -> None:
        """Make this wisdom the worker process's only wisdom (once per process and digest)."""
        if list(_installed) != [self.digest]:
            _installed.clear()
            _installed[self.digest] = use_wisdom(self.wisdom)

    def verify(self, what: str) -> None:
        """Raise ``RuntimeError`` if ``what`` (a task) planned a transform the client's wisdom did not hold.

        That would be a bug of the client's planning step (a shape it did not plan): the task's
        results could differ in the last bits from the serial computation, so they are not returned.
        """
        if wisdom_changed(_installed[self.digest]):
            raise RuntimeError(f"{what} planned an FFT that the client had not planned: its FFTW plan was measured "
                               "on the worker and its results could differ from the serial build's (a kolmo bug; "
                               "please report it)")
