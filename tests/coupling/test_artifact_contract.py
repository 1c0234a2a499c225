"""The artifact contract: standalone loading, metadata, and the typed errors of a bad file or device."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest
import torch

from coupling.artifact import (FORMAT, METADATA_FILE, REQUIRED_METADATA, load_artifact, read_metadata,
                               resolve_device)
from coupling.errors import ArtifactFormatError, ClosureShapeError, DeviceError, DtypeError
from coupling.learned import ArtifactClosure
from kolmo.errors import FileFormatError, KolmoError
from tests.coupling.conftest import NoSampleMethod, TwoStepNoise, WrongDtype, WrongShape, metadata


def test_artifact_loads_with_plain_torch_jit_load_in_a_fresh_process_that_imports_nothing_of_the_project(
        make_artifact, tmp_path: Path) -> None:
    path = make_artifact(TwoStepNoise(16))
    script = textwrap.dedent(f"""
        import json, sys
        import torch
        extra = {{"metadata.json": ""}}
        m = torch.jit.load({str(path)!r}, _extra_files=extra)
        meta = json.loads(extra["metadata.json"])
        omega = torch.randn(3, meta["grid"], meta["grid"])
        shape = m.noise_shape(3)
        g = torch.Generator().manual_seed(1)
        noise = torch.randn(shape, generator=g)
        a = m.sample(omega, noise)
        b = m.sample(omega, noise)
        c = m(omega)
        ours = sorted(k for k in sys.modules if k.split(".")[0] in ("kolmo", "coupling", "closure", "cli", "tests"))
        print(json.dumps({{"format": meta["format"], "noise_shape": shape, "sample": list(a.shape),
                          "forward": list(c.shape), "reproducible": bool(torch.equal(a, b)), "ours": ours}}))
    """)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH",)}
    res = subprocess.run([sys.executable, "-I", "-W", "ignore::DeprecationWarning", "-c", script], cwd=tmp_path,
                         env=env, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert out == {"format": FORMAT, "noise_shape": [2, 3, 1, 16, 16], "sample": [3, 16, 16],
                   "forward": [3, 16, 16], "reproducible": True, "ours": []}


def test_metadata_holds_every_contract_key_and_the_saved_module_equals_the_eager_one_on_fixed_noise(
        make_artifact) -> None:
    eager = TwoStepNoise(16)
    path = make_artifact(eager)
    meta = read_metadata(path)
    assert set(REQUIRED_METADATA) <= set(meta)
    assert meta["format_version"] == 2 and meta["target"] == "missing-physics-noisy" and meta["grid"] == 16
    assert meta["torch_version"] == torch.__version__
    loaded = load_artifact(path)
    g = torch.Generator().manual_seed(0)
    omega, noise = torch.randn(3, 16, 16, generator=g), torch.randn(eager.noise_shape(3), generator=g)
    with torch.inference_mode():
        torch.testing.assert_close(loaded.module.sample(omega, noise), eager.sample(omega, noise), rtol=0, atol=1e-6)


@pytest.mark.parametrize("case, match", [
    ("missing", "does not exist"),
    ("not-torchscript", "not a TorchScript archive"),
    ("no-metadata", "no metadata.json extra file"),
    ("foreign-format", "format 'something-else', expected 'kolmo-closure'"),
    ("future-version", r"format_version 3 is not supported; expected one of \[1, 2\]"),
    ("missing-key", r"metadata lacks \['dataset_fingerprint'\]"),
    ("bad-target", "target 'weather', expected one of"),
    ("aoti-package", r"not an AOTInductor package or is corrupt \(File is not a zip file\)"),
    ("aoti-no-model", r"holds no AOTInductor model 'model'"),
    ("aoti-no-metadata", r"has no extra/metadata.json: a PT2 archive, but not a kolmo-closure artifact"),
])
def test_missing_corrupt_or_foreign_files_raise_artifact_format_error(case: str, match: str, tmp_path: Path,
                                                                      make_artifact) -> None:
    path = tmp_path / ("x.pt2" if case.startswith("aoti") else "x.pt")
    if case in ("not-torchscript", "aoti-package"):
        path.write_bytes(b"\x00not a zip archive at all")
    elif case in ("aoti-no-model", "aoti-no-metadata"):
        with zipfile.ZipFile(path, "w") as archive:
            if case == "aoti-no-model":
                archive.writestr("x/extra/metadata.json", json.dumps(metadata()))
            else:
                archive.writestr("x/data/aotinductor/model/x.wrapper.so", b"")
    elif case == "no-metadata":
        torch.jit.save(torch.jit.script(NoSampleMethod()), str(path))
    elif case in ("foreign-format", "future-version", "missing-key", "bad-target"):
        meta = dict(metadata(), format="kolmo-closure", format_version=1, torch_version="x", created="now")
        if case == "foreign-format":
            meta["format"] = "something-else"
        elif case == "future-version":
            meta["format_version"] = 3
        elif case == "missing-key":
            del meta["dataset_fingerprint"]
        else:
            meta["target"] = "weather"
        torch.jit.save(torch.jit.script(TwoStepNoise(16)), str(path), _extra_files={METADATA_FILE: json.dumps(meta)})
    with pytest.raises(ArtifactFormatError, match=match) as info:
        read_metadata(path)
    assert isinstance(info.value, FileFormatError) and isinstance(info.value, KolmoError)


def test_a_module_without_the_contract_methods_is_refused(make_artifact) -> None:
    path = make_artifact(NoSampleMethod())
    with pytest.raises(ArtifactFormatError, match=r"lacks method\(s\) \['sample', 'noise_shape'\]"):
        load_artifact(path)


def test_wrong_output_shape_from_an_artifact_is_a_shape_error(make_artifact) -> None:
    path = make_artifact(WrongShape(16))
    with pytest.raises(ClosureShapeError, match=r"sample\(\) returned shape \(2, 15, 16\), expected \(2, 16, 16\)"):
        ArtifactClosure(path)


def test_wrong_output_dtype_from_an_artifact_is_a_dtype_error(make_artifact) -> None:
    path = make_artifact(WrongDtype(16))
    with pytest.raises(DtypeError, match="returned dtype torch.float64, expected torch.float32"):
        ArtifactClosure(path, dtype="float32")
    ArtifactClosure(path, dtype="float64")  # consistent when asked for float64


def test_unsupported_dtype_is_refused(make_artifact) -> None:
    with pytest.raises(DtypeError, match="closure dtype 'float16' is not supported; expected one of float32, float64"):
        ArtifactClosure(make_artifact(), dtype="float16")


def test_cuda_asked_for_without_a_gpu_is_a_device_error_not_a_cpu_fallback(make_artifact, monkeypatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(DeviceError, match=r"device 'cuda' was asked for but torch.cuda.is_available\(\) is False"):
        ArtifactClosure(make_artifact(), device="cuda")
    with pytest.raises(DeviceError, match="unknown device 'gpu0'"):
        resolve_device("gpu0")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU visible")
def test_artifact_runs_on_cuda_when_present(make_artifact) -> None:
    import numpy as np

    from tests.coupling.conftest import coarse_state

    c = ArtifactClosure(make_artifact(), device="cuda", every=2, jitter=1e-3, seed=3)
    omega = np.random.default_rng(0).standard_normal((4, 16, 16))
    h = [c(coarse_state(omega, step)) for step in range(4)]
    assert all(x.dtype == np.float64 and x.shape == (4, 16, 16) for x in h)
    assert c.describe()["closure_device"].startswith("cuda")
