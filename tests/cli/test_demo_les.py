"""`kolmo demo --case les --size ci` runs every stage and writes an LES report with finite numbers and figures."""

import json
import math
from pathlib import Path

from typer.testing import CliRunner

from cli.main import app


def test_les_demo_ci_runs_every_stage_and_reports_each_closure_against_the_dns(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    result = CliRunner().invoke(app, ["demo", "--case", "les", "--out", str(out), "--size", "ci"])
    assert result.exit_code == 0, result.output
    for stage in ("dataset", "train", "export", "dns", "les", "report"):
        assert f"{stage} finished" in result.output
    assert (out / "les.pt").exists() and (out / "dns-coarse.h5").exists()
    runs = json.loads((out / "report" / "les.json").read_text())["runs"]
    assert set(runs) == {"none", "smagorinsky-0.14", "leith-0.25", "learned-every2"}
    for r in runs.values():
        assert math.isfinite(r["energy_spectrum_error"]["band"]) and r["energy"]["mean"] > 0
        assert r["cost"]["dt"] > 0.02  # the 16² LES's own time step, not the 32² DNS's (0.0139)
    assert runs["learned-every2"]["spread_skill"] is not None  # stochastic members from one DNS state
    assert {"les-spectra.png", "les-timeseries.png", "les-snapshots.png"} <= {p.name for p in (out / "report").glob("*.png")}
    again = CliRunner().invoke(app, ["demo", "--case", "les", "--out", str(out), "--size", "ci"])
    assert again.exit_code == 0 and again.output.count("already done, skipped") == 6


def test_unknown_demo_case_or_a_size_the_les_demo_lacks_is_a_usage_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["demo", "--case", "lse", "--out", str(tmp_path / "x")])
    assert result.exit_code == 2 and "'lse'; expected one of paper, les" in result.output
    result = CliRunner().invoke(app, ["demo", "--case", "les", "--size", "small", "--out", str(tmp_path / "x")])
    assert result.exit_code == 2 and "--size small does not apply to --case les; valid: ci, tiny" in result.output
    assert not (tmp_path / "x").exists()
