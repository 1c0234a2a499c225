"""Where a solver step's time goes: each pass of a cn-rk3 step, timed inside a running step.

Usage: python benchmarks/solver_passes.py [--grid 64,128,512] [--members 1,16] [--json out.json]

Per (N, B), kolmogorov physics, one FFTW thread, the machine's FFTW wisdom:

* ``in_step``: the minimum over ``--steps`` steps of each call of one step, made one by one from
  Python in the order the compiled step makes them (velocity inversion, then per stage: inverse
  FFT, products, forward FFT, fused stage + inversion or, last, the stage update);
* ``isolated``: the fused stage + inversion against the two passes it replaces (velocity
  inversion + stage update), and the products pass with and without the CFL speed, each called
  alone in a loop (minimum of blocks);
* ``step``: the whole step compiled (``kolmo.fftw_numba``) against the same calls from Python.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from kolmo import kernels
from kolmo.atomic import write_json
from kolmo.benchmark import _best, _setup, machine_info


def passes(n: int, members: int, steps: int) -> dict[str, object]:
    eq, st, wh = _setup(n, members, "fftw", 1)
    for _ in range(3):
        st(wh)
    g, f = eq.grid, eq.fft2
    explicit, previous = st._buffers(wh)
    names = ["velocity"] + [f"{k}{s}" for s in range(3) for k in ("inverse_fft_", "products_", "forward_fft_", "stage_")]
    best = np.full(len(names), np.inf)
    pc = time.perf_counter
    for _ in range(steps):
        ts = [pc()]
        kernels.velocity_hat_numba(wh, g.kx_odd, g.ky_odd, g.inv_k2, eq.velocity_scale, f.spec)
        ts.append(pc())
        for k, ((eg, ig), gm, z) in enumerate(zip(st._gains, st.gammas, st.zetas)):
            f.inverse()
            ts.append(pc())
            kernels.basdevant_products_numba(f.real, eq.speed, k == 0)
            ts.append(pc())
            f.forward()
            ts.append(pc())
            if k < 2:
                kernels.cn_stage_invert_numba(wh, f.spec, eq.coef_a, eq.coef_c, eq.forcing_hat, explicit, previous, eg, ig,
                                              gm * st.dt, z * st.dt, False, g.kx_odd, g.ky_odd, g.inv_k2, eq.velocity_scale)
            else:
                kernels.cn_stage_advective_numba(wh, f.spec, eq.coef_a, eq.coef_c, eq.forcing_hat, explicit, previous,
                                                 eg, ig, gm * st.dt, z * st.dt, False)
            ts.append(pc())
        best = np.minimum(best, np.diff(ts) * 1e6)
    in_step = dict(zip(names, best.tolist()))
    fft = sum(v for k, v in in_step.items() if "fft" in k)
    in_step_summary = {"transforms_us": fft, "other_passes_us": float(best.sum()) - fft}

    block, reps = max(3, int(1e6 / (n * n * members))), 15
    (eg, ig), u, prev = st._gains[1], wh.copy(), previous.copy()
    isolated = {
        "velocity_us": _best(lambda: kernels.velocity_hat_numba(u, g.kx_odd, g.ky_odd, g.inv_k2, eq.velocity_scale, f.spec),
                             block, reps),
        "stage_us": _best(lambda: kernels.cn_stage_advective_numba(u, f.spec, eq.coef_a, eq.coef_c, eq.forcing_hat,
                                                                   explicit, prev, eg, ig, 0.1, 0.2, False), block, reps),
        "fused_stage_and_inversion_us": _best(lambda: kernels.cn_stage_invert_numba(
            u, f.spec, eq.coef_a, eq.coef_c, eq.forcing_hat, explicit, prev, eg, ig, 0.1, 0.2, False, g.kx_odd, g.ky_odd,
            g.inv_k2, eq.velocity_scale), block, reps),
        "products_us": _best(lambda: kernels.basdevant_products_numba(f.real, eq.speed, False), block, reps),
        "products_with_speed_us": _best(lambda: kernels.basdevant_products_numba(f.real, eq.speed, True), block, reps),
    }

    def python_loop() -> None:
        st._compiled = False
        st(wh)
        st._compiled = True

    block = max(3, int(2e6 / (n * n * members)))
    compiled, python = [], []
    for _ in range(3):
        compiled.append(_best(lambda: st(wh), block, 9))
        python.append(_best(python_loop, block, 9))
    return {"n": n, "members": members, "compiled": bool(st._compiled), "in_step_min_us": in_step,
            "in_step_summary": in_step_summary, "isolated_min_us": isolated,
            "step_compiled_us": min(compiled), "step_python_loop_us": min(python)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--grid", default="64,128,512")
    p.add_argument("--members", default="1,16")
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--json", default=None)
    a = p.parse_args()
    load = os.getloadavg()
    rows = []
    for n in (int(x) for x in a.grid.split(",")):
        for b in (int(x) for x in a.members.split(",")):
            row = passes(n, b, max(5, min(a.steps, int(a.steps * 128 * 128 / (n * n * b)))))
            rows.append(row)
            print(n, b, {k: round(v, 1) for k, v in row["isolated_min_us"].items()}, row["in_step_summary"],
                  "compiled", round(row["step_compiled_us"], 1), "python", round(row["step_python_loop_us"], 1), flush=True)
    if a.json:
        write_json(a.json, {"machine": machine_info(), "load_average_start": load, "load_average_end": os.getloadavg(),
                            "rows": rows}, indent=1)


if __name__ == "__main__":
    main()
