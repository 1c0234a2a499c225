"""Regenerate the headline table: every closure family's latency beside its a-priori error.

Speed is never quoted without quality. For each variant (one-step latent FM with MP, latent FM
with 2 and 10 steps, the decoder/condition choices, latent SI, latent DM, physical FM, physical
DM with the reference 10-step Euler–Maruyama sampler and with EDM Heun (35 NFE)):

* **quality**: a model of that family trained on ``--data`` (``kolmo train``) and evaluated a
  priori (``kolmo evaluate apriori``: ensemble-mean relative error, sample std, spread–skill, NFE);
* **speed**: the exported artifact timed as the solver calls it (``kolmo bench closures``) at
  the paper's grid ``--latency-grid`` (64²). Latency depends on the architecture only, not on
  the weights, so it is measured on freshly built models of the same configuration at 64²
  (the trained ones are at the data's grid, which may be smaller on a CPU budget).

Usage::

    python benchmarks/headline.py --data DATA.h5 --work build/headline [--epochs 60 --ae-epochs 30]
        [--latency-grid 64] [--batches 1,100] [--repeat 30] [--markdown benchmarks/headline.md]

Every stage skips what is already in ``--work`` (resumable).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from kolmo import atomic

# (name, model config, export options, label)
VARIANTS: list[tuple[str, dict[str, Any], dict[str, Any], str]] = [
    ("latent-fm-mp", {"model": "latent-fm", "reg": "mp"}, {"steps": 1}, "latent FM, MP, conv decoder, 1 step"),
    ("latent-fm-mp-2", {"model": "latent-fm", "reg": "mp"}, {"steps": 2}, "latent FM, MP, 2 steps"),
    ("latent-fm-mp-10", {"model": "latent-fm", "reg": "mp"}, {"steps": 10}, "latent FM, MP, 10 steps"),
    ("latent-fm-none", {"model": "latent-fm", "reg": "none"}, {"steps": 1}, "latent FM, no regularizer, 1 step"),
    ("latent-fm-pca", {"model": "latent-fm", "reg": "none", "autoencoder": "pca"}, {"steps": 1},
     "latent FM, POD/PCA decoder, 1 step"),
    ("latent-fm-mp-pooled", {"model": "latent-fm", "reg": "mp", "condition": "pooled"}, {"steps": 1},
     "latent FM, MP, pooled-ω condition, 1 step"),
    ("latent-si", {"model": "latent-si", "reg": "mp"}, {}, "latent SI, MP"),
    ("latent-dm", {"model": "latent-dm", "reg": "mp"}, {}, "latent DM, MP, 10 steps"),
    ("fm", {"model": "fm"}, {}, "physical FM"),
    ("dm", {"model": "dm"}, {"sampler": "em"}, "physical DM, EM 10 steps (reference closure)"),
    ("dm-heun", {"model": "dm"}, {"sampler": "heun"}, "physical DM, EDM Heun 18 steps (35 NFE)"),
]
BASELINE = "dm"


def train_run(name: str, model: dict[str, Any], data: Path, work: Path, epochs: int, ae_epochs: int,
              batch: int, seed: int) -> Path:
    """Train (or resume) the run that variant ``name`` is evaluated from; variants share runs."""
    from closure.data import read_info
    from closure.models import ModelConfig
    from closure.training import TrainConfig, train

    run_dir = work / "runs" / "-".join(f"{k}={v}" for k, v in sorted(model.items()))
    if (run_dir / "best.pt").exists():
        return run_dir
    grid = read_info(data).grid
    cfg = TrainConfig(data=str(data), model=ModelConfig(grid=grid, **model), epochs=epochs, ae_epochs=ae_epochs,
                      batch=batch, seed=seed)
    t0 = time.perf_counter()
    res = train(cfg, run_dir, resume=run_dir.exists())
    atomic.write_json(run_dir / "headline-train.json",
                      {"seconds": time.perf_counter() - t0, "throughput": res.throughput, "parameters": res.parameters},
                      indent=1, default=str)
    return run_dir


def latency_artifact(name: str, model: dict[str, Any], export: dict[str, Any], grid: int, work: Path,
                     fit_data: Path) -> Path:
    """Export a freshly built model of the variant's architecture at ``grid`` (for timing only)."""
    import torch

    from closure.data import Normalisation
    from closure.export import export_model
    from closure.models import ModelConfig, build_model

    out = work / "latency" / f"{name}.pt"
    if out.exists():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    m = build_model(ModelConfig(grid=grid, **model))
    if model.get("autoencoder") == "pca":  # a PCA basis must exist: fit it on random fields of the grid
        from closure.autoencoders import PCAAutoencoder

        m.target_coder = PCAAutoencoder.fit(torch.randn(512, 1, grid, grid),
                                            latent_size=m.config.latent_size or grid // 4)
    m.eval()
    norm = Normalisation(0.0, 1.0, 0.0, 1.0)
    dataset = {"preset": "dong2026", "target": "missing-physics", "L": 1.0, "dt": 1e-3,
               "fingerprint": "architecture-only (untrained, for latency)"}
    export_model(m, norm, dataset, out, run_id=f"latency-{name}", **export)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--work", type=Path, default=Path("build/headline"))
    p.add_argument("--epochs", type=int, default=60)
    p.add_argument("--ae-epochs", type=int, default=30)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--samples", type=int, default=50)
    p.add_argument("--conditions", type=int, default=10)
    p.add_argument("--latency-grid", type=int, default=64)
    p.add_argument("--batches", default="1,100")
    p.add_argument("--repeat", type=int, default=30)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--only", default="", help="comma-separated variant names (default: all)")
    p.add_argument("--markdown", type=Path, default=None)
    a = p.parse_args()

    import torch

    from closure.evaluation import evaluate_run
    from coupling.bench import bench_closures, machine_info

    torch.set_num_threads(a.threads)
    variants = [v for v in VARIANTS if not a.only or v[0] in a.only.split(",") or v[0] == BASELINE]
    a.work.mkdir(parents=True, exist_ok=True)
    quality: dict[str, dict[str, Any]] = {}
    for name, model, export, _ in variants:
        qpath = a.work / "apriori" / f"{name}.json"
        if qpath.exists():
            quality[name] = json.loads(qpath.read_text())
            continue
        run_dir = train_run(name, model, a.data, a.work, a.epochs, a.ae_epochs, a.batch, a.seed)
        q = evaluate_run(run_dir, a.data, samples=a.samples, conditions=a.conditions, seed=a.seed,
                         steps=export.get("steps"), sampler=export.get("sampler"))
        tjson = run_dir / "headline-train.json"
        q["training"] = json.loads(tjson.read_text()) if tjson.exists() else {}
        qpath.parent.mkdir(parents=True, exist_ok=True)
        atomic.write_json(qpath, q, indent=1, default=str)
        quality[name] = q
        print(f"{name}: ensemble-mean rel. error {q['ensemble_mean_rel_error']:.3f}", flush=True)
    paths = {name: latency_artifact(name, model, export, a.latency_grid, a.work, a.data)
             for name, model, export, _ in variants}
    batches = [int(x) for x in a.batches.split(",")]
    order = [BASELINE] + [v[0] for v in variants if v[0] != BASELINE]
    rows = bench_closures([paths[n] for n in order], batches, repeat=a.repeat, warmup=3)
    lat = {(Path(r.artifact).stem, r.batch): r for r in rows}
    result = {"machine": machine_info(), "data": str(a.data), "latency_grid": a.latency_grid,
              "epochs": a.epochs, "ae_epochs": a.ae_epochs, "variants": []}
    header = ["closure", "NFE", "MFLOP/sample", "params"]
    for b in batches:
        header += [f"ms/call B={b}", f"speed-up B={b}"]
    header += ["ens.-mean rel. err.", "sample std / rms(H)", "spread–skill", "straightness"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name, model, export, label in sorted(variants, key=lambda v: order.index(v[0])):
        q = quality[name]
        r1 = lat[(name, batches[0])]
        cells = [label, str(r1.nfe), f"{(r1.flops_per_sample or 0) / 1e6:.1f}", f"{r1.parameters:,}"]
        for b in batches:
            r = lat[(name, b)]
            cells += [f"{r.median_ms:.2f}", f"{r.speedup:.1f}×"]
        cells += [f"{q['ensemble_mean_rel_error']:.3f}", f"{q.get('sample_std_rel', float('nan')):.3f}", f"{q.get('spread_skill', float('nan')):.2f}",
                  f"{q.get('straightness', float('nan')):.3f}"]
        lines.append("| " + " | ".join(cells) + " |")
        result["variants"].append({"name": name, "label": label, "model": model, "export": export,
                                   "latency": {b: lat[(name, b)].as_dict() for b in batches}, "apriori": q})
    table = "\n".join(lines)
    print(table)
    atomic.write_json(a.work / "headline.json", result, indent=1, default=str)
    if a.markdown is not None:
        atomic.write_text(a.markdown, table + "\n")


if __name__ == "__main__":
    main()
