"""Summary of benchmarks/latent_geometry.sh: one row per run (regularizer x latent standardisation).

Reads each run's ``run.json`` (per-epoch loss terms, unweighted and weighted) and its a-priori JSON
(10 and 1 Euler steps; with the latent-geometry measures of :mod:`closure.geometry`), and measures on the
test split the target autoencoder's relative reconstruction error ``‖D(E(H)) − H‖ / ‖H‖`` (mean over pairs)
the std of the raw latent ``z = E(H_n)`` (what the generator sees without standardisation), and the GA
stress of the test latents against the test closures' own diffusion potentials
(:func:`closure.regularizers.scaled_geometry_aware_loss` over all test pairs, PHATE knn 10 / t 10, exact;
0 = latent distances proportional to the potential distances on the weighted pairs). Writes
``WORKDIR/summary.json`` and ``WORKDIR/summary.md``.

Usage: python benchmarks/latent_geometry_summary.py WORKDIR --epochs E --ae-epochs A --batch B
"""

from __future__ import annotations

import argparse
import json
import platform
from pathlib import Path
from typing import Any

import torch

from closure.regularizers import potential_distance_median, scaled_geometry_aware_loss
from kolmo import atomic

RUNS = ("none", "mp", "ga-reference", "ga-median", "ga-median-w0.1")
LATENTS = ("std", "raw")


@torch.no_grad()
def coder_stats(run_dir: Path, data: Path) -> dict[str, float]:
    """Test reconstruction error of the target autoencoder and the std / mean of its raw latent."""
    from closure.data import ClosurePairs
    from closure.training import load_run

    run = load_run(run_dir, "last")
    pairs = ClosurePairs(data, "test", run.normalisation, dtype=torch.float32)
    h = pairs.closure
    z = run.model.target_coder.encode(h)
    rec = run.model.target_coder.decode(z)
    err = torch.linalg.vector_norm((rec - h).flatten(1), dim=1) / torch.linalg.vector_norm(h.flatten(1), dim=1)
    u = torch.as_tensor(_potentials(data, h))
    d = torch.cdist(u, u)
    stress = scaled_geometry_aware_loss(z.double(), d, potential_distance_median(u))
    return {"reconstruction_rel_error": float(err.mean()), "latent_std": float(z.std()),
            "ga_stress_test": float(stress),
            "latent_mean": float(z.mean()), "latent_shift": float(run.model.latent_shift),
            "latent_scale": float(run.model.latent_scale)}


_POTENTIALS: dict[str, Any] = {}


def _potentials(data: Path, h: torch.Tensor) -> Any:
    """Exact PHATE potentials of the test closures (computed once per data file)."""
    from closure.regularizers import diffusion_potential

    if str(data) not in _POTENTIALS:
        _POTENTIALS[str(data)] = diffusion_potential(h.flatten(1).double().numpy(), n_landmarks=None)
    return _POTENTIALS[str(data)]


def loss_terms(history: list[dict[str, Any]]) -> dict[str, Any]:
    """Autoencoder-phase terms per epoch and the last epoch of each phase."""
    ae = [h for h in history if h["phase"] == "autoencoder"]
    out: dict[str, Any] = {"autoencoder_epochs": [{"epoch": h["epoch"], "components": h["components"],
                                                   "weighted": h.get("weighted", {})} for h in ae]}
    for phase in ("autoencoder", "generator"):
        rows = [h for h in history if h["phase"] == phase]
        if rows:
            out[f"{phase}_last"] = {"components": rows[-1]["components"], "weighted": rows[-1].get("weighted", {}),
                                    "val_loss": rows[-1]["val_loss"]}
    reg = [h.get("weighted", {}).get(k) for h in ae for k in ("ga", "mp") if k in h.get("weighted", {})]
    rec = [h["weighted"]["mse_H"] for h in ae if "mse_H" in h.get("weighted", {})]
    if reg and rec:
        out["regularizer_share_first_last"] = [reg[0] / rec[0], reg[-1] / rec[-1]]
    return out


def row(work: Path, name: str) -> dict[str, Any] | None:
    run_dir = work / name
    if not (run_dir / "run.json").is_file():
        return None
    summary = json.loads((run_dir / "run.json").read_text())
    out: dict[str, Any] = {"run": name, "model": summary["model"], "ga_distance_median": summary.get("ga_distance_median"),
                           "config": {k: summary["config"][k] for k in ("ga_scale", "ga_weight", "mp_weight",
                                                                        "standardise", "epochs", "ae_epochs", "batch")},
                           **loss_terms(summary["history"]), **coder_stats(run_dir, work / "data.h5")}
    for steps in (10, 1):
        path = work / f"apriori-{name}-s{steps}.json"
        if path.is_file():
            res = json.loads(path.read_text())
            out[f"apriori_{steps}"] = {k: res.get(k) for k in (
                "ensemble_mean_rel_error", "sample_rel_error_mean", "spread_skill", "crps_rel", "sample_std_rel",
                "spectrum_error", "straightness", "knn_preservation", "trustworthiness", "continuity", "local_stress",
                "distance_correlation", "geometry_k",
                "geometry_points", "samples", "conditions", "nfe")}
    return out


def markdown(rows: list[dict[str, Any]], args: argparse.Namespace) -> str:
    lines = [f"Budget (every run): latent-fm, conv target autoencoder, pooled condition, {args.ae_epochs} "
             f"autoencoder + {args.epochs} generator epochs, batch {args.batch}, seed 0, 1 thread.", "",
             "| run | latent | ens.-mean err. FM-10 | spread–skill FM-10 | CRPS/rms FM-10 | ens.-mean err. FM-1 | "
             "kNN kept (k=10) | trustw. | local stress (k=10) | dist. corr. | GA stress (test) | AE rec. err. | "
             "raw latent std | reg. / rec. term (last AE epoch) |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        a10, a1 = r.get("apriori_10", {}), r.get("apriori_1", {})
        share = r.get("regularizer_share_first_last")
        f = (lambda d, k: f"{d[k]:.3f}" if d.get(k) is not None else "–")  # noqa: E731
        lines.append(f"| {r['run'].rsplit('-', 1)[0]} | {'standardised' if r['config']['standardise'] else 'raw'} | "
                     f"{f(a10, 'ensemble_mean_rel_error')} | {f(a10, 'spread_skill')} | {f(a10, 'crps_rel')} | "
                     f"{f(a1, 'ensemble_mean_rel_error')} | {f(a10, 'knn_preservation')} | "
                     f"{f(a10, 'trustworthiness')} | {f(a10, 'local_stress')} | {f(a10, 'distance_correlation')} | "
                     f"{r['ga_stress_test']:.3f} | {r['reconstruction_rel_error']:.3f} | {r['latent_std']:.3g} | "
                     f"{f'{share[1]:.2g}' if share else '–'} |")
    lines += ["", "Autoencoder phase, per epoch (standardised runs; the terms are the same for raw): "
              "mse_H and the regularizer, unweighted (weighted).", ""]
    ga = [r for r in rows if r["config"]["standardise"] and r["run"] != "none-std"]
    lines += ["| epoch | " + " | ".join(r["run"].rsplit("-", 1)[0] for r in ga) + " |",
              "|---|" + "---|" * len(ga)]
    for e in range(max((len(r["autoencoder_epochs"]) for r in ga), default=0)):
        cells = []
        for r in ga:
            h = r["autoencoder_epochs"][e] if e < len(r["autoencoder_epochs"]) else None
            key = next((k for k in ("ga", "mp") if h and k in h["components"]), None)
            cells.append("–" if key is None else f"mse_H {h['components']['mse_H']:.3g}, {key} "
                         f"{h['components'][key]:.3g} ({h['weighted'][key]:.2g})")
        lines.append(f"| {e + 1} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("work", type=Path)
    parser.add_argument("--epochs", type=int, required=True)
    parser.add_argument("--ae-epochs", type=int, required=True)
    parser.add_argument("--batch", type=int, required=True)
    args = parser.parse_args()
    torch.set_num_threads(1)
    rows = [r for name in (f"{run}-{lat}" for run in RUNS for lat in LATENTS) if (r := row(args.work, name))]
    meta = {"machine": f"{platform.machine()} {platform.processor() or ''}".strip(), "torch": torch.__version__,
            "budget": {"epochs": args.epochs, "ae_epochs": args.ae_epochs, "batch": args.batch}}
    atomic.write_json(args.work / "summary.json", {"meta": meta, "rows": rows}, indent=1)
    atomic.write_text(args.work / "summary.md", markdown(rows, args))
    print(markdown(rows, args))


if __name__ == "__main__":
    main()
