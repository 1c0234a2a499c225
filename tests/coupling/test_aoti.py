"""coupling.aoti: an AOTInductor package read by the one loader with the TorchScript artifact's interface,
equal to the eager model and to TorchScript at any batch, refused outside its dtype, batch range and
CPU, and coupled online with the same seeded noise and a bit-exact restart."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import coupling.aoti as aoti
from coupling.artifact import load_artifact
from coupling.errors import ArtifactFormatError, ClosureShapeError, DtypeError
from coupling.learned import ArtifactClosure
from tests.coupling.conftest import coarse_state

BOUND = 1e-4 * 4.0  # AOTI self-check bound: 1e-4 x closure std (4.0 in the fixture)


def test_a_package_loads_through_the_one_loader_and_equals_eager_and_torchscript_at_batch_1_3_and_7(aoti_closure):
    art = load_artifact(aoti_closure.pt2)
    ts = load_artifact(aoti_closure.pt)
    assert (art.file_format, ts.file_format) == ("aoti", "torchscript")
    assert art.metadata["grid"] == 16 and art.metadata["nfe"] == 1
    g = torch.Generator().manual_seed(1)
    for b in (1, 3, 7):
        omega = 0.1 + 2.0 * torch.randn(b, 16, 16, generator=g)
        noise = torch.randn(art.module.noise_shape(b), generator=g)
        assert art.module.noise_shape(b) == [int(s) for s in ts.module.noise_shape(b)] == [b, 1, 4, 4]
        with torch.inference_mode():
            got, want, scripted = art.module.sample(omega, noise), aoti_closure.eager.sample(omega, noise), \
                ts.module.sample(omega, noise)
            assert tuple(art.module(omega).shape) == (b, 16, 16)
        assert float((got - want).abs().max()) <= BOUND and float((got - scripted).abs().max()) <= BOUND


def test_a_package_runs_only_in_its_dtype_and_batch_range(aoti_closure):
    with pytest.raises(DtypeError, match=r"AOTInductor package compiled for torch.float32; it cannot run in "
                                         r"torch.float64 \(use --closure-dtype float32"):
        load_artifact(aoti_closure.pt2, dtype="float64")
    module = load_artifact(aoti_closure.pt2, probe=False).module
    with pytest.raises(ClosureShapeError, match=r"takes \(B, N, N\) with 1 <= B <= 4096"):
        module.sample(torch.zeros(0, 16, 16), torch.zeros(0, 1, 4, 4))
    with pytest.raises(ClosureShapeError, match=r"noise of shape \[2, 1, 16, 16\], expected \[2, 1, 4, 4\]"):
        module.sample(torch.zeros(2, 16, 16), torch.zeros(2, 1, 16, 16))
    with pytest.raises(DtypeError, match="input dtype torch.float64; this AOTInductor package was compiled for "
                                         "torch.float32"):
        module.sample(torch.zeros(2, 16, 16, dtype=torch.float64), torch.zeros(2, 1, 4, 4, dtype=torch.float64))


def test_a_package_built_for_another_machine_or_a_cpu_feature_this_cpu_lacks_is_refused(monkeypatch, tmp_path):
    p = tmp_path / "x.pt2"
    with pytest.raises(ArtifactFormatError, match="compiled for machine 'riscv64'"):
        aoti._check_machine(p, {"AOTI_MACHINE": "riscv64"})
    monkeypatch.setattr(aoti, "ISA_CHECKS", {"AVX2": lambda: True, "AVX512": lambda: False})
    with pytest.raises(ArtifactFormatError, match="compiled for CPUs with AVX512 .* which this CPU lacks"):
        aoti._check_machine(p, {"AOTI_CPU_ISA": "AVX512 AVX512_VNNI", "AOTI_DEVICE_KEY": "cpu"})
    aoti._check_machine(p, {"AOTI_CPU_ISA": "AVX2", "AOTI_DEVICE_KEY": "cpu"})  # what this CPU has: accepted


def _steps(closure: ArtifactClosure, omegas: np.ndarray, first: int, last: int) -> list[np.ndarray]:
    return [closure(coarse_state(omegas[k], step=k)) for k in range(first, last)]


def test_online_the_package_draws_the_same_seeded_noise_as_torchscript_and_restarts_bit_exactly(aoti_closure):
    """Resample every 3 steps with jitter, 2 members: the .pt2 closure follows the .pt closure of the
    same model (same generator stream, AOTI round-off only); stopping after step 4 and restoring the
    saved state into a fresh closure continues bit for bit."""
    omegas = 0.1 + 2.0 * np.random.default_rng(0).standard_normal((10, 2, 16, 16))

    def closure(path):  # noqa: ANN001, ANN202
        return ArtifactClosure(path, every=3, jitter=1e-3, seed=5)

    full = _steps(closure(aoti_closure.pt2), omegas, 0, 10)
    scripted = _steps(closure(aoti_closure.pt), omegas, 0, 10)
    for a, b in zip(full, scripted):
        np.testing.assert_allclose(a, b, rtol=0, atol=BOUND)
    first = closure(aoti_closure.pt2)
    _steps(first, omegas, 0, 5)
    state = first.get_state()
    resumed = closure(aoti_closure.pt2)
    resumed.set_state(state)
    for a, b in zip(full[5:], _steps(resumed, omegas, 5, 10)):
        np.testing.assert_array_equal(a, b)
    assert resumed.samples == 4 and resumed.jitters == 6  # resamples at steps 0, 3, 6, 9
