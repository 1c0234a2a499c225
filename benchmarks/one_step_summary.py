"""Summary of ``benchmarks/one_step.sh``: one table of every generator, a priori, online and speed.

Reads ``WORKDIR/apriori-NAME.json`` (``kolmo evaluate apriori``), ``WORKDIR/report-NAME-icK/metrics.json``
(``kolmo evaluate online``, one per initial condition) and ``WORKDIR/bench.json`` (``kolmo bench
closures``), and writes ``WORKDIR/summary.json`` and ``WORKDIR/summary.md``. Online numbers are the mean
over the initial conditions (their spread is in the JSON).

Usage: ``python benchmarks/one_step_summary.py WORKDIR --epochs E --ae-epochs A --reflow-epochs R --dm-epochs D --batch B``
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import statistics
from pathlib import Path
from typing import Any

from kolmo import atomic

ROWS = {"fm1": "FM-1 (latent-fm, 1 Euler step)", "fm10": "FM-10 (latent-fm, 10 Euler steps)",
        "si10": "SI-10 (latent-si, 10 EM steps)", "dm10": "DM-10 (physical VE-SDE, 10 EM steps)",
        "mf1": "MF-1 (latent-mf, 1 MeanFlow jump)", "rf1": "RF-1 (latent-reflow, 1 Euler step)",
        "rf1long": "RF-1 long (latent-reflow, 1 Euler step, longer reflow)",
        "fm10thin": "FM-10 thin (latent-fm, decoder channels 4,8,16, 10 Euler steps)",
        "rf1thin": "RF-1 thin (latent-reflow of FM thin, 1 Euler step)"}
HORIZONS = (2.5, 5.0, 10.0)
APRIORI = ("ensemble_mean_rel_error", "sample_rel_error_mean", "spread_skill", "crps_rel", "field_std_ratio",
           "high_band_energy_ratio", "spectrum_error", "nfe")


def _online(work: Path, name: str, reference: str | None = None) -> dict[str, Any]:
    """Online scores of model ``name`` over its reports, or of the baseline ``reference`` ("none" / "true")
    as recorded in model ``name``'s reports."""
    per_ic: list[dict[str, Any]] = []
    for report in sorted(work.glob(f"report-{name}-ic*/metrics.json")):
        m = json.loads(report.read_text())
        if reference is None:
            label = next(k for k in m["results"] if "online-none" not in k and "online-true" not in k)
        else:
            label = next(k for k in m["results"] if k.startswith(f"online-{reference}-"))
        res = m["results"][label]
        rows = {r["horizon"]: r for r in res["trajectory"]["at_horizons"]}
        stats = res["statistics"]
        per_ic.append({"report": str(report.parent.name),
                       **{f"{key}@{h:g}": rows[h][key] for h in HORIZONS for key in ("rel_error_mean",
                                                                                       "spread_skill", "crps")
                          if h in rows and rows[h][key] is not None},
                       "spectrum_error_energy": stats.get("spectrum_error_energy"),
                       "w1_vorticity": stats.get("w1_vorticity")})
    if not per_ic:
        return {"initial_conditions": 0}
    keys = [k for k in per_ic[0] if k != "report"]
    mean = {k: statistics.fmean(x[k] for x in per_ic if x.get(k) is not None) for k in keys}
    return {"initial_conditions": len(per_ic), "mean": mean, "per_ic": per_ic}


def _speed(work: Path) -> dict[str, dict[str, float]]:
    """Latency and speed-up vs DM-10 per artifact from ``bench.json`` (every artifact in one run)."""
    out: dict[str, dict[str, float]] = {}
    rows = json.loads((work / "bench.json").read_text()).get("rows", []) if (work / "bench.json").exists() else []
    for row in rows:
        name = Path(str(row.get("artifact", ""))).stem
        out.setdefault(name, {})[f"ms@b{row['batch']}"] = float(row["median_ms"])
        if "speedup" in row:
            out[name][f"speedup@b{row['batch']}"] = float(row["speedup"])
    return out


def summarise(work: Path, budget: dict[str, int]) -> dict[str, Any]:
    speed = _speed(work)
    models: dict[str, Any] = {}
    for name, label in ROWS.items():
        ap_path = work / f"apriori-{name}.json"
        if not ap_path.exists():
            continue
        ap = json.loads(ap_path.read_text())
        run = {"fm1": "fm", "fm10": "fm", "si10": "si", "dm10": "dm", "mf1": "mf", "rf1": "reflow",
               "rf1long": "reflow50", "fm10thin": "fm-thin", "rf1thin": "reflow-thin"}[name]
        history = json.loads((work / run / "run.json").read_text())["history"] if (work / run / "run.json").exists() \
            else []
        models[name] = {"label": label, "apriori": {k: ap.get(k) for k in APRIORI},
                        "train_seconds": sum(h["seconds"] for h in history),
                        "train_epochs": {p: sum(1 for h in history if h["phase"] == p) for p in
                                         sorted({h["phase"] for h in history})},
                        "irreducible_floor": ap.get("irreducible_floor"), "target": ap.get("target"),
                        "online": _online(work, name), "speed": speed.get(name, {})}
    first = next(iter(models), None)
    baselines = {ref: _online(work, first, ref) for ref in ("none", "true")} if first else {}
    return {"budget": budget, "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
            "models": models, "baselines": baselines}


def _fmt(x: Any, digits: int = 3) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "–"
    return f"{x:.{digits}g}" if isinstance(x, float) else str(x)


def markdown(s: dict[str, Any]) -> str:
    b = s["budget"]
    walls = ", ".join(f"{m['label'].split(' (')[0]} {m['train_seconds']:.0f} s" for m in s["models"].values()
                      if m.get("train_seconds"))
    lines = [f"Budget: {b['epochs']} generator epochs (+ {b['ae_epochs']} autoencoder epochs for latent models), "
             f"batch {b['batch']}; RF-1 trains {b['reflow_epochs']} (RF-1 long: {b['reflow_long_epochs']}) more epochs "
             f"on its FM teacher's couplings; "
             f"DM-10 trains {b['dm_epochs']} epochs (equal wall time to the FM teacher, not equal steps). "
             f"Training wall time: {walls}.", "",
             "| model | NFE | ens.-mean err | per-sample err | spread–skill | CRPS/rms | std ratio | high-band E ratio "
             "| online err +2.5/+5/+10 | online spread–skill +2.5/+5/+10 | online CRPS +5 | online spectrum err "
             "| ms/call b1 | speed-up vs DM-10 b1 / b100 |",
             "|---" * 14 + "|"]
    for m in s["models"].values():
        a, o, sp = m["apriori"], m["online"].get("mean", {}), m["speed"]
        err = "/".join(_fmt(o.get(f"rel_error_mean@{h:g}")) for h in HORIZONS)
        ss = "/".join(_fmt(o.get(f"spread_skill@{h:g}"), 2) for h in HORIZONS)
        lines.append(f"| {m['label']} | {a['nfe']} | {_fmt(a['ensemble_mean_rel_error'])} | "
                     f"{_fmt(a['sample_rel_error_mean'])} | {_fmt(a['spread_skill'], 2)} | {_fmt(a['crps_rel'])} | "
                     f"{_fmt(a['field_std_ratio'], 2)} | {_fmt(a['high_band_energy_ratio'], 2)} | {err} | {ss} | "
                     f"{_fmt(o.get('crps@5'))} | {_fmt(o.get('spectrum_error_energy'))} | {_fmt(sp.get('ms@b1'))} | "
                     f"{_fmt(sp.get('speedup@b1'))} / {_fmt(sp.get('speedup@b100'))} |")
    for ref, label in (("none", "no closure"), ("true", "true closure (replayed)")):
        o = s.get("baselines", {}).get(ref, {}).get("mean", {})
        err = "/".join(_fmt(o.get(f"rel_error_mean@{h:g}")) for h in HORIZONS)
        lines.append(f"| {label} | – | – | – | – | – | – | – | {err} | – | {_fmt(o.get('crps@5'))} | "
                     f"{_fmt(o.get('spectrum_error_energy'))} | – | – |")
    return "\n".join(lines) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("work", type=Path)
    for name in ("epochs", "ae-epochs", "reflow-epochs", "reflow-long-epochs", "dm-epochs", "batch"):
        p.add_argument(f"--{name}", type=int, required=True)
    a = p.parse_args()
    s = summarise(a.work, {"epochs": a.epochs, "ae_epochs": a.ae_epochs, "reflow_epochs": a.reflow_epochs,
                           "reflow_long_epochs": a.reflow_long_epochs, "dm_epochs": a.dm_epochs, "batch": a.batch})
    atomic.write_json(a.work / "summary.json", s, indent=1)
    atomic.write_text(a.work / "summary.md", markdown(s))
    print(markdown(s))


if __name__ == "__main__":
    main()
