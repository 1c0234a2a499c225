r"""kolmo's solver against a peer solver (jax-cfd), timed interleaved in separate processes.

The peer runs in *another* Python environment (its own ``python`` executable, e.g. a venv with
``jax`` and ``jax-cfd``) through a standalone script, ``benchmarks/peer_jax_cfd.py``, that imports
neither kolmo nor anything kolmo needs; kolmo never imports jax. Both sides are separate
processes started here, one after the other, alternating which goes first each round (A/B, B/A,
…) so that slow drifts of the machine's load fall on both.

Each side is pinned with ``sched_setaffinity`` to the cores of a *core setting*: ``1`` core (kolmo
with 1 FFTW thread; XLA told to use one thread, ``XLA_FLAGS=--xla_cpu_multi_thread_eigen=false
intra_op_parallelism_threads=1``) or ``2`` cores (kolmo timed with 1 and with 2 FFTW threads, the
faster counts, both are kept; XLA with its default thread pool). Each process reports the cores it
was allowed on; the record keeps them and kolmo's thread count.

What is compared, per grid N: one time step of batch 1, kolmogorov physics. kolmo: ``cn-rk3``,
float64 (``time_solver``, its FFT-only bound alongside). Peer: its own scheme and precision (for
jax-cfd, ``crank_nicolson_rk3``, float32; see the script). The ratio is peer µs / kolmo µs from the
minimum over the rounds of each side, and also per round (the spread shows the load's effect).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from kolmo.errors import ConfigurationError, OptionalDependencyError

PEERS = ("jax-cfd",)
CORE_SETTINGS = (1, 2)
ONE_THREAD_XLA_FLAGS = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"


def default_peer_script(peer: str) -> Path:
    """The peer's timing script in a source checkout: ``benchmarks/peer_jax_cfd.py``."""
    return Path(__file__).resolve().parents[1] / "benchmarks" / f"peer_{peer.replace('-', '_')}.py"


@dataclass
class PeerComparison:
    """Interleaved per-step timings (µs) of kolmo and a peer; ``runs`` holds every process's record."""

    peer: str
    grids: list[int]
    cores: list[int]
    rounds: int
    runs: list[dict] = field(default_factory=list)

    def summary(self) -> list[dict[str, object]]:
        """One row per (cores, N): minimum µs per step of each side and their ratio (peer / kolmo)."""
        rows = []
        for c in self.cores:
            for n in self.grids:
                k = [r["step_us"] for r in self.runs if r["side"] == "kolmo" and r["cores"] == c and r["n"] == n]
                p = [r["step_us"] for r in self.runs if r["side"] == self.peer and r["cores"] == c and r["n"] == n]
                per_round = [pp / kk for kk, pp in zip(k, p)]
                bound = [r["fft_bound_us"] for r in self.runs if r["side"] == "kolmo" and r["cores"] == c and r["n"] == n]
                rows.append({"cores": c, "n": n, "kolmo_us": min(k), "peer_us": min(p), "speedup": min(p) / min(k),
                             "speedup_per_round": per_round, "kolmo_fft_bound_us": min(bound),
                             "kolmo_us_rounds": k, "peer_us_rounds": p})
        return rows

    def as_dict(self) -> dict[str, object]:
        return {"peer": self.peer, "grids": self.grids, "cores": self.cores, "rounds": self.rounds,
                "summary": self.summary(), "runs": self.runs}


def _allowed_cores(count: int) -> list[int]:
    have = sorted(os.sched_getaffinity(0))
    if count > len(have):
        raise ConfigurationError(f"--peer-cores {count}: this process may use only {len(have)} core(s) {have}")
    return have[:count]


def _run_json(cmd: list[str], cores: list[int], env: dict[str, str], what: str) -> dict:
    """Run ``cmd`` pinned to ``cores``; its last stdout line is a JSON object."""
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True,
                          preexec_fn=lambda: os.sched_setaffinity(0, cores))
    if proc.returncode != 0 or not proc.stdout.strip():
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
        raise OptionalDependencyError(f"{what} failed (exit {proc.returncode}): {' | '.join(tail)}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _kolmo_command(grids: list[int], threads: list[int], repeats: int) -> list[str]:
    """kolmo's timing process: per grid, each FFTW thread count in ``threads``; the fastest is its time."""
    code = ("import json, os; from kolmo.benchmark import time_solver\n"
            "rows = []\n"
            f"for n in {grids!r}:\n"
            f"    tried = [time_solver(n, 1, threads=t, repeats={repeats}, numpy_reference=False).as_dict() for t in {threads!r}]\n"
            "    best = min(tried, key=lambda r: r['step_us'])\n"
            "    rows.append({**best, 'tried': tried})\n"
            "print(json.dumps({'affinity': sorted(os.sched_getaffinity(0)), 'rows': rows}))")
    return [sys.executable, "-c", code]


def compare_with_peer(peer: str, peer_python: str | os.PathLike, grids: list[int], *, cores: tuple[int, ...] = CORE_SETTINGS,
                      rounds: int = 3, repeats: int = 5, peer_script: str | os.PathLike | None = None,
                      progress: Callable[[dict], None] | None = None) -> PeerComparison:
    """Time kolmo and ``peer`` at each grid and core setting, alternating the order each round.

    Parameters
    ----------
    peer
        ``"jax-cfd"``.
    peer_python
        The Python executable of the peer's environment (has jax and jax-cfd).
    grids
        Grid sizes N; batch 1.
    cores
        Core settings (1 and/or 2); see the module docstring.
    rounds, repeats
        Rounds of the alternation; timing blocks per process (the minimum is kept).
    peer_script
        The peer's timing script (default: :func:`default_peer_script`).
    progress
        Called with each process's record.
    """
    from kolmo.presets import preset

    if peer not in PEERS:
        raise ConfigurationError(f"unknown peer {peer!r}; valid: {', '.join(PEERS)}")
    for c in cores:
        if c not in CORE_SETTINGS:
            raise ConfigurationError(f"core setting {c}: expected one of {CORE_SETTINGS}")
    script = Path(peer_script) if peer_script is not None else default_peer_script(peer)
    if not script.is_file():
        raise ConfigurationError(f"peer script {str(script)!r} not found; pass --peer-script "
                                 f"(it is benchmarks/peer_jax_cfd.py in a source checkout)")
    dts = ",".join(f"{n}:{preset('kolmogorov', n).dt!r}" for n in grids)
    nu = preset("kolmogorov", grids[0]).nu
    out = PeerComparison(peer, list(grids), list(cores), rounds)
    for r in range(rounds):
        for c in cores:
            pin = _allowed_cores(c)
            sides = ["kolmo", peer] if (r + c) % 2 == 0 else [peer, "kolmo"]
            for side in sides:
                env = dict(os.environ)
                if side == "kolmo":
                    cmd, what = _kolmo_command(list(grids), list(range(1, c + 1)), repeats), "kolmo's timing process"
                else:
                    cmd = [str(peer_python), str(script), "--grid", ",".join(map(str, grids)), "--dt", dts,
                           "--nu", repr(nu), "--repeats", str(repeats)]
                    what = f"the peer {peer} ({peer_python} {script})"
                    if c == 1:
                        env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + " " + ONE_THREAD_XLA_FLAGS).strip()
                load_before = os.getloadavg()
                t0 = time.perf_counter()
                rec = _run_json(cmd, pin, env, what)
                wall = time.perf_counter() - t0
                meta = {k: v for k, v in rec.items() if k != "rows"}
                for row in rec["rows"]:
                    run = {"round": r, "cores": c, "side": side, "n": row["n"], "step_us": row["step_us"],
                           "fft_bound_us": row.get("fft_bound_us"), "threads": row.get("threads"), "detail": row,
                           "process": meta,
                           "load_before": load_before, "load_after": os.getloadavg(), "process_wall_s": wall}
                    out.runs.append(run)
                    if progress is not None:
                        progress(run)
    return out
