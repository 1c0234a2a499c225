"""``kolmo evaluate les coarse-grain`` and ``report`` end to end on synthetic run files; bad input is one line."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
from typer.testing import CliRunner

from cli.main import app
from tests.kolmo.evaluation.test_les import mode, write_run

runner = CliRunner()


def test_coarse_grain_then_report_writes_json_and_markdown_and_names_bad_input(tmp_path: Path) -> None:
    times = np.arange(6) * 0.5
    fine = np.stack([[(1 + 0.1 * t) * (mode(32, 1, 0) + mode(32, 0, 2 + m) + mode(32, 3, 1) + mode(32, 4, 0) +
                                       mode(32, 0, 5)) for m in range(2)] for t in times])
    dns = write_run(tmp_path / "dns.h5", fine, times)
    r = runner.invoke(app, ["evaluate", "les", "coarse-grain", str(dns), "-n", "16", "--out", str(tmp_path / "c.h5")])
    assert r.exit_code == 0, r.output
    with h5py.File(tmp_path / "c.h5") as h5:
        assert h5["vorticity"].shape == (6, 2, 16, 16) and json.loads(h5.attrs["config"])["n"] == 16
    r = runner.invoke(app, ["evaluate", "les", "report", str(dns), f"same={tmp_path / 'c.h5'}", "--blocks", "2",
                            "--out", str(tmp_path / "rep")])
    assert r.exit_code == 0, r.output
    result = json.loads((tmp_path / "rep" / "les.json").read_text())
    assert result["runs"]["same"]["energy_spectrum_error"]["band"] < 1e-6
    assert "| same | 0.000 / 0.000 |" in (tmp_path / "rep" / "les.md").read_text()
    r = runner.invoke(app, ["evaluate", "les", "report", str(dns), str(tmp_path / "nope.h5"), "--out", str(tmp_path / "x")])
    assert r.exit_code == 3 and "nope.h5" in r.output and "does not exist" in r.output  # bad input, before any work
    assert not (tmp_path / "x").exists()


def test_bad_options_are_usage_errors_at_parse_time_naming_the_flag(tmp_path: Path) -> None:
    from cli.errors import run_app

    dns = tmp_path / "dns.h5"
    dns.write_bytes(b"")  # never read: the options fail first
    for args, flag in ((["report", str(dns), str(dns), "--blocks", "1"], "--blocks"),
                       (["report", str(dns), str(dns), "--filter", "box"], "--filter"),
                       (["report", str(dns), str(dns), "--skill-horizon", "nan"], "--skill-horizon"),
                       (["coarse-grain", str(dns), "-n", "15", "--out", str(tmp_path / "c.h5")], "--grid")):
        r = runner.invoke(app, ["evaluate", "les", *args, "--out", str(tmp_path / "o")] if args[0] == "report"
                          else ["evaluate", "les", *args])
        assert r.exit_code == 2 and flag in r.output, (args, r.output)
    assert run_app(app, ["evaluate", "les", "report", str(dns), str(dns), "--out", str(tmp_path / "o"),
                         "--blocks", "0"]) == 2


def test_the_cli_filter_choices_are_the_evaluations() -> None:
    from cli.evaluate_les import FILTERS
    from kolmo.evaluation.les import FILTERS as EVALUATION_FILTERS

    assert FILTERS == EVALUATION_FILTERS
