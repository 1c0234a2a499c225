"""Does inflating the source noise calibrate a one-step closure? (issue 10)

Draws the a-priori ensemble of a trained run with its source noise scaled by ``T`` (``x0 ~ N(0, T² I)``,
the "temperature" of ensemble forecasting's multiplicative inflation) and scores it with
:func:`closure.evaluation.evaluate_run` for each ``T``. More spread raises the spread–skill ratio; the
question is whether the fair CRPS improves with it (the spread lands where the errors are) or worsens.

    python benchmarks/noise_temperature.py RUN DATA.h5 --steps 1 --temperatures 1,1.5,2 --json OUT.json
"""

from __future__ import annotations

import argparse
import json
import platform
from pathlib import Path

import torch

from closure.evaluation import evaluate_run
from closure.models import ClosureModel

KEYS = ("ensemble_mean_rel_error", "sample_rel_error_mean", "spread_skill", "crps_rel", "field_std_ratio",
        "high_band_energy_ratio", "sample_std_rel")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path)
    ap.add_argument("data", type=Path)
    ap.add_argument("--steps", type=int, default=1)
    ap.add_argument("--temperatures", default="1,1.25,1.5,2")
    ap.add_argument("--samples", type=int, default=100)
    ap.add_argument("--conditions", type=int, default=10)
    ap.add_argument("--json", type=Path, required=True)
    args = ap.parse_args()
    torch.set_num_threads(1)
    sample = ClosureModel.sample
    rows = []
    try:
        for t in (float(x) for x in args.temperatures.split(",")):
            def scaled(self, omega, noise, steps=None, sampler=None, t=t):  # type: ignore[no-untyped-def]
                return sample(self, omega, noise * t, steps, sampler)

            ClosureModel.sample = scaled  # type: ignore[method-assign]
            r = evaluate_run(args.run, args.data, steps=args.steps, samples=args.samples, conditions=args.conditions)
            rows.append({"temperature": t, **{k: r[k] for k in KEYS}})
            print({k: round(v, 4) for k, v in rows[-1].items()}, flush=True)
    finally:
        ClosureModel.sample = sample  # type: ignore[method-assign]
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"run": str(args.run), "data": str(args.data), "steps": args.steps,
                                     "samples": args.samples, "conditions": args.conditions,
                                     "machine": platform.processor() or platform.machine(), "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
