"""The kolmo command: help, run/info round trip, clean typed errors (exit code 2, no traceback)."""

import re
from pathlib import Path

import h5py
import pytest
from typer.testing import CliRunner

from cli.main import app

runner = CliRunner()


def test_help_lists_every_command() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for name in ("run", "info", "bench"):
        assert name in result.output


@pytest.mark.parametrize("command", [[], ["run"], ["dataset"], ["bench"], ["bench", "coupled"], ["evaluate"],
                                     ["evaluate", "online"], ["evaluate", "apriori"], ["train"], ["export"]])
def test_help_reads_in_an_80_column_terminal(command: list[str]) -> None:
    result = runner.invoke(app, [*command, "--help"], env={"COLUMNS": "80"}, terminal_width=80)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert max(len(line) for line in lines) <= 80
    assert not any(c in result.output for c in "│╭╰")  # no boxes that wrap help into slivers
    # option help sits beside the option names in a column at least 40 characters wide
    starts = [m.start(1) for line in lines if (m := re.match(r"  -\S.*?\s{2,}(\S)", line))]
    assert starts and max(starts) <= 40


def test_run_then_info_round_trip(tmp_path: Path) -> None:
    out = tmp_path / "k.h5"
    result = runner.invoke(app, ["run", "--preset", "kolmogorov", "--grid", "16", "--time", "0.2",
                                 "--set", "save_every=0.1", "--members", "2", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "complete" in result.output
    with h5py.File(out) as h5:
        assert h5["vorticity"].shape == (3, 2, 16, 16)
    result = runner.invoke(app, ["info", str(out)])
    assert result.exit_code == 0 and "kolmo-run" in result.output and "vorticity" in result.output


def test_bad_options_give_one_line_typed_errors(tmp_path: Path) -> None:
    result = runner.invoke(app, ["run", "--preset", "nope", "--out", str(tmp_path / "x.h5")])
    assert result.exit_code == 2 and "unknown preset 'nope'" in result.output
    assert "Traceback" not in result.output
    result = runner.invoke(app, ["run", "--preset", "kolmogorov", "--grid", "15", "--out", str(tmp_path / "x.h5")])
    assert result.exit_code == 2 and "even integer" in result.output
    result = runner.invoke(app, ["info", str(tmp_path / "missing.h5")])
    assert result.exit_code == 3 and "does not exist" in result.output  # bad input
    result = runner.invoke(app, ["bench", "solver", "--grid", "a,b"])
    assert result.exit_code == 2 and "comma-separated integers" in result.output


def test_bench_solver_runs_on_a_tiny_grid(tmp_path: Path) -> None:
    out = tmp_path / "b.json"
    result = runner.invoke(app, ["bench", "solver", "--grid", "16", "--members", "1", "--repeats", "1",
                                 "--json", str(out)])
    assert result.exit_code == 0, result.output
    import json

    data = json.loads(out.read_text())
    row = data["rows"][0]
    assert row["n"] == 16 and row["step_us"] > 0 and row["fft_bound_us"] > 0 and row["numpy_us"] > 0
    assert "cpu" in data["machine"]
