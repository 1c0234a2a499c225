"""closure.export: the artifact contract — scripted equals eager on fixed noise, standalone loading in a
fresh process, metadata round trip, refusal of corrupt files, never overwriting, AOTInductor path."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import zipfile

import pytest
import torch

from closure.data import Normalisation
from closure.errors import AOTIUnavailableError, ExportCheckError
from closure.export import ClosureArtifact, export_closure, export_model
from closure.models import ClosureModel, ModelConfig
from closure.training import TrainConfig, train
from coupling.artifact import load_artifact
from coupling.bench import time_artifact
from coupling.errors import ArtifactFormatError
from kolmo.errors import ConfigurationError, OutputExistsError
from tests.closure.synthetic import write_synthetic_dataset

NORM = Normalisation(omega_mean=0.1, omega_std=2.0, closure_mean=-0.3, closure_std=4.0)
DATASET = {"preset": "dong2026", "target": "missing-physics", "L": 1.0, "dt": 1e-3, "fingerprint": "abc"}
REQUIRED = ("format", "format_version", "preset", "target", "grid", "L", "dt", "family", "regularizer",
            "autoencoder", "condition", "nfe", "steps", "dtype", "device", "normalisation", "dataset_fingerprint",
            "run_id", "torch_version", "created", "flops_per_sample", "parameters")



def tiny(model: str, **kw) -> ClosureModel:
    m = ClosureModel(ModelConfig(model=model, grid=16, width=8, **kw))
    if m.config.autoencoder == "pca" and m.config.latent:
        m.fit_pca(torch.randn(40, 1, 16, 16))
    if m.config.latent:
        m.set_standardisation((0.1, 1.5), (-0.2, 0.7))
    return m.eval()


@pytest.mark.parametrize("model, kw", [
    ("latent-fm", {"reg": "mp"}),
    ("latent-si", {"autoencoder": "pca", "condition": "pooled"}),
    ("latent-dm", {"reg": "joint"}),
    ("fm", {}),
    ("dm", {"dm_sampler": "heun", "steps": 3}),
    ("latent-mf", {"reg": "mp"}),
    ("latent-reflow", {"condition": "pooled"}),
])
def test_scripted_artifact_equals_the_eager_model_on_fixed_noise(model, kw, tmp_path):
    m = tiny(model, **kw)
    res = export_model(m, NORM, DATASET, tmp_path / "c.pt", run_id="r1")
    art = load_artifact(res.path)
    loaded, meta = art.module, art.metadata
    eager = ClosureArtifact(m, NORM).eval()
    omega = 0.1 + 2.0 * torch.randn(2, 16, 16)
    noise = torch.randn(eager.noise_shape(2))
    with torch.no_grad():
        want, got = eager.sample(omega, noise), loaded.sample(omega, noise)
        # the artifact works in physical units: normalisation, coders and sampler are all inside
        h_n = m.sample(((omega - 0.1) / 2.0)[:, None], noise)[:, 0]
    assert float((got - want).abs().max()) <= 1e-5 * NORM.closure_std
    torch.testing.assert_close(got, h_n * 4.0 - 0.3, rtol=1e-5, atol=1e-5)
    assert list(loaded.noise_shape(2)) == list(noise.shape) and meta["nfe"] == m.nfe()
    assert res.max_abs_diff <= res.tolerance
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.pt"]  # no temporary left behind


def test_noise_layouts_follow_the_sampler():
    assert ClosureArtifact(tiny("latent-fm"), NORM).noise_shape(3) == [3, 1, 4, 4]
    assert ClosureArtifact(tiny("si"), NORM, steps=4).noise_shape(3) == [5, 3, 1, 16, 16]
    assert ClosureArtifact(tiny("dm"), NORM).noise_shape(1) == [11, 1, 1, 16, 16]


def test_artifact_loads_and_runs_in_a_fresh_process_that_imports_only_torch(tmp_path):
    m = tiny("latent-fm", reg="mp")
    path = export_model(m, NORM, DATASET, tmp_path / "c.pt").path
    omega = torch.randn(2, 16, 16)
    noise = torch.randn(2, 1, 4, 4)
    with torch.no_grad():  # the module as saved (its inference form; the self-check bounds it against eager)
        want = load_artifact(path, freeze=False).module.sample(omega, noise)
    torch.save({"omega": omega, "noise": noise}, tmp_path / "inputs.pt")
    script = textwrap.dedent(f"""
        import json, sys
        import torch
        extra = {{"metadata.json": ""}}
        m = torch.jit.load({str(path)!r}, _extra_files=extra)
        meta = json.loads(extra["metadata.json"])
        x = torch.load({str(tmp_path / 'inputs.pt')!r})
        with torch.no_grad():
            out = m.sample(x["omega"], x["noise"])
            drawn = m(x["omega"])
            f64 = m.to(torch.float64)(x["omega"].double())
        torch.save(out, {str(tmp_path / 'out.pt')!r})
        ours = sorted(k for k in sys.modules if k.split(".")[0] in ("kolmo", "closure", "coupling", "cli", "tests"))
        print(json.dumps({{"format": meta["format"], "shape": list(drawn.shape), "f64": str(f64.dtype),
                          "noise_shape": m.noise_shape(2), "ours": ours}}))
    """)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    res = subprocess.run([sys.executable, "-I", "-W", "ignore::DeprecationWarning", "-c", script], cwd=tmp_path,
                         env=env, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    report = json.loads(res.stdout.strip().splitlines()[-1])
    assert report == {"format": "kolmo-closure", "shape": [2, 16, 16], "f64": "torch.float64",
                      "noise_shape": [2, 1, 4, 4], "ours": []}
    assert torch.equal(torch.load(tmp_path / "out.pt"), want)


def test_metadata_round_trips_with_every_contract_key(tmp_path):
    m = tiny("latent-fm", reg="ga")
    res = export_model(m, NORM, DATASET, tmp_path / "c.pt", run_id="run-7", dtype="float64")
    extra = {"metadata.json": ""}
    torch.jit.load(str(res.path), _extra_files=extra)
    meta = json.loads(extra["metadata.json"])
    assert meta == json.loads(json.dumps(res.metadata))
    assert set(REQUIRED) <= set(meta)
    assert (meta["format"], meta["format_version"], meta["family"], meta["regularizer"]) == (
        "kolmo-closure", 2, "latent-fm", "ga")
    assert (meta["grid"], meta["nfe"], meta["steps"], meta["dtype"], meta["run_id"]) == (16, 1, 1, "float64", "run-7")
    assert meta["normalisation"] == {"omega": [0.1, 2.0], "H": [-0.3, 4.0]}
    assert meta["dataset_fingerprint"] == "abc" and meta["torch_version"] == torch.__version__
    assert meta["flops_per_sample"] == pytest.approx(m.flops_per_sample())
    assert meta["parameters"]["total"] == m.parameter_counts()["total"]


def test_corrupted_or_foreign_files_are_refused(tmp_path):
    good = export_model(tiny("fm"), NORM, DATASET, tmp_path / "c.pt").path
    cut = tmp_path / "cut.pt"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(ArtifactFormatError, match="is not a TorchScript archive or is corrupt"):
        load_artifact(cut)
    plain = tmp_path / "plain.pt"
    torch.jit.save(torch.jit.script(torch.nn.Identity()), str(plain))
    with pytest.raises(ArtifactFormatError, match="no metadata.json extra file: a TorchScript module, but not a "
                                                  "kolmo-closure artifact"):
        load_artifact(plain)


def test_a_failing_self_check_keeps_no_file(tmp_path, monkeypatch):
    import closure.export as export

    real = export.load_artifact

    def tampered(path, device="cpu", dtype="float32", probe=True):
        loaded = real(path, device, dtype, probe)
        module = loaded.module

        class Off(torch.nn.Module):
            def forward(self, omega):
                return module(omega)

            def sample(self, omega, noise):
                return module.sample(omega, noise) + 1e-3

            def noise_shape(self, batch):
                return module.noise_shape(batch)

        loaded.module = Off()
        return loaded

    monkeypatch.setattr(export, "load_artifact", tampered)
    with pytest.raises(ExportCheckError, match=r"differs from the eager model on fixed noise by 0.001.*not kept"):
        export_model(tiny("latent-fm"), NORM, DATASET, tmp_path / "c.pt")
    assert list(tmp_path.iterdir()) == []


def test_an_existing_output_is_never_overwritten_and_bad_options_are_refused(tmp_path):
    out = tmp_path / "c.pt"
    out.write_text("precious")
    with pytest.raises(OutputExistsError, match="exists; choose another --out"):
        export_model(tiny("fm"), NORM, DATASET, out)
    assert out.read_text() == "precious"
    with pytest.raises(ConfigurationError, match="dtype 'float16' is not supported"):
        export_model(tiny("fm"), NORM, DATASET, tmp_path / "d.pt", dtype="float16")
    with pytest.raises(ConfigurationError, match="format 'onnx' is not supported"):
        export_model(tiny("fm"), NORM, DATASET, tmp_path / "d.pt", format="onnx")


def test_aoti_without_a_compiler_is_a_typed_error(tmp_path, monkeypatch):
    import closure.export as export

    monkeypatch.setattr(export, "_aoti_compiler", lambda: None)
    with pytest.raises(AOTIUnavailableError, match="needs a C.. compiler for AOTInductor"):
        export_model(tiny("latent-fm"), NORM, DATASET, tmp_path / "c.pt2", format="aoti")
    assert list(tmp_path.iterdir()) == []


def test_aoti_export_refuses_a_wrong_suffix_or_a_batch_it_cannot_trace_before_compiling(tmp_path):
    with pytest.raises(ConfigurationError, match=r"name it \*.pt2, got 'c.pt'"):
        export_model(tiny("latent-fm"), NORM, DATASET, tmp_path / "c.pt", format="aoti")
    with pytest.raises(ConfigurationError, match="dynamic batch from the self-check batch; it must be >= 2, got 1"):
        export_model(tiny("latent-fm"), NORM, DATASET, tmp_path / "c.pt2", format="aoti", check_batch=1)
    assert list(tmp_path.iterdir()) == []


def test_aoti_package_holds_the_metadata_inside_and_matches_the_eager_model_and_torchscript(aoti_closure):
    res = aoti_closure.result
    # self-check: the package at batch 3 and 1, and the TorchScript of the same module, against eager
    assert set(res.checks) == {"aoti", "aoti, batch 1", "torchscript"}
    assert all(diff <= bound for diff, bound in res.checks.values())
    assert res.checks["aoti"][1] == pytest.approx(1e-4 * NORM.closure_std)
    assert res.checks["torchscript"][1] == pytest.approx(1e-5 * NORM.closure_std)
    with zipfile.ZipFile(res.path) as archive:
        names = archive.namelist()
        meta = json.loads(archive.read(next(n for n in names if n.endswith("/extra/metadata.json"))))
    assert meta == json.loads(json.dumps(res.metadata)) and set(REQUIRED) <= set(meta)
    assert (meta["format_variant"], meta["noise_dims"], meta["batch_range"]) == ("aoti", [-1, 1, 4, 4], [1, 4096])
    assert any("/data/aotinductor/model/" in n and n.endswith(".so") for n in names)
    # the metadata lives in the package: no side file and no temporary beside it
    assert sorted(p.name for p in res.path.parent.iterdir()) == ["closure.pt", "closure.pt2"]


def test_aoti_package_runs_in_a_fresh_process_that_imports_only_torch_at_batch_1_and_3(aoti_closure, tmp_path):
    g = torch.Generator().manual_seed(3)
    inputs = {b: (0.1 + 2.0 * torch.randn(b, 16, 16, generator=g), torch.randn(b, 1, 4, 4, generator=g))
              for b in (1, 3)}
    torch.save(inputs, tmp_path / "inputs.pt")
    script = textwrap.dedent(f"""
        import json, sys, zipfile
        import torch
        path = {str(aoti_closure.pt2)!r}
        with zipfile.ZipFile(path) as z:
            meta = json.loads(z.read(next(n for n in z.namelist() if n.endswith("/extra/metadata.json"))))
        loader = torch._C._aoti.AOTIModelPackageLoader(path, "model", False, 1, -1)
        x = torch.load({str(tmp_path / 'inputs.pt')!r})
        out = {{b: loader.boxed_run([o, n])[0] for b, (o, n) in x.items()}}
        torch.save(out, {str(tmp_path / 'out.pt')!r})
        ours = sorted(k for k in sys.modules if k.split(".")[0] in ("kolmo", "closure", "coupling", "cli", "tests"))
        print(json.dumps({{"format": meta["format"], "shapes": [list(v.shape) for v in out.values()], "ours": ours}}))
    """)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    res = subprocess.run([sys.executable, "-I", "-W", "ignore", "-c", script], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    report = json.loads(res.stdout.strip().splitlines()[-1])
    assert report == {"format": "kolmo-closure", "shapes": [[1, 16, 16], [3, 16, 16]], "ours": []}
    out = torch.load(tmp_path / "out.pt")
    with torch.no_grad():
        for b, (omega, noise) in inputs.items():
            assert float((out[b] - aoti_closure.eager.sample(omega, noise)).abs().max()) <= 1e-4 * NORM.closure_std


def test_export_of_a_trained_run_and_its_batch_one_latency(tmp_path):
    data = write_synthetic_dataset(tmp_path / "d.h5", train_trajectories=3, snapshots=10)
    cfg = TrainConfig(data=str(data), model=ModelConfig(model="latent-fm", width=8, condition="pooled"), epochs=1,
                      ae_epochs=1, batch=8)
    train(cfg, tmp_path / "run")
    res = export_closure(tmp_path / "run", tmp_path / "c.pt")
    assert res.metadata["run_id"].startswith("latent-fm-none-") and res.metadata["grid"] == 16
    (lat,) = time_artifact(res.path, [1], repeat=3, warmup=1)
    assert lat.median_ms > 0 and lat.batch == 1 and lat.nfe == 1
