"""``kolmo run --closure``/``--protocol paper`` and ``kolmo info CLOSURE.pt`` end to end (tiny runs)."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest
from typer.testing import CliRunner

from cli.main import app
from tests.coupling.conftest import LinearNoise, TwoStepNoise

runner = CliRunner()


def kolmo(*args: str):  # noqa: ANN201
    result = runner.invoke(app, [str(a) for a in args])
    result.text = " ".join(result.output.split())  # rich wraps lines: compare on normalised whitespace
    return result


def test_run_with_an_artifact_sets_the_reduced_model_from_its_target_and_says_so(make_artifact, tmp_path: Path) -> None:
    art = make_artifact(TwoStepNoise(16))
    out = tmp_path / "run.h5"
    r = kolmo("run", "--closure", art, "--closure-every", 5, "--closure-jitter", 5e-5, "-b", 2, "--time", 0.02,
              "--save-every", 0.01, "--out", out)
    assert r.exit_code == 0, r.output
    assert "closure target missing-physics-noisy: reduced model: advection off, stochastic forcing off (H holds " \
           "it), stepper cn-euler" in r.text
    assert "device cpu, dtype float32, every 5 steps" in r.text and "closure calls" in r.text
    with h5py.File(out) as h5:
        cfg = json.loads(h5.attrs["config"])
        assert (cfg["preset"], cfg["n"], cfg["advection"], cfg["noise_sigma"], cfg["stepper"]) == \
            ("dong2026", 16, False, 0.0, "cn-euler")
        assert h5.attrs["closure_calls"] == 20 and h5.attrs["closure_artifact_calls"] == 4
        assert h5.attrs["closure_spec"] == str(art) and "closure_seconds" in h5.attrs
        assert h5["diagnostics/closure_energy"].shape == (20, 2)


def test_the_les_time_step_follows_the_coarse_grid_for_sgs_closures(make_artifact, tmp_path: Path) -> None:
    from kolmo.presets import kolmogorov_dt

    dns_dt = kolmogorov_dt(64)  # the DNS the closure was trained on (64² → 16²)
    art = make_artifact(LinearNoise(16, a=-0.05, s=0.0), preset="kolmogorov", target="sgs-resolved", L=2 * np.pi,
                        dt=dns_dt)
    out = tmp_path / "les.h5"
    r = kolmo("run", "--closure", art, "--time", 0.5, "--out", out)
    assert r.exit_code == 0, r.output
    les_dt = kolmogorov_dt(16)
    assert les_dt == pytest.approx(4 * dns_dt, rel=0.02)
    assert f"LES time step dt = {les_dt:.6g} (the coarse grid's own CFL time step (preset kolmogorov, 16²)); " \
           f"the closure was trained at dt = {dns_dt:.6g}" in r.text
    with h5py.File(out) as h5:
        cfg = json.loads(h5.attrs["config"])
        assert (cfg["n"], cfg["dt"], cfg["advection"]) == (16, les_dt, True)
        assert h5.attrs["closure_trained_dt"] == dns_dt
        assert h5.attrs["closure_calls"] == round(0.5 / les_dt)
    r = kolmo("run", "--closure", art, "--dt", les_dt / 2, "--time", 0.05, "--out", tmp_path / "half-dt.h5")
    assert r.exit_code == 0 and f"LES time step dt = {les_dt / 2:.6g} (as asked explicitly)" in r.text


def test_run_refuses_advection_on_with_a_missing_physics_artifact(make_artifact, tmp_path: Path) -> None:
    r = kolmo("run", "--closure", make_artifact(), "--set", "advection=true", "--time", 0.01, "--out", tmp_path / "x.h5")
    assert r.exit_code == 3  # bad input: the artifact does not fit the equation asked for
    assert "TargetMismatchError: the closure's target is 'missing-physics-noisy', which needs advection off, but " \
           "advection=true was asked for explicitly" in r.text


def test_run_with_a_closure_for_another_grid_is_refused_naming_both(make_artifact, tmp_path: Path) -> None:
    r = kolmo("run", "--closure", make_artifact(), "-n", 32, "--time", 0.01, "--out", tmp_path / "x.h5")
    assert r.exit_code == 3 and "GridMismatchError: closure artifact:closure.pt is for a 16² grid, but the solver " \
                                "runs 32²" in r.text


def test_paper_protocol_starts_every_member_from_the_dataset_test_snapshot(make_artifact, truth_dataset: Path,
                                                                          tmp_path: Path) -> None:
    out = tmp_path / "paper.h5"
    r = kolmo("run", "--protocol", "paper", "-n", 16, "--time", 0.02, "--save-every", 0.01, "-b", 3,
              "--init", f"{truth_dataset}:test:5", "--closure", make_artifact(TwoStepNoise(16)), "--out", out)
    assert r.exit_code == 0, r.output
    assert "protocol paper" in r.text
    with h5py.File(truth_dataset) as d, h5py.File(out) as h5:
        start = d["test/vorticity"][5]
        for m in range(3):
            np.testing.assert_array_equal(h5["vorticity"][0, m], start)  # broadcast to all members
        assert not np.allclose(h5["vorticity"][-1, 0], h5["vorticity"][-1, 1])  # own samples per member
        assert h5.attrs["closure_every"] == 5 and h5.attrs["closure_jitter"] == 5e-5
        cfg = json.loads(h5.attrs["config"])
        assert cfg["dt"] == 1e-3 and cfg["advection"] is False and cfg["stepper"] == "cn-euler"
    r = kolmo("run", "--protocol", "paper", "-n", 16, "--time", 0.01, "--out", tmp_path / "y.h5")
    assert r.exit_code == 2 and "pass --init DATA.h5:test:INDEX" in r.text


def test_replay_run_starts_at_the_init_record_and_resumes_with_the_stored_closure(truth_dataset: Path,
                                                                               tmp_path: Path) -> None:
    out = tmp_path / "replay.h5"
    r = kolmo("run", "--closure", f"replay:{truth_dataset}", "--init", f"{truth_dataset}:test:2", "--time", 0.2,
              "--save-every", 0.1, "--out", out)
    assert r.exit_code == 0, r.output
    with h5py.File(out) as h5:
        assert h5.attrs["closure_start_index"] == 2 and h5.attrs["closure_calls"] == 200
    r = kolmo("run", "--resume", out, "--time", 0.3)
    assert r.exit_code == 0, r.output
    assert "resuming with closure replay:truth.h5:test:0" in r.text
    with h5py.File(out) as h5:
        assert h5.attrs["closure_calls"] == 300 and h5["time"][-1] == pytest.approx(0.3)


@pytest.mark.parametrize("spec, match, code", [("smagorinksy", "unknown closure 'smagorinksy'; expected one of none, "
                                                               "smagorinsky, leith, dong2026-default, PATH.pt, PATH.pt2, "
                                                               "replay:DATA.h5[:TRAJ]", 2),
                                               ("missing.pt", "closure artifact missing.pt does not exist", 3)])
def test_bad_closure_specs_are_clean_errors(spec: str, match: str, code: int, tmp_path: Path) -> None:
    r = kolmo("run", "--closure", spec, "--time", 0.01, "--out", tmp_path / "x.h5")
    assert r.exit_code == code and match in r.text  # 2: usage error, 3: bad input


def test_info_prints_the_artifact_metadata(make_artifact) -> None:
    r = kolmo("info", make_artifact())
    assert r.exit_code == 0, r.output
    for text in ("kolmo-closure", "missing-physics", "dong2026", "dataset_fingerprint", "torch_version"):
        assert text in r.text


def test_resampling_options_for_a_closure_that_does_not_resample_are_named_once_not_dropped() -> None:
    from coupling.online import ClosureOptions, prepare_run

    run = prepare_run("kolmogorov", 16, {}, "smagorinsky", ClosureOptions(every=5))
    assert [n for n in run.notes if "ignored" in n] == [
        "--closure-every 5 ignored: closure smagorinsky is evaluated every step (only artifact closures are resampled)"]
    run = prepare_run("kolmogorov", 16, {}, None, ClosureOptions(every=5, jitter=1e-3))
    assert [n for n in run.notes if "ignored" in n] == [
        "--closure-every 5 and --closure-jitter 0.001 ignored: there is no closure (only artifact closures are "
        "resampled)"]
    assert prepare_run("kolmogorov", 16, {}, None, ClosureOptions()).notes == []


def test_run_without_a_closure_builds_its_config_in_the_same_place_init_included(tmp_path: Path) -> None:
    from coupling.online import prepare_run
    from kolmo.presets import preset

    run = prepare_run("kolmogorov", 16, {"t_end": 0.5, "members": None}, None, init="runs/x.h5:3")
    assert run.closure is None
    assert run.config == preset("kolmogorov", 16, t_end=0.5, initial="file", initial_params={"path": "runs/x.h5:3"})


def test_run_resume_info_and_bench_accept_an_aoti_package(aoti_closure, tmp_path: Path) -> None:
    out = tmp_path / "run.h5"
    r = kolmo("run", "--closure", aoti_closure.pt2, "--closure-every", 2, "--closure-jitter", 1e-4, "-b", 2,
              "--time", 0.01, "--save-every", 0.005, "--out", out)
    assert r.exit_code == 0, r.output
    assert "closure target missing-physics: reduced model" in r.text and "every 2 steps" in r.text
    r = kolmo("run", "--resume", out, "--time", 0.02)
    assert r.exit_code == 0, r.output
    with h5py.File(out) as h5:
        assert h5.attrs["closure_spec"] == str(aoti_closure.pt2) and h5["time"][-1] == pytest.approx(0.02)
        assert h5.attrs["closure_calls"] == 20 and h5.attrs["closure_artifact_calls"] == 10
        assert np.isfinite(h5["vorticity"][()]).all()
    r = kolmo("info", aoti_closure.pt2)
    assert r.exit_code == 0, r.output
    for text in ("(format aoti)", "kolmo-closure", "noise_dims", "batch_range", "[1, 4096]", "latent-fm"):
        assert text in r.text
    bench = tmp_path / "bench.json"
    r = kolmo("bench", "closures", aoti_closure.pt, aoti_closure.pt2, "--batch", "1,3", "--repeat", 2, "--warmup", 1,
              "--json", bench)
    assert r.exit_code == 0, r.output
    rows = json.loads(bench.read_text())["rows"]
    assert [(row["file_format"], row["batch"]) for row in rows] == [("torchscript", 1), ("torchscript", 3),
                                                                    ("aoti", 1), ("aoti", 3)]
    # AOTI weights are compiled in: the metadata's count of parameters (TorchScript also counts buffers)
    assert rows[2]["parameters"] == aoti_closure.result.metadata["parameters"]["total"] > 0
    assert all(row["load_ms"] > 0 for row in rows)
