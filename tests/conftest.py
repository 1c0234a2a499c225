"""Test configuration: writable caches, single-threaded math, small fixtures, and the one AOTInductor
package of a test run."""

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("NUMBA_CACHE_DIR", os.path.join(tempfile.gettempdir(), "kolmo-numba-cache"))
os.environ.setdefault("KOLMO_CACHE_DIR", os.path.join(tempfile.gettempdir(), "kolmo-cache"))
os.environ.setdefault("OMP_NUM_THREADS", "1")




@pytest.fixture(scope="session")
def dask_client():
    """One local Dask cluster (2 worker processes x 1 thread, started once, ~3 s) for every test that asks
    for it: the scale-out tests of ``kolmo.cluster`` and the coupling of batched runs."""
    from kolmo.cluster import ClusterOptions, open_client

    with open_client(ClusterOptions(workers=2)) as client:
        yield client

# ---------------------------------------------------------------------- one AOTInductor package per test run
@dataclass(frozen=True)
class AOTIClosure:
    """A 16² latent flow-matching closure exported twice: ``pt2`` (AOTInductor) and ``pt`` (TorchScript),
    with the eager ``ClosureArtifact`` they were made from and the ``.pt2`` export's result."""

    pt2: Path
    pt: Path
    eager: Any
    result: Any


@pytest.fixture(scope="session")
def aoti_closure(tmp_path_factory: pytest.TempPathFactory) -> AOTIClosure:
    """Compiled once per test run (about 40 s on 2 cores) and shared by the closure, coupling, CLI and
    C++ tests of the ``.pt2`` format. Skipped, with the reason, where no C++ compiler is on PATH (the
    typed error of that case is tested in tests/closure/test_export.py)."""
    if not any(shutil.which(c) for c in ("c++", "g++", "clang++")):
        pytest.skip("AOTInductor needs a C++ compiler (none of c++, g++, clang++ is on PATH)")
    import torch

    from closure.data import Normalisation
    from closure.export import ClosureArtifact, export_model
    from closure.models import ClosureModel, ModelConfig

    torch.manual_seed(0)
    model = ClosureModel(ModelConfig(model="latent-fm", grid=16, width=8, reg="mp"))
    model.set_standardisation((0.1, 1.5), (-0.2, 0.7))
    model.eval()
    norm = Normalisation(omega_mean=0.1, omega_std=2.0, closure_mean=-0.3, closure_std=4.0)
    dataset = {"preset": "dong2026", "target": "missing-physics", "L": 1.0, "dt": 1e-3, "fingerprint": "aoti-test"}
    folder = tmp_path_factory.mktemp("aoti")
    result = export_model(model, norm, dataset, folder / "closure.pt2", run_id="aoti-test", format="aoti")
    export_model(model, norm, dataset, folder / "closure.pt", run_id="aoti-test")
    return AOTIClosure(folder / "closure.pt2", folder / "closure.pt", ClosureArtifact(model, norm).eval(), result)
