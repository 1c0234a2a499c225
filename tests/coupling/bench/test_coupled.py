"""The coupled-run benchmark: the solver alone and with a closure, steps and calls counted (no timing asserts)."""

import json
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from cli.main import app
from coupling.bench.coupled import bench_coupled
from tests.coupling.bench.artifacts import Trivial, contract_metadata


def test_bench_coupled_times_solver_alone_and_with_a_closure(tmp_path: Path) -> None:
    meta = contract_metadata()
    path = tmp_path / "c.pt"
    torch.jit.save(torch.jit.script(Trivial()), str(path), _extra_files={"metadata.json": json.dumps(meta)})
    rows = bench_coupled([str(path)], preset="dong2026", grid=16, steps=20, every=5, members=2)
    assert [r.closure for r in rows] == ["none (solver only)", str(path)]
    assert rows[0].closure_s == 0 and rows[0].overhead == pytest.approx(1.0)
    assert rows[1].steps == 20 and rows[1].artifact_calls == 4 and rows[1].closure_calls == 20
    assert 0 < rows[1].closure_s < rows[1].wall_s
    r = rows[1]  # the split: wall = solver + network + coupling, each measured in the same run
    assert 0 < r.network_s < r.closure_s and r.coupling_s == pytest.approx(r.closure_s - r.network_s)
    assert r.solver_s + r.network_s + r.coupling_s == pytest.approx(r.wall_s)
    result = CliRunner().invoke(app, ["bench", "coupled", "--closure", str(path), "--grid", "16", "--steps", "10",
                                      "--json", str(tmp_path / "c.json")])
    assert result.exit_code == 0, result.output
    row = json.loads((tmp_path / "c.json").read_text())["rows"][1]
    assert row["artifact_calls"] == 2
    assert row["solver_share"] + row["network_share"] + row["coupling_share"] == pytest.approx(1.0)
    assert row["network_s"] > 0 and row["coupling_s"] == pytest.approx(row["closure_s"] - row["network_s"])
    assert "coupling share" in result.output


def test_bench_coupled_says_when_the_cadence_does_not_apply_to_a_closure() -> None:
    rows = bench_coupled(["smagorinsky"], preset="kolmogorov", grid=16, steps=5, every=5)
    assert rows[0].notes == []
    assert ("--closure-every 5 and --closure-jitter 5e-05 ignored: closure smagorinsky is evaluated every step "
            "(only artifact closures are resampled)") in rows[1].notes
    assert rows[1].closure_calls == 5
