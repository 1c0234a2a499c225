"""Interleaved before/after timing of the solver: two checkouts, `kolmo bench solver` alternately.

Usage::

    python benchmarks/solver_ab.py --before /path/to/old/checkout --after . \\
        --grid 64,128,256,512 --members 1,16 --rounds 4 --json benchmarks/data/solver/ab.json

Each round runs ``python -m cli.main bench solver --no-numpy-reference`` once per checkout (each with
its own ``PYTHONPATH`` and Numba cache, the same FFTW wisdom folder), the order alternating
between rounds (A/B, B/A, …) so that a drift of the machine's load falls on both. The JSON keeps
every run's rows and the load average before and after it; the summary takes, per (N, B) and side,
the minimum step and the minimum FFT-only bound over the rounds, and their ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path


def run_side(checkout: Path, args: list[str], out: Path) -> dict:
    env = dict(os.environ, PYTHONPATH=str(checkout), NUMBA_CACHE_DIR=str(checkout / ".numba_cache"))
    load = os.getloadavg()
    subprocess.run([sys.executable, "-m", "cli.main", "bench", "solver", *args, "--no-numpy-reference",
                    "--json", str(out)], cwd=checkout, env=env, check=True, capture_output=True)
    rec = json.loads(out.read_text())
    return {"rows": rec["rows"], "load_before": load, "load_after": os.getloadavg()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--before", required=True, type=Path)
    p.add_argument("--after", default=".", type=Path)
    p.add_argument("--grid", default="128")
    p.add_argument("--members", default="1,16")
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--rounds", type=int, default=4)
    p.add_argument("--json", required=True, type=Path)
    a = p.parse_args()
    sides = {"before": a.before.resolve(), "after": a.after.resolve()}
    args = ["--grid", a.grid, "--members", a.members, "--repeats", str(a.repeats)]
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(a.rounds):
            order = ["before", "after"] if r % 2 == 0 else ["after", "before"]
            for side in order:
                rec = run_side(sides[side], args, Path(tmp) / f"{side}-{r}.json")
                runs.append({"round": r, "side": side, **rec})
                print(r, side, " ".join(f"{x['n']}x{x['members']}:{x['step_us']:.0f}/{x['fft_bound_us']:.0f}"
                                        for x in rec["rows"]), "load", rec["load_before"][0], flush=True)
    summary = []
    keys = sorted({(x["n"], x["members"]) for run in runs for x in run["rows"]})
    for n, b in keys:
        row: dict[str, object] = {"n": n, "members": b}
        for side in sides:
            got = [x for run in runs if run["side"] == side for x in run["rows"] if (x["n"], x["members"]) == (n, b)]
            step, bound = min(x["step_us"] for x in got), min(x["fft_bound_us"] for x in got)
            row[side] = {"step_us_min": step, "fft_bound_us_min": bound, "ratio_of_minima": step / bound,
                         "ratio_per_round": [x["step_us"] / x["fft_bound_us"] for x in got],
                         "step_us_rounds": [x["step_us"] for x in got]}
        row["speedup_after_vs_before"] = row["before"]["step_us_min"] / row["after"]["step_us_min"]  # type: ignore[index]
        summary.append(row)
    from kolmo.atomic import write_json
    from kolmo.benchmark import machine_info

    write_json(a.json, {"machine": machine_info(), "checkouts": {k: str(v) for k, v in sides.items()},
                        "command": "kolmo bench solver " + " ".join(args) + " --no-numpy-reference",
                        "summary": summary, "runs": runs}, indent=1)
    for row in summary:
        print(row["n"], row["members"], {s: round(row[s]["ratio_of_minima"], 3) for s in sides},  # type: ignore[index]
              "speed-up", round(row["speedup_after_vs_before"], 3))


if __name__ == "__main__":
    main()
