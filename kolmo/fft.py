r"""Planned real 2D FFTs over a batch: pyFFTW by default, NumPy as a debugging fallback.

A :class:`RealFFT2` owns one aligned real buffer ``real`` of shape ``(B, N, N)`` and one
aligned spectral buffer ``spec`` of shape ``(B, N, N//2+1)``. :meth:`RealFFT2.forward`
computes ``spec = rfft2(real)`` and :meth:`RealFFT2.inverse` computes
``real = N² irfft2(spec)``; both are *unnormalised*, as FFTW is, and the hot loops fold the
``1/N²`` into the spectral kernels instead of spending a pass on it. ``inverse`` destroys
``spec`` (FFTW's c2r transform works in place on its input; we own that choice: callers
write ``spec`` fresh before every inverse).

Plans are made once per shape with ``FFTW_MEASURE`` (configurable) and reused every step.
FFTW wisdom is loaded from and saved to ``$KOLMO_CACHE_DIR/fftw_wisdom.pickle`` (default
``~/.cache/kolmo``) so a second run does not measure again; the same wisdom also gives the
same plan, hence bit-identical arithmetic, across processes (needed for exact restarts).

Without shared wisdom the plan is *not* reproducible: ``FFTW_MEASURE`` times candidate
algorithms, and two fresh processes planning the same shape on a busy machine pick different
ones, whose results differ in the last bits (measured here: 6 processes with empty caches gave
4 different results of one 64² transform and 6 of one 256² transform; ``FFTW_ESTIMATE`` also
reads wisdom when there is some). Worker processes of a distributed build therefore never plan
from their own measurements: the client plans every shape first and ships its wisdom
(:func:`export_wisdom`), each worker installs exactly that wisdom (:func:`use_wisdom`), and
:func:`wisdom_changed` tells afterwards whether a worker planned anything the client had not.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Any

import numpy as np

from kolmo.errors import ConfigurationError

BACKENDS = ("fftw", "numpy")
PLANNER_EFFORTS = ("estimate", "measure", "patient")

_wisdom_loaded = False
_wisdom_pinned = False  # set by use_wisdom: never read or write the wisdom file again in this process


def cache_dir() -> Path:
    """Folder for FFTW wisdom (``$KOLMO_CACHE_DIR`` or ``~/.cache/kolmo``)."""
    return Path(os.environ.get("KOLMO_CACHE_DIR", Path.home() / ".cache" / "kolmo"))


def _wisdom_file() -> Path:
    return cache_dir() / "fftw_wisdom.pickle"


def _load_wisdom() -> None:
    global _wisdom_loaded
    if _wisdom_loaded:
        return
    _wisdom_loaded = True
    import pyfftw

    try:
        with open(_wisdom_file(), "rb") as fh:
            pyfftw.import_wisdom(pickle.load(fh))
    except (OSError, EOFError, pickle.UnpicklingError, ValueError, TypeError):
        pass  # no or unreadable wisdom: plan from scratch


def _save_wisdom() -> None:
    import pyfftw

    if _wisdom_pinned:
        return
    path = _wisdom_file()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        with open(tmp, "wb") as fh:
            pickle.dump(pyfftw.export_wisdom(), fh)
        os.replace(tmp, path)
    except OSError:
        pass  # read-only home: wisdom is an optimisation only


def export_wisdom() -> tuple[bytes, ...]:
    """This process's FFTW wisdom (the cached file's, plus every plan made since), for :func:`use_wisdom`."""
    import pyfftw

    _load_wisdom()
    return tuple(pyfftw.export_wisdom())


def use_wisdom(wisdom: tuple[bytes, ...]) -> tuple[bytes, ...]:
    """Replace this process's FFTW wisdom by ``wisdom`` (from :func:`export_wisdom` in another process).

    Forgets what was planned or loaded before and stops reading and writing the wisdom file, so
    every later plan of a shape that ``wisdom`` covers is the exporting process's plan (same
    algorithm, bit-identical results). Returns the wisdom as this process now exports it (FFTW's
    own order), the reference for :func:`wisdom_changed`. Raises :class:`ConfigurationError` if
    FFTW refuses it (another FFTW build or precision).
    """
    global _wisdom_loaded, _wisdom_pinned
    import pyfftw

    _wisdom_loaded = _wisdom_pinned = True
    pyfftw.forget_wisdom()
    ok = pyfftw.import_wisdom(tuple(wisdom))
    if not all(ok):
        raise ConfigurationError(f"this FFTW ({pyfftw.__version__}) refused the client's wisdom "
                                 f"(double/single/long double accepted: {tuple(bool(x) for x in ok)}); "
                                 "every worker needs the client's FFTW build for bit-identical plans")
    return tuple(pyfftw.export_wisdom())


def wisdom_changed(reference: tuple[bytes, ...]) -> bool:
    """Whether this process planned a shape (or effort) that ``reference`` (:func:`use_wisdom`'s
    return value) did not cover: its plan was measured here, not the client's."""
    import pyfftw

    return tuple(pyfftw.export_wisdom()) != tuple(reference)


def _check_plan_arguments(backend: str, planner: str, batch: int, threads: int) -> None:
    """:class:`ConfigurationError` naming an unknown backend or planner effort, or a batch/thread count < 1."""
    if backend not in BACKENDS:
        raise ConfigurationError(f"unknown FFT backend {backend!r}; valid: {', '.join(BACKENDS)}")
    if planner not in PLANNER_EFFORTS:
        raise ConfigurationError(
            f"unknown FFTW planner effort {planner!r}; valid: {', '.join(PLANNER_EFFORTS)}")
    if batch < 1:
        raise ConfigurationError(f"FFT batch must be >= 1, got {batch}")
    if threads < 1:
        raise ConfigurationError(f"FFT threads must be >= 1, got {threads}")


def _plan_pair(field: np.ndarray, spec: np.ndarray, planner: str, threads: int) -> tuple[Any, Any]:
    """FFTW plans ``field → spec`` (forward) and ``spec → field`` (backward, destroying ``spec``) over the
    last two axes, with the wisdom loaded first and saved after (unless ``planner`` is ``estimate``);
    both buffers are zeroed after planning (FFTW_MEASURE overwrites them)."""
    import pyfftw

    _load_wisdom()
    flag = "FFTW_" + planner.upper()
    fwd = pyfftw.FFTW(field, spec, axes=(-2, -1), direction="FFTW_FORWARD", flags=(flag,), threads=threads)
    inv = pyfftw.FFTW(spec, field, axes=(-2, -1), direction="FFTW_BACKWARD", flags=(flag, "FFTW_DESTROY_INPUT"),
                      threads=threads)
    field[...] = 0.0
    spec[...] = 0.0
    if planner != "estimate":
        _save_wisdom()
    return fwd, inv


class RealFFT2:
    """Batched, planned ``rfft2`` / ``irfft2`` on owned buffers.

    Parameters
    ----------
    n
        Grid points per side.
    batch
        Number of fields transformed together (members, or members × components).
    backend
        ``"fftw"`` (default) or ``"numpy"`` (slow, for debugging and reference).
    threads
        FFTW threads.
    planner
        ``"estimate"``, ``"measure"`` (default) or ``"patient"``.
    """

    def __init__(self, n: int, batch: int, backend: str = "fftw", threads: int = 1,
                 planner: str = "measure") -> None:
        _check_plan_arguments(backend, planner, batch, threads)
        self.n, self.batch, self.backend, self.threads = int(n), int(batch), backend, int(threads)
        rshape = (self.batch, self.n, self.n)
        sshape = (self.batch, self.n, self.n // 2 + 1)
        if backend == "fftw":
            import pyfftw

            self.real = pyfftw.empty_aligned(rshape, dtype=np.float64)
            self.spec = pyfftw.empty_aligned(sshape, dtype=np.complex128)
            self._fwd, self._inv = _plan_pair(self.real, self.spec, planner, self.threads)
        else:
            self.real = np.zeros(rshape, dtype=np.float64)
            self.spec = np.zeros(sshape, dtype=np.complex128)

    def forward(self) -> None:
        """``spec ← rfft2(real)`` (unnormalised); ``real`` is preserved."""
        if self.backend == "fftw":
            self._fwd.execute()
        else:
            self.spec[...] = np.fft.rfft2(self.real)

    def inverse(self) -> None:
        """``real ← N² irfft2(spec)`` (unnormalised); ``spec`` is destroyed."""
        if self.backend == "fftw":
            self._inv.execute()
        else:
            self.real[...] = np.fft.irfft2(self.spec, s=(self.n, self.n)) * (self.n * self.n)

    # Convenience (allocating) transforms for non-hot paths: numpy's normalisation.
    def rfft2(self, field: np.ndarray) -> np.ndarray:
        """Return ``rfft2(field)`` for ``field`` of shape ``(batch, N, N)`` (a new array)."""
        self.real[...] = field
        self.forward()
        return self.spec.copy()

    def irfft2(self, field_hat: np.ndarray) -> np.ndarray:
        """Return ``irfft2(field_hat)`` (numpy normalisation, a new array); input untouched."""
        self.spec[...] = field_hat
        self.inverse()
        return self.real * (1.0 / (self.n * self.n))


class ComplexFFT2:
    """Batched, planned complex ``fft2`` / ``ifft2`` on owned buffers (two real fields in one).

    ``field`` ``(B, N, N)`` complex and ``spec`` ``(B, N, N)`` complex: :meth:`forward` computes
    ``spec = fft2(field)``, :meth:`inverse` ``field = N² ifft2(spec)`` (unnormalised, like
    :class:`RealFFT2`; ``inverse`` destroys ``spec``). A complex field ``a + i b`` carries two real
    fields through one transform; at the grid sizes of the LES closures FFTW's complex transform
    of ``B`` fields is faster than its real one of ``2B`` (benchmarks/RESULTS.md §10).

    Parameters
    ----------
    n, batch, backend, threads, planner
        As :class:`RealFFT2`.
    """

    def __init__(self, n: int, batch: int, backend: str = "fftw", threads: int = 1,
                 planner: str = "measure") -> None:
        _check_plan_arguments(backend, planner, batch, threads)
        self.n, self.batch, self.backend, self.threads = int(n), int(batch), backend, int(threads)
        shape = (self.batch, self.n, self.n)
        if backend == "fftw":
            import pyfftw

            self.field = pyfftw.empty_aligned(shape, dtype=np.complex128)
            self.spec = pyfftw.empty_aligned(shape, dtype=np.complex128)
            self._fwd, self._inv = _plan_pair(self.field, self.spec, planner, self.threads)
        else:
            self.field = np.zeros(shape, dtype=np.complex128)
            self.spec = np.zeros(shape, dtype=np.complex128)

    def forward(self) -> None:
        """``spec ← fft2(field)`` (unnormalised); ``field`` is preserved."""
        if self.backend == "fftw":
            self._fwd.execute()
        else:
            self.spec[...] = np.fft.fft2(self.field)

    def inverse(self) -> None:
        """``field ← N² ifft2(spec)`` (unnormalised); ``spec`` is destroyed."""
        if self.backend == "fftw":
            self._inv.execute()
        else:
            self.field[...] = np.fft.ifft2(self.spec) * (self.n * self.n)
