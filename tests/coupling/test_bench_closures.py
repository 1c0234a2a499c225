"""The closure benchmark harness: sane numbers on a trivial artifact, JSON schema, CPU path (no timing asserts)."""

import json
from pathlib import Path
from typing import List

import pytest
import torch
from typer.testing import CliRunner

from cli.main import app
from coupling.benchmark import bench_closures, write_json
from kolmo.errors import ConfigurationError


class Trivial(torch.nn.Module):
    def noise_shape(self, batch: int) -> List[int]:
        return [batch, 1, 4, 4]

    def sample(self, omega: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        return -omega + noise.mean()

    def forward(self, omega: torch.Tensor) -> torch.Tensor:
        return self.sample(omega, torch.randn(self.noise_shape(omega.shape[0]), dtype=omega.dtype, device=omega.device))


def save(path: Path, nfe: int, flops: float) -> Path:
    meta = {"format": "kolmo-closure", "format_version": 1, "grid": 16, "nfe": nfe, "family": "test",
            "flops_per_sample": flops}
    torch.jit.save(torch.jit.script(Trivial()), str(path), _extra_files={"metadata.json": json.dumps(meta)})
    return path


def test_timing_a_trivial_artifact_returns_sane_numbers(tmp_path: Path) -> None:
    a, b = save(tmp_path / "a.pt", 10, 3e6), save(tmp_path / "b.pt", 1, 1e5)
    rows = bench_closures([a, b], [1, 4], repeat=5, warmup=1)
    assert len(rows) == 4
    for r in rows:
        assert 0 < r.min_ms <= r.median_ms and r.iqr_ms >= 0 and r.samples_per_second > 0
        assert r.h2d_ms >= 0 and r.d2h_ms >= 0 and r.parameters == 0
    assert {r.nfe for r in rows} == {10, 1}
    assert all(r.speedup == pytest.approx(1.0) for r in rows if r.artifact == str(a))
    out = tmp_path / "bench.json"
    write_json(rows, out)
    data = json.loads(out.read_text())
    assert {"cpu", "cores", "torch", "torch_threads"} <= set(data["machine"])
    assert {"artifact", "batch", "median_ms", "min_ms", "iqr_ms", "samples_per_second", "nfe", "parameters",
            "flops_per_sample", "speedup", "h2d_ms", "d2h_ms"} <= set(data["rows"][0])


def test_bench_closures_cli_writes_json_and_plot(tmp_path: Path) -> None:
    a = save(tmp_path / "a.pt", 10, 3e6)
    result = CliRunner().invoke(app, ["bench", "closures", str(a), "--batch", "1,2", "--repeat", "3",
                                      "--json", str(tmp_path / "r.json"), "--plot", str(tmp_path / "r.png")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "r.json").exists() and (tmp_path / "r.png").stat().st_size > 1000


def test_bench_refuses_bad_input_clearly(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="does not exist"):
        bench_closures([tmp_path / "missing.pt"], [1])
    a = save(tmp_path / "a.pt", 1, 1.0)
    if not torch.cuda.is_available():
        with pytest.raises(ConfigurationError, match="CUDA is not available"):
            bench_closures([a], [1], device="cuda")
    with pytest.raises(ConfigurationError, match="dtype"):
        bench_closures([a], [1], dtype="float16")


def test_bench_coupled_times_solver_alone_and_with_a_closure(tmp_path: Path) -> None:
    from coupling.benchmark import bench_coupled

    meta = {"format": "kolmo-closure", "format_version": 1, "grid": 16, "L": 1.0, "preset": "dong2026",
            "target": "missing-physics", "dt": 1e-3, "nfe": 1, "family": "test", "regularizer": "none",
            "dtype": "float32", "normalisation": {}, "dataset_fingerprint": "none", "run_id": "test",
            "torch_version": torch.__version__, "created": "2026-11-23"}
    path = tmp_path / "c.pt"
    torch.jit.save(torch.jit.script(Trivial()), str(path), _extra_files={"metadata.json": json.dumps(meta)})
    rows = bench_coupled([str(path)], preset="dong2026", grid=16, steps=20, every=5, members=2)
    assert [r.closure for r in rows] == ["none (solver only)", str(path)]
    assert rows[0].closure_s == 0 and rows[0].overhead == pytest.approx(1.0)
    assert rows[1].steps == 20 and rows[1].artifact_calls == 4 and rows[1].closure_calls == 20
    assert 0 < rows[1].closure_s < rows[1].wall_s
    result = CliRunner().invoke(app, ["bench", "coupled", "--closure", str(path), "--grid", "16", "--steps", "10",
                                      "--json", str(tmp_path / "c.json")])
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "c.json").read_text())["rows"][1]["artifact_calls"] == 2
