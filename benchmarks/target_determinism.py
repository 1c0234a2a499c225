"""Is the missing-physics closure a function of the coarse vorticity? (issue 10)

For each dataset file given, :func:`kolmo.closure_terms.coarse_advection_residual` of up to ``--pairs``
pairs of each split, evenly spaced: ``‖H − (−P_c ū·∇ω̄)‖ / ‖H‖``. At round-off the target's
conditional law ``p(H | ω̄)`` is a point mass (the coarse grid's own advection computes ``H``); for the
noise-inclusive target it is the noise share.

    python benchmarks/target_determinism.py DATA.h5 [DATA2.h5 …] --json benchmarks/data/targets/determinism.json
"""

from __future__ import annotations

import argparse
import json
import platform
from pathlib import Path

import numpy as np

from kolmo.closure_terms import coarse_advection_residual
from kolmo.pairs import Pairs


def residuals(path: Path, split: str, pairs: int) -> dict:
    with Pairs(path, split) as p:
        rows = np.unique(np.linspace(0, len(p) - 1, min(pairs, len(p))).round().astype(int))
        omega, closure = p[rows]
        r = coarse_advection_residual(omega, closure, p.config)
        attrs = p.attrs
        return {"split": split, "pairs": int(rows.size), "median": float(np.median(r)), "max": float(r.max()),
                "min": float(r.min()), "mean": float(r.mean()), "target": attrs.get("target"),
                "n_fine": int(attrs["n_fine"]), "n_coarse": int(attrs["n_coarse"]), "preset": attrs.get("preset"),
                "fingerprint": attrs.get("fingerprint"), "stats_irreducible_floor": (attrs.get("stats") or {}).get(
                    "irreducible_floor") if isinstance(attrs.get("stats"), dict) else None}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data", nargs="+", type=Path)
    ap.add_argument("--pairs", type=int, default=400, help="pairs per split, evenly spaced")
    ap.add_argument("--json", type=Path, required=True)
    args = ap.parse_args()
    out = {"machine": platform.processor() or platform.machine(), "datasets": {}}
    for path in args.data:
        out["datasets"][str(path)] = [residuals(path, s, args.pairs) for s in ("train", "test")]
        for row in out["datasets"][str(path)]:
            print(f"{path} {row['split']}: {row['n_fine']}² → {row['n_coarse']}², target {row['target']}, "
                  f"{row['pairs']} pairs: median {row['median']:.3g}, max {row['max']:.3g}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
