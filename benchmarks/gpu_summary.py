"""Summary of ``benchmarks/gpu.sh``: one table, and ``summary.json`` / ``summary.md`` in the work folder.

Reads ``timings.json`` (wall time of every step), ``data.h5`` (pairs, fingerprint), ``apriori-NAME.json``
(``kolmo evaluate apriori``), ``bench-closures.json`` / ``bench-coupled-bM.json`` (``kolmo bench``) and
``report-NAME-icK/metrics.json`` (``kolmo evaluate online``, one per initial condition).

    python benchmarks/gpu_summary.py WORKDIR --size gpu --device cuda --workers 16 --trajectories 32
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
from pathlib import Path
from typing import Any

import h5py

MODELS = {"rf1": "RF-1 (latent-reflow, 1 step)", "dm10": "DM-10 (physical VE-SDE, 10 EM steps)"}
APRIORI = ("ensemble_mean_rel_error", "spread_skill", "crps_rel", "field_std_ratio", "nfe")
PAPER_TRAJECTORIES = 100
"""The paper's dataset: 100 trajectories of dong2026 at 256², t ∈ [20, 40) every 0.1 (18,000 + 2,000 pairs)."""


def _online(work: Path, name: str) -> dict[str, Any]:
    """Mean over initial conditions of the online scores of ``name`` (``rf1``, ``dm10``) and of the two
    baselines recorded in its reports, at the report's horizons."""
    per: dict[str, list[float]] = {}
    reports = sorted(work.glob(f"report-{name}-ic*/metrics.json"))
    for report in reports:
        m = json.loads(report.read_text())
        for label, res in m["results"].items():
            who = "none" if "online-none" in label else "true" if "online-true" in label else name
            for row in res["trajectory"]["at_horizons"]:
                for key in ("rel_error_mean", "spread_skill", "crps"):
                    if row.get(key) is not None:
                        per.setdefault(f"{who}:{key}@{row['horizon']:g}", []).append(float(row[key]))
            spec = res["statistics"].get("spectrum_error_energy")
            if spec is not None:
                per.setdefault(f"{who}:spectrum_error_energy", []).append(float(spec))
    return {"initial_conditions": len(reports), "mean": {k: statistics.fmean(v) for k, v in per.items()}}


def _bench(work: Path) -> dict[str, Any]:
    out: dict[str, Any] = {"closures": {}, "coupled": []}
    path = work / "bench-closures.json"
    if path.exists():
        bench = json.loads(path.read_text())
        out["machine"] = bench.get("machine")
        for row in bench["rows"]:
            name = Path(str(row["artifact"])).stem
            out["closures"].setdefault(name, {})[f"b{row['batch']}"] = {
                "median_ms": row["median_ms"], "speedup_vs_dm10": row.get("speedup"), "cuda_graph": row.get("cuda_graph"),
                "device": row.get("device")}
    for path in sorted(work.glob("bench-coupled-b*.json")):
        out["coupled"].extend(json.loads(path.read_text())["rows"])
    return out


def summarise(work: Path, size: str, device: str, workers: int, trajectories: int) -> dict[str, Any]:
    timings = json.loads((work / "timings.json").read_text())
    with h5py.File(work / "data.h5", "r") as h5:
        n_fine, n_coarse = int(h5.attrs["n_fine"]), int(h5.attrs["n_coarse"])
        pairs = {s: int(h5[s]["vorticity"].shape[0]) for s in ("train", "test")}
        fp = str(h5.attrs["fingerprint"])
    data_s = timings.get("dataset")
    per_traj_core_s = data_s * workers / trajectories if data_s else None
    dataset = {"fine": n_fine, "coarse": n_coarse, "trajectories": trajectories, "pairs": pairs, "fingerprint": fp,
               "workers": workers, "wall_s": data_s, "core_seconds_per_trajectory": per_traj_core_s}
    if size == "gpu" and per_traj_core_s:
        dataset["paper_estimate_wall_s"] = PAPER_TRAJECTORIES * per_traj_core_s / workers
        dataset["paper_estimate_rule"] = (f"{PAPER_TRAJECTORIES} trajectories x measured core-seconds per trajectory / "
                                          f"{workers} workers (assumes linear scaling)")
    apriori = {}
    for name in MODELS:
        p = work / f"apriori-{name}.json"
        if p.exists():
            a = json.loads(p.read_text())
            apriori[name] = {k: a.get(k) for k in APRIORI}
    return {"size": size, "device": device, "host": platform.node(), "processor": platform.processor(),
            "timings_s": timings, "total_s": sum(timings.values()), "dataset": dataset, "apriori": apriori,
            "online": {name: _online(work, name) for name in ("rf1", "dm10")}, "speed": _bench(work)}


def markdown(s: dict[str, Any]) -> str:
    d = s["dataset"]
    lines = [f"# gpu.sh --size {s['size']} (device {s['device']}, total {s['total_s']:.0f} s)", "",
             f"Data: dong2026 {d['fine']}² → {d['coarse']}², {d['trajectories']} trajectories, "
             f"{d['pairs']['train']} / {d['pairs']['test']} pairs, {d['workers']} Dask workers, "
             f"{d['wall_s']:.0f} s ({d['core_seconds_per_trajectory']:.1f} core-s per trajectory)."]
    if "paper_estimate_wall_s" in d:
        lines.append(f"Paper dataset estimate: {d['paper_estimate_wall_s']:.0f} s ({d['paper_estimate_rule']}).")
    lines += ["", "| model | NFE | a-priori err | spread–skill | CRPS/rms | std ratio | online err (T/4, T/2, T) "
              "| online spread–skill T/2 | ms/call by batch | speed-up vs DM-10 by batch |",
              "|---|---|---|---|---|---|---|---|---|---|"]
    closures = s["speed"]["closures"]
    for name, label in MODELS.items():
        a = s["apriori"].get(name, {})
        on = s["online"].get(name, {}).get("mean", {})
        errs = sorted((float(k.split("@")[1]), v) for k, v in on.items() if k.startswith(f"{name}:rel_error_mean@"))
        ss = sorted((float(k.split("@")[1]), v) for k, v in on.items() if k.startswith(f"{name}:spread_skill@"))
        c = closures.get(name, {})

        batches = sorted(c, key=lambda b: int(b[1:]))
        ms = " / ".join(f"{b}: {c[b]['median_ms']:.3g}" for b in batches) or "–"
        up = " / ".join(f"{b}: {c[b]['speedup_vs_dm10']:.3g}" for b in batches if c[b].get("speedup_vs_dm10")) or "–"

        fmt = (lambda x: "–" if x is None else f"{x:.3g}")
        lines.append(f"| {label} | {a.get('nfe', '–')} | {fmt(a.get('ensemble_mean_rel_error'))} | "
                     f"{fmt(a.get('spread_skill'))} | {fmt(a.get('crps_rel'))} | {fmt(a.get('field_std_ratio'))} | "
                     f"{' / '.join(f'{v:.3g}' for _, v in errs) or '–'} | "
                     f"{fmt(ss[len(ss) // 2][1]) if ss else '–'} | {ms} | {up} |")
    on = s["online"].get("rf1", {}).get("mean", {})
    for who in ("none", "true"):
        errs = sorted((float(k.split("@")[1]), v) for k, v in on.items() if k.startswith(f"{who}:rel_error_mean@"))
        lines.append(f"| {who} closure | – | – | – | – | – | {' / '.join(f'{v:.3g}' for _, v in errs) or '–'} "
                     f"| – | – | – |")
    if s["speed"]["coupled"]:
        lines += ["", "| coupled: closure | members | wall [s] | closure share | overhead vs solver |", "|---|---|---|---|---|"]
        for r in s["speed"]["coupled"]:
            lines.append(f"| {r['closure']} | {r['members']} | {r['wall_s']:.3g} | {r['closure_share']:.2f} | "
                         f"{r['overhead']:.3g}× |")
    lines += ["", "Step wall times [s]: " + ", ".join(f"{k} {v:.0f}" for k, v in s["timings_s"].items())]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("work", type=Path)
    ap.add_argument("--size", required=True)
    ap.add_argument("--device", required=True)
    ap.add_argument("--workers", type=int, required=True)
    ap.add_argument("--trajectories", type=int, required=True)
    args = ap.parse_args()
    s = summarise(args.work, args.size, args.device, args.workers, args.trajectories)
    (args.work / "summary.json").write_text(json.dumps(s, indent=1))
    md = markdown(s)
    (args.work / "summary.md").write_text(md)
    print(md)


if __name__ == "__main__":
    main()
