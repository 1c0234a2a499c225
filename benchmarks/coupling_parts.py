"""The parts of the learned closure's coupling cost, timed in isolation with warm caches (issue 13, RESULTS §9).

Usage: python benchmarks/coupling_parts.py OUT.json   (dong2026-default on 64², every 5, jitter 5e-5, 1 torch thread)

Per member count: the jitter's standard-normal draws and its kernel, the solver's injection diagnostics, and a
resample step outside the network call (its time minus the network's); then the first NumPy call after a call
of the network against the same call warm (the cost of cold caches). Minimum over interleaved repeats (µs).
"""
import os
import sys
import time

import numpy as np
import torch

from coupling.online import ClosureOptions, prepare_run
from coupling.spectral_jitter import add_spectral_white_noise_numba
from kolmo import atomic, diagnostics
from kolmo.simulation import CoarseState, Simulation

torch.set_num_threads(1)
out: dict = {"load_average_1_5_15min": list(os.getloadavg())}
for members in (1, 8):
    run = prepare_run("dong2026", 64, {"members": members, "seed": 0}, "dong2026-default",
                      ClosureOptions(every=5, jitter=5e-5, seed=0, threads=1))
    sim = Simulation(run.config, closure=run.closure)
    c = run.closure
    for _ in range(20):
        sim.advance()
    buf, held = c._buffers, c._held
    state = CoarseState(sim.omega_hat, 0, 0.0, sim.grid, sim.config.dt)

    def resample_outside_network() -> None:
        m0 = c.model_seconds
        t0 = time.perf_counter()
        c._resample(state)
        return time.perf_counter() - t0 - (c.model_seconds - m0)

    parts = {"jitter normals": lambda: buf.z.normal_(generator=c.generator),
             "jitter kernel": lambda: add_spectral_white_noise_numba(held, buf.z_host, 5e-5),
             "injection diagnostics": lambda: diagnostics.closure_injection(sim.grid, sim.omega_hat, held,
                                                                            sim._last_closure)}
    best = {k: np.inf for k in [*parts, "resample outside the network"]}
    for _ in range(30):
        for k, f in parts.items():
            t0 = time.perf_counter()
            for _ in range(20):
                f()
            best[k] = min(best[k], (time.perf_counter() - t0) / 20)
        best["resample outside the network"] = min(best["resample outside the network"], resample_outside_network())
    out[f"members={members}"] = {k: 1e6 * v for k, v in best.items()}
    print(members, {k: round(1e6 * v, 1) for k, v in best.items()})

x, noise = buf.x_host[:1].clone(), torch.randn(c.module.noise_shape(1))
probe = np.zeros(4, dtype=np.complex128)
cold, warm = [], []
for _ in range(100):
    c.module.sample(x, noise)
    for i in range(2):
        t0 = time.perf_counter()
        np.isfinite(probe).all()
        (cold if i == 0 else warm).append(time.perf_counter() - t0)
out["first NumPy call after the network (median us)"] = 1e6 * float(np.median(cold))
out["same call warm (median us)"] = 1e6 * float(np.median(warm))
print({k: v for k, v in out.items() if "NumPy" in k or "warm" in k})
atomic.write_json(sys.argv[1], out, indent=1)
