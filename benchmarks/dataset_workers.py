"""`kolmo dataset` serial against Dask workers: wall time, pairs/s, both fingerprints, and the paper
dataset extrapolated to more cores from the measured cost per trajectory step.

Usage: python benchmarks/dataset_workers.py [--workers 2] [--fine 256 --coarse 64 --trajectories 4
       --burn-in 1 --t-end 2] [--repeats 2] [--cores 16] --json benchmarks/data/distributed/dataset_workers.json

Both builds run in this process, alternated ``--repeats`` times (serial, then on a local cluster of
``--workers`` processes started once before the timed builds; its start-up is reported apart), so
that both see the same load of a shared machine; the best of each is compared. Before and after,
:func:`cpu_capacity` measures how much CPU a second process actually gets on the machine at that
time (2.0 on two idle cores): on a shared machine the speed-up of the workers is bounded by it. The extrapolation assumes that
the cost of one trajectory step measured serially here holds on every core of the target machine
(linear scaling per core: no contention for memory bandwidth or caches) and that trajectories are
the unit of work (``members_per_batch`` 1), so 100 trajectories on C cores take ceil(100 / C)
rounds.
"""

from __future__ import annotations

import argparse
import math
import os
import tempfile
import time
from pathlib import Path

from kolmo.atomic import write_json
from kolmo.benchmark import machine_info
from kolmo.cluster import ClusterOptions, open_client
from kolmo.dataset import DatasetSpec, build_dataset


def _spin(_: int = 0) -> float:
    """Seconds for a fixed CPU-bound job (1,000 NumPy 256² real FFT pairs), in this process."""
    import numpy as np

    x = np.random.default_rng(0).standard_normal((256, 256))
    t0 = time.perf_counter()
    for _ in range(1000):
        np.fft.irfft2(np.fft.rfft2(x))
    return time.perf_counter() - t0


def cpu_capacity(processes: int) -> dict:
    """How much faster ``processes`` concurrent copies of :func:`_spin` finish than one after the other on
    this machine now: ``processes`` on an idle machine with that many free cores, less when it is shared."""
    import multiprocessing as mp

    alone = _spin()
    with mp.get_context("spawn").Pool(processes) as pool:
        each = pool.map(_spin, range(processes))
    return {"processes": processes, "one_alone_seconds": alone, "each_concurrent_seconds": each,
            "throughput_ratio": processes * alone / max(each), "load_average": os.getloadavg()}


def _build(spec: DatasetSpec, out: Path, cluster=None) -> dict:  # noqa: ANN001
    load0 = os.getloadavg()
    s = build_dataset(spec, out, cluster=cluster)
    steps = int(spec.record_steps(s.dt)[-1]) + 1
    return {"where": s.where, "wall_seconds": s.wall_seconds, "pairs": s.pairs_written,
            "pairs_per_second": s.pairs_per_second, "fingerprint": s.fingerprint,
            "solver_seconds_summed": s.solver_seconds, "setup_seconds_summed": s.setup_seconds,
            "steps_per_trajectory": steps,
            "wall_per_trajectory_step_ms": 1e3 * s.wall_seconds / (spec.trajectories * steps),
            "solver_per_trajectory_step_ms": 1e3 * s.solver_seconds / (spec.trajectories * steps),
            "load_average_before": load0, "load_average_after": os.getloadavg()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--fine", type=int, default=256)
    p.add_argument("--coarse", type=int, default=64)
    p.add_argument("--trajectories", type=int, default=4)
    p.add_argument("--burn-in", type=float, default=1.0)
    p.add_argument("--t-end", type=float, default=2.0)
    p.add_argument("--cores", type=int, default=16, help="core count of the extrapolation")
    p.add_argument("--repeats", type=int, default=2, help="serial/workers pairs, alternated (the best of each is used)")
    p.add_argument("--json", default=None)
    a = p.parse_args()
    spec = DatasetSpec(preset="dong2026", fine=a.fine, coarse=a.coarse, trajectories=a.trajectories,
                       test_trajectories=1, burn_in=a.burn_in, t_end=a.t_end, every=0.1, seed=0)
    folder = Path(tempfile.mkdtemp(prefix="kolmo-dataset-workers-"))
    serial_runs, dist_runs = [], []
    capacity = [cpu_capacity(a.workers)]
    print("cpu capacity:", capacity[-1], flush=True)
    t0 = time.perf_counter()
    with open_client(ClusterOptions(workers=a.workers)) as client:
        startup = time.perf_counter() - t0
        for r in range(a.repeats):  # alternate, so that both see the same shared machine
            serial_runs.append(_build(spec, folder / f"serial-{r}.h5"))
            print("serial:", serial_runs[-1], flush=True)
            dist_runs.append(_build(spec, folder / f"workers-{r}.h5", cluster=client))
            dist_runs[-1]["where"] = ClusterOptions(workers=a.workers).describe()
            print("workers:", dist_runs[-1], flush=True)
    capacity.append(cpu_capacity(a.workers))
    print("cpu capacity:", capacity[-1], flush=True)
    serial = min(serial_runs, key=lambda x: x["wall_seconds"])
    dist = min(dist_runs, key=lambda x: x["wall_seconds"])

    paper = DatasetSpec()  # dong2026 256² -> 64², 100 trajectories, t in [20, 40) every 0.1
    paper_steps = int(paper.record_steps(paper.fine_config().dt)[-1]) + 1
    per_step = serial["wall_per_trajectory_step_ms"] / 1e3
    traj = per_step * paper_steps
    rounds = math.ceil(paper.trajectories / a.cores)
    estimate = {
        "dataset": "paper: dong2026 256² -> 64², 100 trajectories (90 train / 10 test), 18,000 + 2,000 pairs",
        "steps_per_trajectory": paper_steps,
        "measured_grid": f"{a.fine}² -> {a.coarse}²",
        "seconds_per_trajectory_one_core": traj,
        "one_core_hours": paper.trajectories * traj / 3600,
        "cores": a.cores, "rounds": rounds,
        "hours_on_cores": rounds * traj / 3600,
        "hours_on_cores_ideal": paper.trajectories * traj / a.cores / 3600,
        "pairs_per_second_on_cores": 20000 / (rounds * traj),
        "assumption": "the serial wall time per trajectory step measured here (grid as measured) holds on each of "
                      f"{a.cores} cores (linear scaling per core, no memory-bandwidth contention); one trajectory per "
                      "task, so ceil(100 / cores) rounds; cluster start-up and the final statistics are left out",
    }
    if (a.fine, a.coarse) != (paper.fine, paper.coarse):
        estimate["warning"] = "measured on another grid than the paper's: the per-step cost does not transfer"
    print("paper estimate:", estimate, flush=True)
    fingerprints = {r["fingerprint"] for r in serial_runs + dist_runs}
    record = {"machine": {**machine_info(), "cpu_count": os.cpu_count()},
              "spec": spec.build_arguments(), "workers": a.workers, "cluster_startup_seconds": startup,
              "cpu_capacity_before_after": capacity,
              "serial_runs": serial_runs, "distributed_runs": dist_runs, "serial_best": serial, "distributed_best": dist,
              "same_fingerprint": len(fingerprints) == 1, "fingerprints": sorted(fingerprints),
              "speedup_wall_best": serial["wall_seconds"] / dist["wall_seconds"],
              "speedup_wall_best_with_startup": serial["wall_seconds"] / (dist["wall_seconds"] + startup),
              "paper_estimate": estimate}
    if a.json:
        write_json(a.json, record, indent=1)


if __name__ == "__main__":
    main()
