"""Step time of the eddy-viscosity LES closures vs the bare solver and the previous version (issues 11, 13), and the
cost of the solver's closure hand-off alone (a spectral closure returning zeros).

Usage: python benchmarks/les_eddy_viscosity_step.py OUT.json  (needs the previous version as build/scratch/old_ev.py
and its kernels as build/scratch/old_evk.py, from main before issue 13:
``git show a77ace5:coupling/eddy_viscosity_kernels.py > build/scratch/old_evk.py``,
``git show a77ace5:coupling/eddy_viscosity.py | sed 's/from coupling import eddy_viscosity_kernels as k/import old_evk as k/'
> build/scratch/old_ev.py``). Median and minimum of 60 interleaved blocks of 20 steps (on a shared machine
the minimum is the steadier estimate).
"""
import os
import sys
import time

import numpy as np

from coupling.eddy_viscosity import Leith, Smagorinsky
from coupling.protocol import Closure
from kolmo import atomic
from kolmo.presets import preset
from kolmo.simulation import Simulation

sys.path.insert(0, "build/scratch")
import old_ev  # noqa: E402  (the previous version, see the docstring)


class ZeroSpectral(Closure):
    """Ĥ = 0 through the spectral path, unchecked: the cost of the solver's closure hand-off alone
    (state, call, injection diagnostics, the tendency copy and the stepper reading it)."""

    name, target, spectral = "zero", "sgs", True

    def call_hat(self, state):  # noqa: ANN001, ANN201
        if getattr(self, "zero", None) is None or self.zero.shape != state.omega_hat.shape:
            self.zero = np.zeros_like(state.omega_hat)
        return self.zero

out = {}
for n, B in ((64, 1), (32, 4), (64, 8)):
    cfg = preset("kolmogorov", n, members=B, t_end=100.0)
    sims = {"bare": Simulation(cfg), "hand-off only (zero closure)": Simulation(cfg, closure=ZeroSpectral()),
            "smagorinsky": Simulation(cfg, closure=Smagorinsky()), "leith": Simulation(cfg, closure=Leith()),
            "smagorinsky(before)": Simulation(cfg, closure=old_ev.Smagorinsky()), "leith(before)": Simulation(cfg, closure=old_ev.Leith())}
    for s in sims.values():
        for _ in range(50): s.advance()
    res = {k: [] for k in sims}
    for rep in range(60):
        for k, s in sims.items():
            t0 = time.perf_counter()
            for _ in range(20): s.advance()
            res[k].append((time.perf_counter() - t0) / 20 * 1e6)
    bare = np.median(res["bare"])
    row = {k: {"median_us": float(np.median(v)), "min_us": float(min(v)), "ratio_median": float(np.median(v) / bare),
               "ratio_min": float(min(v) / min(res["bare"]))} for k, v in res.items()}
    out[f"{n}x{n} B={B}"] = row
    print(n, B, {k: (round(v["median_us"]), round(v["ratio_median"], 2), round(v["ratio_min"], 2)) for k, v in row.items()})
out["load_average_1_5_15min"] = list(os.getloadavg())
atomic.write_json(sys.argv[1], out, indent=1)
