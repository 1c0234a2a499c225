"""The parts of the learned closure's coupling cost, timed in isolation with warm caches (issue 13, RESULTS §9).

Usage: python benchmarks/coupling_parts.py OUT.json   (dong2026-default on 64², every 5, jitter 5e-5, 1 torch thread)

Per member count: the jitter's standard-normal draws (coupling.normal_stream), the whole jitter step (draws,
addition and the solver's injection diagnostics in one compiled pass, as the rollout runs it), the injection
diagnostics alone (the solver's kernel, which the jitter step includes), and a resample step outside the network
call (its time minus the network's, diagnostics included); then the first NumPy call after a call of the network
against the same call warm (the cost of cold caches). Minimum over interleaved repeats (µs); the per-step estimate
weighs the jitter step by (every - 1)/every and the resample by 1/every.
"""
import os
import sys
import time

import numpy as np
import torch

from coupling.online import ClosureOptions, prepare_run
from coupling.spectral_jitter import jitter_step_numba
from kolmo import atomic, diagnostics
from kolmo.simulation import CoarseState, Simulation

EVERY = 5
torch.set_num_threads(1)
out: dict = {"load_average_1_5_15min": list(os.getloadavg())}
for members in (1, 8):
    run = prepare_run("dong2026", 64, {"members": members, "seed": 0}, "dong2026-default",
                      ClosureOptions(every=EVERY, jitter=5e-5, seed=0, threads=1))
    sim = Simulation(run.config, closure=run.closure)
    c = run.closure
    for _ in range(20):
        sim.advance()
    buf, held, stream = c._buffers, c._held, c.jitter_stream
    injection = np.zeros((2, members))
    state = CoarseState(sim.omega_hat, 0, 0.0, sim.grid, sim.config.dt, injection=injection)

    def resample_outside_network() -> float:
        m0 = c.model_seconds
        t0 = time.perf_counter()
        c._resample(state, injection)
        return time.perf_counter() - t0 - (c.model_seconds - m0)

    parts = {"jitter normals": lambda: stream.fill(buf.z),
             "jitter step (normals, addition, injection diagnostics)": lambda: jitter_step_numba(
                 stream.state, buf.raw, buf.rejected, buf.z, held, 5e-5, sim.omega_hat, sim.grid.inv_k2,
                 buf.scale, injection, True),
             "injection diagnostics alone": lambda: diagnostics.closure_injection(sim.grid, sim.omega_hat, held,
                                                                                  injection)}
    best = {k: np.inf for k in [*parts, "resample outside the network"]}
    for _ in range(30):
        for k, f in parts.items():
            t0 = time.perf_counter()
            for _ in range(20):
                f()
            best[k] = min(best[k], (time.perf_counter() - t0) / 20)
        best["resample outside the network"] = min(best["resample outside the network"], resample_outside_network())
    held = c._held  # the resample rebuilt the held spectrum (same buffer)
    row = {k: 1e6 * v for k, v in best.items()}
    row["per step"] = ((EVERY - 1) * row["jitter step (normals, addition, injection diagnostics)"]
                       + row["resample outside the network"]) / EVERY
    out[f"members={members}"] = row
    print(members, {k: round(v, 1) for k, v in row.items()})

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
