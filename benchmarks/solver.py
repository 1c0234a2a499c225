"""Solver benchmark script: µs/step vs FFT-only bound and NumPy reference (same as `kolmo bench solver`).

Usage: python benchmarks/solver.py [--grid 64,128,256,512] [--members 1,16] [--json out.json]
"""

from __future__ import annotations

import argparse

from kolmo.atomic import write_json
from kolmo.benchmark import machine_info, run_solver_benchmark


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--grid", default="64,128,256,512")
    p.add_argument("--members", default="1,16")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--json", default=None)
    a = p.parse_args()
    grids = [int(x) for x in a.grid.split(",")]
    members = [int(x) for x in a.members.split(",")]
    print(machine_info())
    print(f"{'N':>5} {'B':>3} {'step us':>11} {'FFT bound':>11} {'ratio':>6} {'NumPy us':>11} {'speedup':>8} {'ns/pt':>7}")

    def show(r) -> None:  # noqa: ANN001
        print(f"{r.n:>5} {r.members:>3} {r.step_us:>11.1f} {r.fft_bound_us:>11.1f} {r.ratio_to_fft:>6.2f} "
              f"{r.numpy_us:>11.1f} {r.speedup_vs_numpy:>8.2f} {r.ns_per_point:>7.1f}", flush=True)

    rows = run_solver_benchmark(grids, members, threads=a.threads, repeats=a.repeats, progress=show)
    if a.json:
        write_json(a.json, {"machine": machine_info(), "rows": [r.as_dict() for r in rows]}, indent=1)


if __name__ == "__main__":
    main()
