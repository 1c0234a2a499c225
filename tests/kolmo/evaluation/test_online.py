"""Online evaluation (``kolmo evaluate online``): self-consistency, ordering of models, the report
folder, dataset references, blow-up detection and typed errors — on tiny runs of the real solver."""

import json
import math
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest

from kolmo.evaluation.online import NoOverlapError, align_times, evaluate_online, parse_reference
from kolmo.coarse import spectral_truncate, subsample
from kolmo.dataset import DatasetSpec, build_dataset
from kolmo.errors import ConfigurationError, FileFormatError, OutputExistsError, ShapeError
from kolmo.io import load_snapshot
from kolmo.presets import preset
from kolmo.simulation import run_simulation

DONG = dict(dt=1e-2, t_end=1.0, save_every=0.1)  # 100 steps, snapshots every 0.1
HORIZONS = (0.3, 0.6, 1.0)
PNGS = ("snapshots.png", "error_vs_time.png", "spectra.png", "timeseries.png", "pdfs.png", "scores.png")


def run(cfg, path, **kw):
    run_simulation(cfg, path, planner="estimate", **kw)
    return path


class Damping:
    """A crude closure for a different baseline: H = -rate ω."""

    name = "damping"

    def __init__(self, rate: float) -> None:
        self.rate = rate

    def __call__(self, state):
        return -self.rate * state.omega


@pytest.fixture(scope="module")
def dong(tmp_path_factory) -> dict[str, Path]:
    """dong2026: a 32² truth; on 16² from its subsampled state: the full model with the truth's tiny
    noise level (3 members), the same with 20x the noise, and the no-closure reduced model."""
    d = tmp_path_factory.mktemp("dong")
    truth = run(preset("dong2026", 32, **DONG, seed=1), d / "truth.h5")
    w0 = subsample(load_snapshot(f"{truth}:0"), 16)
    model = run(preset("dong2026", 16, **DONG, members=3, seed=2), d / "model.h5", omega0=w0)
    noisy = run(preset("dong2026", 16, **DONG, members=3, seed=3, noise_sigma=1e-3), d / "noisy.h5", omega0=w0)
    none = run(preset("dong2026", 16, **DONG, advection=False, noise_sigma=0.0), d / "noclosure.h5", omega0=w0)
    return {"truth": truth, "model": model, "noisy": noisy, "none": none, "dir": d}


@pytest.fixture(scope="module")
def kolmo_les(tmp_path_factory) -> dict[str, Path]:
    """kolmogorov: a 32² 'DNS' with 3 members; 16² LES from its truncated states, with no closure and
    with a damping closure."""
    d = tmp_path_factory.mktemp("les")
    dns = run(preset("kolmogorov", 32, t_end=2.0, members=3, seed=4), d / "dns.h5")
    w0 = spectral_truncate(load_snapshot(f"{dns}:0"), 16)
    les = run(preset("kolmogorov", 16, t_end=2.0, members=3), d / "les.h5", omega0=w0)
    damped = run(preset("kolmogorov", 16, t_end=2.0, members=3), d / "les_damped.h5", omega0=w0,
                 closure=Damping(0.5))
    return {"dns": dns, "les": les, "damped": damped, "dir": d}


def of(res, stem):
    """The results entry of the source whose file is ``STEM.h5`` (labels add the closure name)."""
    (label,) = [lb for lb in res["results"] if lb.split(" ")[0] == stem]
    return res["results"][label]


def numbers(obj):
    """Every number in a JSON tree (None skipped)."""
    if isinstance(obj, dict):
        for v in obj.values():
            yield from numbers(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from numbers(v)
    elif isinstance(obj, (int, float)) and not isinstance(obj, bool):
        yield obj


# ---------------------------------------------------------------------------------------------- self-consistency
def test_a_run_evaluated_against_itself_has_zero_distance_and_similarity_one(kolmo_les, tmp_path):
    res = evaluate_online(kolmo_les["les"], str(kolmo_les["les"]), [kolmo_les["damped"]], tmp_path / "r",
                          horizons=(1.0, 2.0), figures=False)
    assert res["reference"]["truth_member"] == "paired"  # 3-member reference, 3-member run: member b vs b
    me = res["results"]["les (no closure)"]
    for row in me["trajectory"]["at_horizons"]:
        assert row["rel_error_mean"] == 0.0 and row["members"] == 3
    for key in ("spectrum_error_energy", "spectrum_error_enstrophy", "w1_vorticity", "w1_u", "w1_v",
                "energy_series_error", "enstrophy_series_error", "horizon_shortfall"):
        assert me["statistics"][key] == 0.0, key
        assert res["results"]["les_damped (damping)"]["statistics"][key] >= 0.0
    sim = res["similarity"]["les (no closure)"]
    for key in ("spectrum_error_energy", "w1_vorticity", "w1_u", "energy_series_error", "enstrophy_series_error"):
        assert res["results"]["les_damped (damping)"]["statistics"][key] > 0
        assert sim[key] == 1.0, key
    assert sim["rel_error_mean_at_horizons"] == [1.0, 1.0]


def test_one_truth_ensemble_scores_of_a_run_against_itself(dong, tmp_path):
    res = evaluate_online(dong["none"], str(dong["none"]), [dong["model"]], tmp_path / "r", horizons=HORIZONS,
                          figures=False)
    rows = res["results"]["noclosure"]["trajectory"]["at_horizons"]
    assert all(r["rel_error_mean"] == 0.0 and r["crps"] == 0.0 and r["ensemble_mean_rel_error"] == 0.0
               for r in rows)
    assert all(r["spread_skill"] is None for r in rows)  # one member: undefined, reported as null


# ---------------------------------------------------------------------------------------------- ordering
def test_a_noisier_model_scores_worse_and_no_closure_worst(dong, tmp_path):
    res = evaluate_online(dong["model"], str(dong["truth"]), [dong["none"], dong["noisy"]], tmp_path / "r",
                          horizons=HORIZONS, figures=False)
    assert res["reference"]["coarse_graining"].startswith("subsample 32² → 16²")
    model, noisy, none = of(res, "model"), of(res, "noisy"), of(res, "noclosure")
    for m, n, z in zip(*(r["trajectory"]["at_horizons"] for r in (model, noisy, none))):
        assert m["rel_error_mean"] < n["rel_error_mean"] < z["rel_error_mean"]
        assert m["crps"] < z["crps"] and n["crps"] < z["crps"]
        assert m["members"] == 3
        # more noise, more spread: the noisy ensemble is worse in error but better calibrated, and the
        # fair CRPS (which rewards calibration) may prefer it; the tiny-noise one is over-confident
        assert 0 < m["spread_skill"] < 0.5 < n["spread_skill"]
    sm, sn = res["similarity"]["model (no closure)"], res["similarity"]["noisy (no closure)"]
    assert all(a > b for a, b in zip(sm["rel_error_mean_at_horizons"], sn["rel_error_mean_at_horizons"]))
    assert all(0 < a <= 1 for a in sm["rel_error_mean_at_horizons"])
    assert model["statistics"]["w1_vorticity"] < none["statistics"]["w1_vorticity"]
    assert res["warnings"] == []


# ---------------------------------------------------------------------------------------------- the report
def test_report_folder_holds_markdown_json_and_figures_with_finite_numbers(dong, tmp_path, capsys):
    from cli.evaluate_online import evaluate_online_command

    out = tmp_path / "report"
    out.mkdir()  # an existing empty folder is fine
    res = evaluate_online_command(dong["model"], str(dong["truth"]), [dong["none"], dong["noisy"]], out,
                                  "0.3, 0.6,1")
    names = {p.name for p in out.iterdir()}
    assert {"report.md", "metrics.json", *PNGS} == names
    for png in PNGS:
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and (out / png).stat().st_size > 10_000
    metrics = json.loads((out / "metrics.json").read_text())
    vals = list(numbers(metrics))
    assert len(vals) > 200 and all(math.isfinite(v) for v in vals)
    assert metrics["horizons"] == [0.3, 0.6, 1.0] and metrics["preset"] == "dong2026"
    for stem in ("model", "noclosure", "noisy"):
        for row in of(metrics, stem)["trajectory"]["at_horizons"]:
            assert row["rel_error_mean"] is not None and row["crps"] is not None
    text = (out / "report.md").read_text()
    for needed in ("dong2026", "trajectory", "model.h5", "truth.h5", "noclosure.h5", "Spread–skill", "CRPS",
                   *[f"]({p})" for p in PNGS]):
        assert needed in text, needed
    printed = capsys.readouterr().out
    assert "relative L2 error" in printed and str(out) in printed and "noisy" in printed
    assert res["files"][0] == "report.md"
    assert not list(tmp_path.glob(".report.partial*"))  # the temporary folder was renamed


def test_les_report_with_statistics_first(kolmo_les, tmp_path):
    res = evaluate_online(kolmo_les["damped"], str(kolmo_les["dns"]), [kolmo_les["les"]], tmp_path / "r",
                          horizons=(1.0, 2.0), statistics_start=0.5)
    assert res["primary_protocol"] == "statistics"
    assert res["reference"]["coarse_graining"].startswith("sharp spectral truncation 32² → 16²")
    assert res["grid"]["spectral_cutoff_k"] == pytest.approx(2 / 3 * 8)
    text = (tmp_path / "r" / "report.md").read_text()
    assert text.index("## Statistics") < text.index("## Trajectory")
    assert all(math.isfinite(v) for v in numbers(res))
    # the truncated DNS start equals the LES start: no initial-state warning
    assert not any("t = 0" in w for w in res["warnings"])


# ---------------------------------------------------------------------------------------------- dataset reference
def test_dataset_reference_from_the_runs_init_is_rebased_to_zero(tmp_path):
    data = tmp_path / "data.h5"
    build_dataset(DatasetSpec(preset="dong2026", fine=32, coarse=16, trajectories=2, test_trajectories=1,
                              burn_in=0.2, t_end=1.4, every=0.1, seed=5, overrides={"dt": 1e-2}),
                  data, planner="estimate")
    cfg = preset("dong2026", 16, dt=1e-2, t_end=0.8, save_every=0.1, advection=False, noise_sigma=0.0,
                 stepper="cn-euler", initial="file", initial_params={"path": f"{data}:test:3"})
    rr = run(cfg, tmp_path / "reduced.h5")
    res = evaluate_online(rr, f"{data}:test", [], tmp_path / "a", horizons=(0.5,), figures=False)
    ref = res["reference"]
    assert (ref["trajectory"], ref["start_index"], ref["inferred_from_run_init"]) == (1, 3, True)
    assert ref["start_time_in_dataset"] == pytest.approx(0.5) and ref["t_first"] == 0.0
    first = res["results"]["reduced (no closure)"]["trajectory"]["series"]["rel_error_mean"][0]
    assert first == 0.0 and not res["warnings"]  # same start state; no baseline, no gaps
    assert res["similarity"] == {} and res["similarity_baseline"] is None
    explicit = evaluate_online(rr, f"{data}:test:1:3", [], tmp_path / "b", horizons=(0.5,), figures=False)
    assert explicit["results"] == res["results"]
    # another start record: the initial states differ, and the report says so
    other = evaluate_online(rr, f"{data}:test:1:0", [], tmp_path / "c", horizons=(0.5,), figures=False)
    assert any("t = 0 differs" in w for w in other["warnings"])


# ---------------------------------------------------------------------------------------------- blow-up
def test_a_member_whose_enstrophy_explodes_has_a_shorter_horizon(dong, tmp_path):
    bad = shutil.copy(dong["model"], tmp_path / "exploding.h5")
    with h5py.File(bad, "r+") as h5:
        t = h5["time"][:]
        late = np.nonzero(t >= 0.5 - 1e-9)[0]
        v = h5["vorticity"]
        for i in late:
            v[i, 1] = v[i, 1] * 1e3
        dt_ = h5["diagnostics/time"][:]
        z = h5["diagnostics/enstrophy"]
        rows = np.nonzero(dt_ >= 0.5 - 1e-9)[0]
        z[rows, 1] = z[rows, 1] * 1e6
    res = evaluate_online(bad, str(dong["truth"]), [dong["model"]], tmp_path / "r", horizons=HORIZONS,
                          figures=False)
    hor = of(res, "exploding")["statistics"]["horizon"]
    assert hor["members_blown_up"] == 1 and hor["horizon_min"] == pytest.approx(0.5)
    assert hor["blowup_free_fraction"] == pytest.approx(2 / 3)
    assert hor["horizon_shortfall"] == pytest.approx((1.0 - 0.5) / 3)
    assert of(res, "model")["statistics"]["horizon"]["members_blown_up"] == 0
    assert res["similarity"]["exploding (no closure)"]["horizon_shortfall"] is None  # baseline never blew up: undefined
    assert any("blew up" in w for w in res["warnings"])


# ---------------------------------------------------------------------------------------------- errors
def test_typed_errors_for_bad_files_grids_times_and_output(dong, kolmo_les, tmp_path):
    with pytest.raises(FileFormatError, match="does not exist"):
        evaluate_online(tmp_path / "missing.h5", str(dong["truth"]), [], tmp_path / "r1")
    junk = tmp_path / "junk.h5"
    junk.write_bytes(b"not an hdf5 file at all")
    with pytest.raises(FileFormatError, match="corrupt"):
        evaluate_online(dong["model"], str(junk), [], tmp_path / "r2")
    with pytest.raises(FileFormatError, match="corrupt"):
        evaluate_online(dong["model"], str(dong["truth"]), [junk], tmp_path / "r2b")
    with h5py.File(tmp_path / "foreign.h5", "w") as h5:
        h5["x"] = np.zeros(3)
    with pytest.raises(FileFormatError, match="not a kolmo run file"):
        evaluate_online(tmp_path / "foreign.h5", str(dong["truth"]), [], tmp_path / "r3")
    # a 24² reference cannot be coarse-grained to 16²
    odd = run(preset("dong2026", 24, dt=1e-2, t_end=0.2, save_every=0.1), tmp_path / "odd.h5")
    with pytest.raises(ShapeError, match="24²"):
        evaluate_online(dong["model"], str(odd), [], tmp_path / "r4")
    # a reference whose clock never meets the run's
    late = shutil.copy(dong["truth"], tmp_path / "late.h5")
    with h5py.File(late, "r+") as h5:
        h5["time"][...] = h5["time"][:] + 100.0
    with pytest.raises(NoOverlapError, match="no run snapshot time"):
        evaluate_online(dong["model"], str(late), [], tmp_path / "r5")
    # another preset
    with pytest.raises(ConfigurationError, match="preset"):
        evaluate_online(dong["model"], str(kolmo_les["les"]), [], tmp_path / "r6")
    # a non-empty report folder is never overwritten, and nothing is computed before saying so
    out = tmp_path / "full"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(OutputExistsError, match="not empty"):
        evaluate_online(dong["model"], str(dong["truth"]), [], out)
    assert [p.name for p in out.iterdir()] == ["keep.txt"]
    assert not any(p.name.startswith(".r") for p in tmp_path.iterdir())  # no temporary folders left


def test_cli_prints_a_one_line_error(dong, tmp_path, capsys):
    import typer

    from cli.evaluate_online import evaluate_online_command

    with pytest.raises(typer.Exit) as exc:
        evaluate_online_command(tmp_path / "nope.h5", str(dong["truth"]), None, tmp_path / "r")
    assert exc.value.exit_code == 3  # bad input
    assert "FileFormatError" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------- pieces
def test_alignment_matches_within_half_the_smaller_interval():
    i, j, tol = align_times(np.arange(0, 1.01, 0.1), np.arange(0, 2.01, 0.5))
    assert tol == pytest.approx(0.05, rel=1e-6)
    np.testing.assert_array_equal(i, [0, 5, 10])
    np.testing.assert_array_equal(j, [0, 1, 2])
    i, j, _ = align_times(np.array([0.0, 0.1, 0.2]), np.array([0.02, 0.13]))
    np.testing.assert_array_equal(i, [0, 1])
    np.testing.assert_array_equal(j, [0, 1])


def test_reference_specs_parse():
    assert parse_reference("t.h5") == {"path": Path("t.h5"), "kind": "run", "member": None}
    assert parse_reference("t.h5:2")["member"] == 2
    d = parse_reference("d.h5:test:7:3")
    assert (d["kind"], d["split"], d["trajectory"], d["start"]) == ("dataset", "test", 7, 3)
    assert parse_reference("d.h5:test")["trajectory"] is None
    with pytest.raises(ConfigurationError):
        parse_reference("d.h5:test:x")
