"""What the inference form and freezing each buy at batch 1 (issue 13): one trained run, four modules.

From the run directory of a trained closure, the same artifact (:class:`closure.export.ClosureArtifact`)
is scripted in four forms and timed **interleaved** (every round calls each form once, the order
alternating), 1 torch thread, float32:

- ``fft``: the trained model as it was exported before issue 13 (``torch.fft`` spectral convolutions);
- ``fft, frozen``: the same, ``torch.jit.freeze``-d as :func:`coupling.artifact.load_artifact` now does;
- ``matrix, frozen``: the spectral convolutions as DFT matrices only;
- ``matrix + time grid``: the whole inference form (:func:`closure.inference.inference_form`), unfrozen;
- ``matrix + time grid, frozen``: what an exported artifact runs now.

Each form's max |ΔH| against the eager model on the same noise is recorded too.

Usage: ``python benchmarks/closure_inference.py RUN_DIR --out benchmarks/data/one_step/inference-forms.json``
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import warnings
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from closure.export import ClosureArtifact  # noqa: E402
from closure.inference import inference_form, spectral_grids  # noqa: E402
from closure.training import load_run  # noqa: E402
from coupling.bench import machine_info  # noqa: E402
from kolmo import atomic  # noqa: E402


def forms(run_dir: Path) -> tuple[dict[str, torch.jit.ScriptModule], ClosureArtifact, float]:
    """The four scripted forms, the eager artifact, and σ_H."""
    run = load_run(run_dir)
    model = run.model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    eager = ClosureArtifact(model, run.normalisation).eval()
    omega = torch.randn(1, eager.grid, eager.grid)
    noise = torch.randn(eager.noise_shape(1))
    grids = spectral_grids(eager, lambda: eager.sample(omega, noise))
    keep = ["sample", "noise_shape"]
    scripted = {"fft": torch.jit.script(eager),
                "matrix": torch.jit.script(inference_form(eager, grids, time_grid=False)),
                "matrix + time grid": torch.jit.script(inference_form(eager, grids))}
    out = {"fft": scripted["fft"], "fft, frozen": torch.jit.freeze(scripted["fft"].eval(), preserved_attrs=keep),
           "matrix, frozen": torch.jit.freeze(scripted["matrix"].eval(), preserved_attrs=keep),
           "matrix + time grid": scripted["matrix + time grid"],
           "matrix + time grid, frozen": torch.jit.freeze(scripted["matrix + time grid"].eval(),
                                                          preserved_attrs=keep)}
    return out, eager, float(run.normalisation.closure_std)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--batches", default="1,8")
    ap.add_argument("--repeat", type=int, default=200)
    ap.add_argument("--warmup", type=int, default=20)
    args = ap.parse_args()
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    torch.set_num_threads(1)
    torch.manual_seed(0)
    modules, eager, sigma = forms(args.run_dir)
    names = list(modules)
    load_before = os.getloadavg()
    rows = []
    for b in [int(x) for x in args.batches.split(",")]:
        omega = torch.randn(b, eager.grid, eager.grid)
        noise = torch.randn(eager.noise_shape(b))
        times: dict[str, list[float]] = {n: [] for n in names}
        with torch.inference_mode():
            want = eager.sample(omega, noise)
            diffs = {n: float((modules[n].sample(omega, noise) - want).abs().max()) / sigma for n in names}
            for r in range(args.warmup + args.repeat):
                for n in (names if r % 2 == 0 else names[::-1]):
                    t0 = time.perf_counter()
                    modules[n].sample(omega, noise)
                    if r >= args.warmup:
                        times[n].append((time.perf_counter() - t0) * 1e3)
        row = {"batch": b, "repeat": args.repeat}
        for n in names:
            row[n] = {"median_ms": statistics.median(times[n]), "min_ms": min(times[n]),
                      "max_abs_diff_over_sigma_H": diffs[n]}
            row[n]["median_over_fft"] = row[n]["median_ms"] / statistics.median(times["fft"])
        print(b, {n: round(row[n]["median_ms"], 3) for n in names}, flush=True)
        rows.append(row)
    atomic.write_json(args.out, {"machine": machine_info(), "torch_threads": torch.get_num_threads(),
                                 "load_average_before": load_before, "load_average_after": os.getloadavg(),
                                 "run_dir": str(args.run_dir), "rows": rows}, indent=1)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
