"""FFTW at float64 (kolmo's precision) against float32 (jax-cfd's): µs per batch of two N² transforms.

Usage: python benchmarks/fft_precision.py [--grid 128,512] [--json benchmarks/data/solver/fft-precision.json]

The transforms of one member's stage (2 fields): forward r2c and inverse c2r on aligned pyFFTW
buffers, FFTW_MEASURE, one thread, the inverse timed as (copy + inverse) − copy as in
`kolmo bench solver`. This is what bounds a float64 solver against a float32 peer; kolmo itself
has no float32 path.
"""

from __future__ import annotations

import argparse
import os

import numpy as np

from kolmo.atomic import write_json
from kolmo.benchmark import _best, machine_info


def time_pair(n: int, real_dtype: type, complex_dtype: type, repeats: int = 9) -> dict[str, float]:
    import pyfftw

    real = pyfftw.empty_aligned((2, n, n), dtype=real_dtype)
    spec = pyfftw.empty_aligned((2, n, n // 2 + 1), dtype=complex_dtype)
    fwd = pyfftw.FFTW(real, spec, axes=(-2, -1), flags=("FFTW_MEASURE",), threads=1)
    inv = pyfftw.FFTW(spec, real, axes=(-2, -1), direction="FFTW_BACKWARD", flags=("FFTW_MEASURE", "FFTW_DESTROY_INPUT"),
                      threads=1)
    real[...] = np.random.default_rng(0).standard_normal(real.shape)
    fwd()
    fresh = spec.copy()
    steps = max(3, int(2e6 / (n * n)))
    f = _best(fwd.execute, steps, repeats)
    copy = _best(lambda: np.copyto(spec, fresh), steps, repeats)
    i = _best(lambda: (np.copyto(spec, fresh), inv.execute()), steps, repeats) - copy
    return {"forward_us": f, "inverse_us": i}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--grid", default="128,512")
    p.add_argument("--json", default=None)
    a = p.parse_args()
    rows = []
    load = os.getloadavg()
    for n in (int(x) for x in a.grid.split(",")):
        d = time_pair(n, np.float64, np.complex128)
        s = time_pair(n, np.float32, np.complex64)
        row = {"n": n, "float64": d, "float32": s,
               "float32_over_float64": (s["forward_us"] + s["inverse_us"]) / (d["forward_us"] + d["inverse_us"])}
        rows.append(row)
        print(row, flush=True)
    if a.json:
        write_json(a.json, {"machine": machine_info(), "load_average_start": load, "load_average_end": os.getloadavg(),
                            "rows": rows}, indent=1)


if __name__ == "__main__":
    main()
