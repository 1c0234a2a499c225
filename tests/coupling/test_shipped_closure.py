"""The shipped closure `dong2026-default` (built by benchmarks/default_closure.sh) is in the package,
describes itself correctly and runs online by name."""

from pathlib import Path

import numpy as np
from typer.testing import CliRunner

from cli.main import app
from coupling.artifact import read_metadata
from coupling.online import SHIPPED_CLOSURES


def test_shipped_default_closure_is_a_one_step_stochastic_latent_reflow_for_dong2026_at_64() -> None:
    path = SHIPPED_CLOSURES["dong2026-default"]
    assert path.exists() and path.stat().st_size < 8 * 2**20  # a few MB at most
    meta = read_metadata(path)
    assert (meta["preset"], meta["target"], meta["grid"], meta["L"], meta["dt"]) == (
        "dong2026", "missing-physics", 64, 1.0, 1e-3)
    assert meta["family"] == "latent-reflow" and meta["nfe"] == 1 and meta["format_version"] == 2


def test_kolmo_run_with_the_shipped_closure_by_name(tmp_path: Path) -> None:
    import h5py

    out = tmp_path / "d.h5"
    result = CliRunner().invoke(app, ["run", "--closure", "dong2026-default", "--time", "0.02", "--members", "2",
                                      "--set", "save_every=0.01", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "advection off" in result.output or "reduced model" in result.output
    with h5py.File(out) as h5:
        w = h5["vorticity"][()]
        assert np.all(np.isfinite(w)) and h5.attrs["closure_calls"] == 20
        assert not np.array_equal(w[-1, 0], w[-1, 1])  # each member its own closure samples
    info = CliRunner().invoke(app, ["info", "dong2026-default"])
    assert info.exit_code == 0 and "latent-reflow" in info.output
