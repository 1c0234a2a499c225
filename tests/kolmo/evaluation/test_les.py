"""LES vs DNS statistics (kolmo.evaluation.les): hand-checked on synthetic run files, and the replayed
true closure keeps an LES closer to the coarse-grained DNS than no closure."""

from __future__ import annotations

import json
import math
from pathlib import Path

import h5py
import numpy as np
import pytest

from kolmo import diagnostics
from kolmo.dataset import DatasetSpec, build_dataset
from kolmo.errors import ConfigurationError, OptionalDependencyError, ShapeError
from kolmo.evaluation.les import (block_mean_se, coarse_grain, evaluate_les, les_markdown, write_coarse_grained_run,
                                  write_les_report)
from kolmo.grid import Grid
from kolmo.io import RunWriter
from kolmo.presets import kolmogorov_dt, preset
from kolmo.simulation import Simulation, run_simulation

L = 2 * np.pi


def write_run(path: Path, omega: np.ndarray, times: np.ndarray, wall: float | None = None, **config) -> Path:
    """A run file holding the snapshots ``omega`` ``(T, B, N, N)`` at ``times`` (kolmogorov config)."""
    t, b, n, _ = omega.shape
    cfg = preset("kolmogorov", n, t_end=float(times[-1]), **config)
    grid = Grid(n, L)
    w = RunWriter.create(path, {"config": cfg.to_json()}, n, L, np.arange(b), diagnostics.spectrum_wavenumbers(grid),
                         ("energy", "enstrophy"))
    for i in range(t):
        e, z = diagnostics.spectra(grid, np.fft.rfft2(omega[i]))
        w.append_snapshot(i, float(times[i]), omega[i].astype(np.float32), e, z)
    if wall is not None:
        w.set_attrs(wall_seconds=wall)
    return w.close()


def mode(n: int, nx: int, ny: int, amp: float = 1.0) -> np.ndarray:
    """``amp · cos(nx x + ny y)`` on an ``n``² grid of side 2π, ``(n, n)`` (axis -2 is y)."""
    x = np.arange(n) * L / n
    return amp * np.cos(nx * x[None, :] + ny * x[:, None])


# ---------------------------------------------------------------------------------------------- hand checks
def test_coarse_grain_keeps_resolved_modes_drops_the_rest_and_gaussian_damps_by_its_transfer_function() -> None:
    fine = mode(32, 3, 1, 2.0) + mode(32, 9, 0, 5.0)  # |n| = 9 is beyond the 16² grid's |n| < 8
    np.testing.assert_allclose(coarse_grain(fine, 16, L), mode(16, 3, 1, 2.0), atol=1e-12)
    damp = math.exp(-(3**2 + 1**2) * (L / 16) ** 2 / 24)
    np.testing.assert_allclose(coarse_grain(fine, 16, L, "gaussian"), mode(16, 3, 1, 2.0 * damp), atol=1e-12)
    with pytest.raises(ConfigurationError, match="unknown filter 'box'; valid: sharp, gaussian"):
        coarse_grain(fine, 16, L, "box")


def test_block_standard_error_is_the_std_of_block_means_over_root_blocks() -> None:
    series = np.repeat(np.array([[1.0, 5.0], [3.0, 7.0]]), 3, axis=0)  # (6, 2): blocks of 3 steps, 2 members
    mean, se = block_mean_se(series, 2)
    means = np.array([1.0, 5.0, 3.0, 7.0])
    assert mean == pytest.approx(4.0) and se == pytest.approx(means.std(ddof=1) / 2.0)
    with pytest.raises(ShapeError, match="T >= blocks >= 2"):
        block_mean_se(series, 7)


@pytest.fixture
def synthetic(tmp_path: Path) -> dict[str, Path]:
    """A 32² "DNS" of two members (one mode in every shell 1..5, and |n| = 12, amplitudes varying in time), its
    exact 16² truncation as an LES, the same doubled, and an LES that blows up at t = 3."""
    times = np.arange(8) * 0.5
    amp = 1.0 + 0.1 * np.sin(times)[:, None]  # (T, 1)
    base = mode(32, 2, 0, 0.7) + mode(32, 0, 3, 0.4) + mode(32, 5, 0, 0.2) + mode(32, 12, 0, 0.3)  # |n| = 12 dropped
    fields = np.stack([[a * (mode(32, 1, 0) + mode(32, 0, 4, 0.5 + m) + base) for m in range(2)] for a in amp[:, 0]])
    coarse = coarse_grain(fields, 16, L)
    bad = coarse.copy()
    bad[6:] *= 100.0
    return {"dns": write_run(tmp_path / "dns.h5", fields, times, wall=8.0),
            "same": write_run(tmp_path / "same.h5", coarse, times, wall=1.0),
            "double": write_run(tmp_path / "double.h5", 2 * coarse, times, wall=2.0),
            "bad": write_run(tmp_path / "bad.h5", bad, times)}


def test_les_statistics_of_synthetic_fields_are_the_hand_computed_ones(synthetic: dict[str, Path]) -> None:
    runs = {k: synthetic[k] for k in ("same", "double", "bad")}
    r = evaluate_les(synthetic["dns"], runs, blocks=2)
    same, double, bad = (r["runs"][k] for k in ("same", "double", "bad"))
    # the exact truncation: no error at all
    assert same["energy_spectrum_error"]["band"] == pytest.approx(0.0, abs=1e-6)
    assert same["energy"]["ratio_to_reference"] == pytest.approx(1.0, rel=1e-6) and same["vorticity_w1"] < 1e-5
    assert same["energy"]["within_reference_2se"] and not same["blowup"]["blew_up"]
    # doubled vorticity: every spectrum 4x (log10 4 in every shell), energy and enstrophy 4x
    for key in ("energy_spectrum_error", "enstrophy_spectrum_error"):
        assert double[key]["band"] == pytest.approx(math.log10(4), rel=1e-5)
        assert double[key]["upper"] == pytest.approx(math.log10(4), rel=1e-5)
    assert double["energy_spectrum_error"]["band_shells"] == [1, 5] and double["energy_spectrum_error"]["upper_shells"] == [3, 5]
    assert double["enstrophy"]["ratio_to_reference"] == pytest.approx(4.0, rel=1e-5)
    assert not double["enstrophy"]["within_reference_2se"]
    # W1 of (2x vs x) pooled samples = mean |x| (same sorted order)
    with h5py.File(synthetic["same"]) as h5:
        x = h5["vorticity"][()].astype(np.float64)
    assert double["vorticity_w1"] == pytest.approx(np.mean(np.abs(x)), rel=1e-5)
    # mean energy and its SE from blocks: E = sum of shells
    e = np.array([diagnostics.energy(Grid(16, L), np.fft.rfft2(x[t])) for t in range(8)])  # (T, B)
    blocks = e.reshape(2, 4, 2).mean(axis=1).ravel()
    assert double["energy"]["mean"] == pytest.approx(4 * blocks.mean(), rel=1e-5)
    assert double["energy"]["se"] == pytest.approx(4 * blocks.std(ddof=1) / 2, rel=1e-5)
    # blow-up: enstrophy 1e4 x above 10 x the DNS maximum from t = 3
    assert bad["blowup"]["blew_up"] and bad["blowup"]["horizon_min"] == pytest.approx(3.0)
    # cost: wall / (time span x members), DNS 8 s vs LES 1 s
    assert same["cost"]["seconds_per_time_unit_per_member"] == pytest.approx(1.0 / (3.5 * 2))
    assert same["cost"]["speedup_vs_reference"] == pytest.approx(8.0)
    # members are different fields: a spread, but no spread-skill without a one-member truth to start from
    assert same["spread"] > 0 and same["spread_skill"] is None
    assert "| double | 0.602 / 0.602 |" in les_markdown(r)


def test_spread_skill_against_the_one_member_coarse_grained_dns_the_run_started_from(tmp_path: Path,
                                                                                  synthetic: dict[str, Path]) -> None:
    truth = write_coarse_grained_run(synthetic["dns"], 16, tmp_path / "truth.h5", members=[0])
    with h5py.File(truth) as h5:
        y = h5["vorticity"][:, 0].astype(np.float64)  # (T, N, N)
        assert h5.attrs["coarse_grained_from"] == str(synthetic["dns"]) and h5["vorticity"].shape[1] == 1
    rng = np.random.default_rng(0)
    ens = y[2:, None] + 0.3 * rng.standard_normal((6, 3, 16, 16))  # starts at truth index 2 (t = 1)
    run = write_run(tmp_path / "ens.h5", ens, np.arange(6) * 0.5, initial="file",
                    initial_params={"path": f"{truth}:2"})
    r = evaluate_les(synthetic["dns"], {"ens": run}, blocks=2, skill_horizon=2.0)
    ss = r["runs"]["ens"]["spread_skill"]
    spread2 = np.mean([ens[i].var(axis=0, ddof=1).mean() for i in (1, 2, 3, 4)])
    skill2 = np.mean([((ens[i].mean(axis=0) - y[2 + i]) ** 2).mean() for i in (1, 2, 3, 4)])
    assert ss["snapshots"] == 4 and ss["truth_time_at_start"] == pytest.approx(1.0)
    assert ss["ratio"] == pytest.approx(math.sqrt(4 / 3) * math.sqrt(spread2 / skill2), rel=1e-5)


def test_report_files_and_figures(tmp_path: Path, synthetic: dict[str, Path], monkeypatch) -> None:
    r = evaluate_les(synthetic["dns"], {"same": synthetic["same"]}, blocks=2, keep=True)
    files = write_les_report(r, tmp_path / "rep", figures=True)
    assert [f.name for f in files] == ["les.json", "les.md", "les-spectra.png", "les-timeseries.png",
                                      "les-snapshots.png"]
    assert json.loads(files[0].read_text())["runs"]["same"]["members"] == 2
    import builtins

    real_import = builtins.__import__

    def no_matplotlib(name, *args, **kw):  # noqa: ANN001, ANN002, ANN003
        if name.startswith("matplotlib"):
            raise ImportError(name)
        return real_import(name, *args, **kw)

    monkeypatch.setattr(builtins, "__import__", no_matplotlib)
    r = evaluate_les(synthetic["dns"], {"same": synthetic["same"]}, blocks=2, keep=True)
    with pytest.raises(OptionalDependencyError, match=r"pip install kolmo\[plots\]"):
        write_les_report(r, tmp_path / "rep2", figures=True)


# ---------------------------------------------------------------------------------------------- replay
def test_an_les_with_the_replayed_true_closure_stays_closer_to_the_coarse_grained_dns_than_no_closure(
        tmp_path: Path) -> None:
    les_dt = kolmogorov_dt(16)  # = 4 DNS steps at 64²: records every LES step
    assert les_dt == pytest.approx(4 * kolmogorov_dt(64))
    data = tmp_path / "data.h5"
    build_dataset(DatasetSpec(preset="kolmogorov", fine=64, coarse=16, trajectories=2, test_trajectories=1,
                              burn_in=2.0, t_end=3.0 + les_dt / 2, every=les_dt, target="sgs", seed=0),
                  data, planner="estimate")
    dns = run_simulation(preset("kolmogorov", 64, t_end=3.0, save_every=0.5, seed=0), tmp_path / "dns.h5",
                         planner="estimate").path  # trajectory 0 of the dataset (seed 0, member 0)
    from coupling.online import prepare_run

    finals = {}
    for closure in ("none", f"replay:{data}"):
        online = prepare_run(None, None, {"t_end": 1.0, "save_every": 0.5}, closure if closure != "none" else None,
                             init=f"{data}:train:0") if closure != "none" else None
        cfg = online.config if online else preset("kolmogorov", 16, t_end=1.0, save_every=0.5, initial="file",
                                                  initial_params={"path": f"{data}:train:0"})
        sim = Simulation(cfg, closure=online.closure if online else None, planner="estimate")
        assert cfg.dt == pytest.approx(les_dt)
        sim.run()
        finals[closure] = sim.vorticity()[0]
    with h5py.File(dns) as h5:
        assert h5["time"][-1] == pytest.approx(3.0)
        truth = coarse_grain(h5["vorticity"][-1, 0].astype(np.float64), 16, L)
    err = {k: np.linalg.norm(v - truth) / np.linalg.norm(truth) for k, v in finals.items()}
    assert err[f"replay:{data}"] < 0.2 * err["none"], err  # measured 0.05 vs 0.70 after one time unit
