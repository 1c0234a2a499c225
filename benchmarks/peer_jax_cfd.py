"""Peer benchmark: µs per step of jax-cfd's pseudo-spectral Kolmogorov-flow stepper (float32, jit).

Runs in a *separate* Python environment that has jax and jax-cfd (never kolmo's), e.g.::

    python3 -m venv /work/jaxvenv && /work/jaxvenv/bin/pip install jax jax-cfd
    /work/jaxvenv/bin/python benchmarks/peer_jax_cfd.py --grid 64,128 --dt 64:0.007,128:0.0035

It imports only jax, jax-cfd and NumPy, and prints one JSON object on stdout (``--json`` also
writes it to a file). `kolmo bench solver --peer jax-cfd` runs it interleaved with kolmo's own
timing, in separate processes, and records the cores each side was given.

What is timed, per grid N: jax-cfd's ``spectral.equations.ForcedNavierStokes2D`` (Kochkov et al.
2021's setup: ν given, drag μ = 0.1, Kolmogorov forcing sin(4y) x̂, 2/3-rule brick-wall filter)
on the square of side 2π, stepped by ``spectral.time_stepping.crank_nicolson_rk3`` (3 explicit
evaluations per step, as kolmo's ``cn-rk3``; each evaluation is 4 inverse + 1 forward FFT plus the
forcing's 2 forward FFTs, the way jax-cfd writes it) in jax's default float32. Two ways of
calling it, both reported; the faster is the peer's time:

* ``call``: ``jax.jit(step)`` called once per step from Python (as kolmo is), result blocked on
  at the end of each block;
* ``scan``: ``jax.jit`` of ``jax_cfd.base.funcutils.repeated(step, k)`` (``lax.scan`` over k
  steps: no Python between steps), divided by k.

Timings are the minimum over ``--repeats`` blocks, after a compile-and-warm-up call.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time


def _parse_dt(text: str) -> dict[int, float]:
    out: dict[int, float] = {}
    for item in text.split(","):
        if item.strip():
            n, dt = item.split(":")
            out[int(n)] = float(dt)
    return out


def time_jax_cfd(n: int, dt: float, nu: float, repeats: int, steps: int) -> dict[str, object]:
    """Time one grid; returns µs per step for the ``call`` and ``scan`` ways (see the module docstring)."""
    import jax
    import jax.numpy as jnp
    import numpy as np
    from jax_cfd.base import funcutils, grids
    from jax_cfd.spectral import equations, time_stepping

    grid = grids.Grid((n, n), domain=((0, 2 * np.pi), (0, 2 * np.pi)))
    eq = equations.ForcedNavierStokes2D(nu, grid, smooth=True)
    step = time_stepping.crank_nicolson_rk3(eq, dt)
    rng = np.random.default_rng(0)
    w = np.fft.rfft2(rng.standard_normal((n, n))).astype(np.complex64)
    w *= (np.abs(np.fft.fftfreq(n, 1 / n))[:, None] < 12) & (np.fft.rfftfreq(n, 1 / n)[None, :] < 12)
    w0 = jnp.asarray(w * (0.05 / max(1.0, float(np.abs(w).max())) * n))

    def best(fn, k: int) -> float:
        t_best = float("inf")
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn()
            t_best = min(t_best, (time.perf_counter() - t0) / k)
        return t_best * 1e6

    one = jax.jit(step)
    state = {"w": one(w0).block_until_ready()}
    for _ in range(2):
        state["w"] = one(state["w"])
    state["w"].block_until_ready()

    def block_call() -> None:
        w_ = state["w"]
        for _ in range(steps):
            w_ = one(w_)
        w_.block_until_ready()
        state["w"] = w_

    call_us = best(block_call, steps)
    many = jax.jit(funcutils.repeated(step, steps))
    state["w"] = many(state["w"]).block_until_ready()

    def block_scan() -> None:
        state["w"] = many(state["w"]).block_until_ready()

    scan_us = best(block_scan, steps)
    finite = bool(jnp.all(jnp.isfinite(state["w"])))
    return {"n": n, "dt": dt, "nu": nu, "dtype": str(state["w"].dtype), "call_us": call_us, "scan_us": scan_us,
            "step_us": min(call_us, scan_us), "steps_per_block": steps, "repeats": repeats, "finite": finite}


def main() -> None:
    p = argparse.ArgumentParser(description="µs per step of jax-cfd's spectral Kolmogorov stepper (see the docstring).")
    p.add_argument("--grid", default="64,128,256,512", help="grid sizes N, comma-separated")
    p.add_argument("--dt", default="", help="time step per grid, N:DT comma-separated (default 0.5·(2π/N)/7)")
    p.add_argument("--nu", type=float, default=1e-3)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--json", default=None, help="also write the JSON here")
    a = p.parse_args()
    import jax
    import jax_cfd

    dts = _parse_dt(a.dt)
    rows = []
    for n in (int(x) for x in a.grid.split(",") if x.strip()):
        dt = dts.get(n, 0.5 * (2 * 3.141592653589793 / n) / 7)
        steps = max(3, int(2e6 / (n * n)))
        rows.append(time_jax_cfd(n, dt, a.nu, a.repeats, steps))
    out = {"peer": "jax-cfd", "jax": jax.__version__, "jax_cfd": getattr(jax_cfd, "__version__", "?"),
           "devices": [str(d) for d in jax.devices()], "python": platform.python_version(),
           "affinity": sorted(os.sched_getaffinity(0)), "cpu_count": os.cpu_count(),
           "xla_flags": os.environ.get("XLA_FLAGS", ""), "rows": rows}
    text = json.dumps(out)
    if a.json:
        with open(a.json, "w") as fh:
            fh.write(text)
    print(text)


if __name__ == "__main__":
    main()
