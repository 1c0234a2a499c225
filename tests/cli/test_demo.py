"""`kolmo demo --size ci` runs every stage and produces a report with finite numbers and figures."""

import json
import math
from pathlib import Path

from typer.testing import CliRunner

from cli.main import app


def _finite_numbers(obj) -> list[float]:  # noqa: ANN001
    if isinstance(obj, dict):
        return [x for v in obj.values() for x in _finite_numbers(v)]
    if isinstance(obj, list):
        return [x for v in obj for x in _finite_numbers(v)]
    return [obj] if isinstance(obj, float) else []


def test_demo_ci_runs_every_stage_and_writes_a_report(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    result = CliRunner().invoke(app, ["demo", "--out", str(out), "--size", "ci"])
    assert result.exit_code == 0, result.output
    for stage in ("dataset", "train", "export", "a priori", "bench", "online", "report"):
        assert f"{stage} finished" in result.output
    assert (out / "data.h5").exists()
    assert (out / "closures" / "latent-fm-mp.pt").exists() and (out / "closures" / "dm.pt").exists()
    assert (out / "closures" / "latent-reflow.pt").exists()
    for name in ("none", "true", "latent-fm-mp", "latent-reflow", "dm"):
        assert (out / "online" / f"{name}.h5").exists()
    report = out / "report"
    assert (report / "report.md").read_text().strip()
    pngs = sorted(p.name for p in report.glob("*.png"))
    assert {"snapshots.png", "error_vs_time.png", "spectra.png", "pdfs.png"} <= set(pngs)
    assert all((report / p).stat().st_size > 5000 for p in pngs)
    metrics = json.loads((report / "metrics.json").read_text())
    horizons = metrics["results"]["none"]["trajectory"]["at_horizons"]
    assert horizons and all(math.isfinite(h["rel_error_mean"]) for h in horizons)
    summary = json.loads((out / "summary.json").read_text())
    assert all(math.isfinite(x) for x in _finite_numbers(summary["apriori"]))
    assert {r["nfe"] for r in summary["bench"]} == {1, 10}
    # a rerun resumes: every stage is already done
    again = CliRunner().invoke(app, ["demo", "--out", str(out), "--size", "ci"])
    assert again.exit_code == 0 and again.output.count("already done, skipped") == 7


def test_demo_rejects_an_unknown_size(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["demo", "--out", str(tmp_path / "d"), "--size", "huge"])
    assert result.exit_code == 2 and "--size" in result.output and "huge" in result.output


def test_evaluate_online_is_a_sub_command_of_kolmo_evaluate(tmp_path: Path) -> None:
    from kolmo.presets import preset
    from kolmo.simulation import run_simulation

    cfg = preset("dong2026", 16, t_end=0.05, save_every=0.01, members=2)
    run_simulation(cfg, tmp_path / "a.h5", planner="estimate")
    run_simulation(cfg.replace(seed=1), tmp_path / "b.h5", planner="estimate")
    result = CliRunner().invoke(app, ["evaluate", "online", str(tmp_path / "a.h5"), "--reference",
                                      str(tmp_path / "a.h5"), "--baseline", str(tmp_path / "b.h5"),
                                      "--out", str(tmp_path / "rep"), "--horizons", "0.02,0.05"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "rep" / "report.md").exists()
    missing = CliRunner().invoke(app, ["evaluate", "online", str(tmp_path / "a.h5")])
    assert missing.exit_code == 2 and "--reference" in missing.output
