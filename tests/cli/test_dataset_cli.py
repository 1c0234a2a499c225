"""``kolmo dataset``: a tiny build prints its summary; typed errors become one-line messages (exit 2)."""

import sys
from pathlib import Path

from typer.testing import CliRunner

from cli.main import app

TINY = ["--fine", "32", "--coarse", "8", "--trajectories", "2", "--test-trajectories", "1", "--burn-in", "0.01",
        "--t-end", "0.03", "--save-every", "0.01", "--members-per-batch", "2"]


def test_dataset_command_builds_a_file_and_prints_the_summary(tmp_path: Path) -> None:
    out = tmp_path / "d.h5"
    res = CliRunner().invoke(app, ["dataset", *TINY, "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert out.exists()
    assert "pairs train / test" in res.output and "2 / 2" in res.output and "fingerprint" in res.output
    again = CliRunner().invoke(app, ["dataset", *TINY, "--out", str(out)])
    assert again.exit_code == 2 and "OutputExistsError" in again.output


def test_dataset_command_rejects_an_unknown_preset_with_the_valid_ones(tmp_path: Path) -> None:
    res = CliRunner().invoke(app, ["dataset", *TINY, "--preset", "nope", "--out", str(tmp_path / "d.h5")])
    assert res.exit_code == 2
    assert "unknown preset 'nope'; valid: dong2026, kolmogorov" in res.output
    assert list(tmp_path.iterdir()) == []


def test_workers_without_dask_installed_name_the_extra_for_dataset_and_run(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "distributed", None)  # `import distributed` raises ImportError
    for argv in (["dataset", *TINY, "--workers", "2", "--out", str(tmp_path / "d.h5")],
                 ["run", "--grid", "16", "--time", "0.01", "--members", "2", "--workers", "2", "--out",
                  str(tmp_path / "r.h5")]):
        res = CliRunner().invoke(app, argv)
        assert res.exit_code == 4, res.output
        assert "OptionalDependencyError" in res.output and "pip install kolmo[distributed]" in res.output
    assert list(tmp_path.iterdir()) == []
