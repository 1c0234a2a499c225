r"""FFTW plans that compiled (Numba) code executes, so a whole time step runs without Python.

pyFFTW's plans can only be executed from Python; at small grids the Python around the twelve
transforms and seven kernels of a ``cn-rk3`` step costs as much as a kernel pass (≈ 20 µs of
≈ 470 µs at 128², batch 1). :class:`NumbaPlans` makes plans for the buffers of a
:class:`~kolmo.fft.RealFFT2` through FFTW's own C interface (``ctypes``, the very library that
pyFFTW loaded, hence the same wisdom and, for the same problem, the same plan and bit-identical
results), and :func:`fftw_execute` calls ``fftw_execute(plan)`` from Numba code through the
function's address passed as an integer (so the calling function stays cacheable).

Only for the FFTW backend with one thread: with more threads the pyFFTW plans are used, from
Python. :func:`numba_plans` returns ``None`` where the library cannot be found (then the caller
keeps the Python path).
"""

from __future__ import annotations

import ctypes
from pathlib import Path

from llvmlite import ir
from numba import types
from numba.extending import intrinsic

from kolmo.fft import RealFFT2

#: FFTW planner flags (fftw3.h).
_FLAGS = {"measure": 0, "patient": 1 << 5, "estimate": 1 << 6}
_DESTROY_INPUT = 1

_library: ctypes.CDLL | None = None
_library_searched = False


def _loaded_library(prefix: str) -> str | None:
    """Path of the loaded shared library whose file name starts with ``prefix`` (Linux), else ``None``."""
    try:
        with open("/proc/self/maps") as fh:
            paths = {line.split()[-1] for line in fh if "/" in line}
    except OSError:
        return None
    for p in sorted(paths):
        name = Path(p).name
        if name.startswith(prefix + "-") or name.startswith(prefix + ".so"):
            return p
    return None


def _fftw() -> ctypes.CDLL | None:
    """The double-precision FFTW that pyFFTW loaded, with the signatures used here; ``None`` if not found."""
    global _library, _library_searched
    if _library_searched:
        return _library
    _library_searched = True
    import pyfftw  # noqa: F401  (loads libfftw3 into the process)

    path = _loaded_library("libfftw3")
    if path is None:
        return None
    try:
        lib = ctypes.CDLL(path)
        many = [ctypes.c_int, ctypes.POINTER(ctypes.c_int), ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p,
                ctypes.c_int, ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int, ctypes.c_int,
                ctypes.c_uint]
        for name in ("fftw_plan_many_dft_r2c", "fftw_plan_many_dft_c2r"):
            getattr(lib, name).argtypes, getattr(lib, name).restype = many, ctypes.c_void_p
        lib.fftw_destroy_plan.argtypes, lib.fftw_destroy_plan.restype = [ctypes.c_void_p], None
        lib.fftw_execute.argtypes, lib.fftw_execute.restype = [ctypes.c_void_p], None
    except (OSError, AttributeError):
        return None
    omp = _loaded_library("libfftw3_omp") or _loaded_library("libfftw3_threads")
    lib.kolmo_threads = None  # type: ignore[attr-defined]
    if omp is not None:
        try:
            threads = ctypes.CDLL(omp)
            threads.fftw_plan_with_nthreads.argtypes, threads.fftw_plan_with_nthreads.restype = [ctypes.c_int], None
            lib.kolmo_threads = threads  # type: ignore[attr-defined]
        except (OSError, AttributeError):
            pass
    _library = lib
    return lib


class NumbaPlans:
    """Forward and inverse FFTW plans on the buffers of ``fft`` (a one-thread FFTW :class:`RealFFT2`).

    Attributes
    ----------
    execute : int
        Address of ``fftw_execute``, for :func:`fftw_execute`.
    forward, inverse : int
        The plans: ``spec ← rfft2(real)`` and ``real ← N² irfft2(spec)`` (destroys ``spec``),
        exactly :meth:`RealFFT2.forward` and :meth:`RealFFT2.inverse`.
    """

    def __init__(self, fft: RealFFT2, lib: ctypes.CDLL, planner: str) -> None:
        n, m, batch = fft.n, fft.n // 2 + 1, fft.batch
        self.fft, self._lib = fft, lib  # the plans point into fft's buffers: keep them alive
        dims = (ctypes.c_int * 2)(n, n)
        if lib.kolmo_threads is not None:  # type: ignore[attr-defined]
            lib.kolmo_threads.fftw_plan_with_nthreads(1)  # type: ignore[attr-defined]
        flag = _FLAGS[planner]
        real, spec = fft.real.ctypes.data, fft.spec.ctypes.data
        self.forward = lib.fftw_plan_many_dft_r2c(2, dims, batch, real, None, 1, n * n, spec, None, 1, n * m, flag) or 0
        self.inverse = lib.fftw_plan_many_dft_c2r(2, dims, batch, spec, None, 1, n * m, real, None, 1, n * n,
                                                  flag | _DESTROY_INPUT) or 0
        self.execute = ctypes.cast(lib.fftw_execute, ctypes.c_void_p).value or 0
        fft.real[...] = 0.0  # planning with FFTW_MEASURE overwrites the buffers
        fft.spec[...] = 0.0

    @property
    def ok(self) -> bool:
        return bool(self.forward and self.inverse and self.execute)

    def __del__(self) -> None:
        for plan in (getattr(self, "forward", 0), getattr(self, "inverse", 0)):
            if plan:
                self._lib.fftw_destroy_plan(plan)
        self.forward = self.inverse = 0


def numba_plans(fft: RealFFT2, planner: str = "measure") -> NumbaPlans | None:
    """:class:`NumbaPlans` for ``fft``, or ``None`` (NumPy backend, several threads, FFTW not found)."""
    if fft.backend != "fftw" or fft.threads != 1:
        return None
    lib = _fftw()
    if lib is None:
        return None
    plans = NumbaPlans(fft, lib, planner)
    return plans if plans.ok else None


@intrinsic
def fftw_execute(typingctx, execute, plan):  # pragma: no cover  (compiled)
    """``fftw_execute(plan)`` from Numba code: ``execute`` is the function's address (int64)."""
    sig = types.void(types.int64, types.int64)

    def codegen(context, builder, signature, args):
        fnty = ir.FunctionType(ir.VoidType(), [ir.IntType(64)])
        builder.call(builder.inttoptr(args[0], fnty.as_pointer()), [args[1]])
        return context.get_dummy_value()

    return sig, codegen
