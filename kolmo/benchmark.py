r"""Solver benchmark: µs per step beside the FFT-only lower bound and the NumPy reference.

For each grid ``N`` and batch ``B`` (kolmogorov preset physics, ``cn-rk3``):

* **solver**: the production path (pyFFTW + fused Numba kernels), µs per step;
* **FFT-only bound**: the same transforms a step performs (3 stages × (2B inverse + 2B
  forward) of size N²), timed alone on the solver's own plans. The c2r transform destroys its
  input, so the inverse is timed as (copy fresh input + inverse) minus (copy alone);
* **NumPy reference**: the same scheme with ``numpy.fft`` and NumPy kernels.

Timings are the minimum over ``repeats`` blocks of ``steps`` calls (robust to other load on
the machine), after a warm-up.
"""

from __future__ import annotations

import os
import platform
import time
from dataclasses import asdict, dataclass
from typing import Callable

import numpy as np

from kolmo.equation import VorticityEquation
from kolmo.forcing import make_forcing
from kolmo.grid import Grid
from kolmo.presets import preset
from kolmo.stepping import make_stepper


@dataclass
class SolverTiming:
    """One row of the solver benchmark (times in µs)."""

    n: int
    members: int
    threads: int
    step_us: float
    fft_bound_us: float
    numpy_us: float
    transforms_per_step: int

    @property
    def ratio_to_fft(self) -> float:
        return self.step_us / self.fft_bound_us

    @property
    def speedup_vs_numpy(self) -> float:
        return self.numpy_us / self.step_us

    @property
    def ns_per_point(self) -> float:
        return 1e3 * self.step_us / (self.members * self.n * self.n)

    def as_dict(self) -> dict[str, float]:
        d = asdict(self)
        d.update(ratio_to_fft=self.ratio_to_fft, speedup_vs_numpy=self.speedup_vs_numpy,
                 ns_per_point_per_member=self.ns_per_point)
        return d


def _best(fn: Callable[[], None], steps: int, repeats: int) -> float:
    best = np.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(steps):
            fn()
        best = min(best, (time.perf_counter() - t0) / steps)
    return best * 1e6


def _setup(n: int, members: int, backend: str, threads: int):
    c = preset("kolmogorov", n)
    g = Grid(n, c.L)
    eq = VorticityEquation(g, c.nu, c.mu, make_forcing(c.forcing, g, **c.forcing_params), members=members,
                           backend=backend, threads=threads)
    st = make_stepper("cn-rk3", eq, c.dt)
    rng = np.random.default_rng(0)
    omega = rng.standard_normal((members, n, n))
    wh = np.fft.rfft2(omega) * g.mask * (g.k2 < (2 * np.pi / g.L * 12) ** 2) * 0.05
    return eq, st, wh


def time_solver(n: int, members: int = 1, threads: int = 1, steps: int | None = None, repeats: int = 5,
                numpy_reference: bool = True) -> SolverTiming:
    """Benchmark one (N, B) configuration; see the module docstring."""
    if steps is None:
        steps = max(3, int(2e6 / (n * n * members)))
    eq, st, wh = _setup(n, members, "fftw", threads)
    for _ in range(3):
        st(wh)
    step_us = _best(lambda: st(wh), steps, repeats)
    f = eq.fft2
    rng = np.random.default_rng(1)
    f.real[...] = rng.standard_normal(f.real.shape)
    fresh = f.rfft2(f.real.copy())
    fwd = _best(f.forward, steps, repeats)
    copy = _best(lambda: np.copyto(f.spec, fresh), steps, repeats)
    inv = _best(lambda: (np.copyto(f.spec, fresh), f.inverse()), steps, repeats) - copy
    stages = st.evaluations
    bound = stages * (fwd + inv)
    numpy_us = float("nan")
    if numpy_reference:
        eqn, stn, whn = _setup(n, members, "numpy", 1)
        stn(whn)
        numpy_us = _best(lambda: stn(whn), max(2, steps // 4), max(2, repeats // 2))
    return SolverTiming(n, members, threads, step_us, bound, numpy_us, transforms_per_step=stages * 4 * members)


def machine_info() -> dict[str, object]:
    """CPU model, core count and library versions for benchmark records."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    import numba
    import pyfftw

    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(),
            "numpy": np.__version__, "numba": numba.__version__, "pyfftw": pyfftw.__version__}


def run_solver_benchmark(grids: list[int], members: list[int], threads: int = 1, repeats: int = 5,
                         numpy_reference: bool = True,
                         progress: Callable[[SolverTiming], None] | None = None) -> list[SolverTiming]:
    """Benchmark every (N, B) pair; ``progress`` is called after each row."""
    rows = []
    for n in grids:
        for b in members:
            row = time_solver(n, b, threads=threads, repeats=repeats, numpy_reference=numpy_reference)
            rows.append(row)
            if progress is not None:
                progress(row)
    return rows
