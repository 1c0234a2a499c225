"""The closure benchmark harness: sane numbers on a trivial artifact, JSON schema, CPU path (no timing asserts)."""

import json
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from cli.main import app
from coupling.bench.closures import bench_closures, write_json
from coupling.errors import ArtifactFormatError, DeviceError, DtypeError
from tests.coupling.bench.artifacts import Trivial, contract_metadata


def save(path: Path, nfe: int, flops: float) -> Path:
    meta = contract_metadata(nfe=nfe, flops_per_sample=flops)
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
    threads = torch.get_num_threads()
    try:
        result = CliRunner().invoke(app, ["bench", "closures", str(a), "--batch", "1,2", "--repeat", "3",
                                          "--threads", "1", "--json", str(tmp_path / "r.json"),
                                          "--plot", str(tmp_path / "r.png")])
        assert result.exit_code == 0, result.output
        assert json.loads((tmp_path / "r.json").read_text())["machine"]["torch_threads"] == 1
        assert (tmp_path / "r.png").stat().st_size > 1000
        refused = CliRunner().invoke(app, ["bench", "closures", str(a), "--threads", "0"])
        assert refused.exit_code == 2 and "threads" in refused.output
    finally:
        torch.set_num_threads(threads)


def test_bench_refuses_bad_input_clearly(tmp_path: Path) -> None:
    with pytest.raises(ArtifactFormatError, match="does not exist"):
        bench_closures([tmp_path / "missing.pt"], [1])
    a = save(tmp_path / "a.pt", 1, 1.0)
    if not torch.cuda.is_available():
        with pytest.raises(DeviceError, match="cuda.is_available.. is False"):
            bench_closures([a], [1], device="cuda")
    with pytest.raises(DtypeError, match="dtype"):
        bench_closures([a], [1], dtype="float16")
    # the one loader's typed errors: no empty metadata for bad JSON, no guessed grid
    bad = tmp_path / "bad.pt"
    torch.jit.save(torch.jit.script(Trivial()), str(bad), _extra_files={"metadata.json": "{not json"})
    with pytest.raises(ArtifactFormatError, match="metadata.json is not valid JSON"):
        bench_closures([bad], [1])
    no_grid = tmp_path / "no_grid.pt"
    meta = contract_metadata()
    del meta["grid"]
    torch.jit.save(torch.jit.script(Trivial()), str(no_grid), _extra_files={"metadata.json": json.dumps(meta)})
    with pytest.raises(ArtifactFormatError, match=r"metadata lacks \['grid'\]"):
        bench_closures([no_grid], [1])
