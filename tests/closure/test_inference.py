"""closure.inference: the matrix form of a spectral convolution is the FFT form to round-off, only small
layers are replaced, the trained model is left alone, and an exported artifact carries the matrix form."""

from __future__ import annotations

import pytest
import torch

from closure.export import ClosureArtifact, export_model
from closure.fourier_layers import SpectralConv2d
from closure.inference import MatrixSpectralConv2d, TimeGridFlowEuler, inference_form, spectral_grids
from closure.networks import ConditionalFNO, FNOConfig
from closure.samplers import FlowEuler, MeanFlowJump
from coupling.artifact import load_artifact
from tests.closure.test_export import DATASET, NORM, tiny


@pytest.mark.parametrize("dtype, tol", [(torch.float32, 2e-6), (torch.float64, 1e-13)])
@pytest.mark.parametrize("c_in, c_out, modes, n, batch", [(3, 5, 4, 16, 1), (3, 5, 4, 16, 4), (2, 2, 3, 12, 2),
                                                          (4, 4, 5, 10, 3)])
def test_matrix_spectral_conv_equals_the_fft_layer(dtype, tol, c_in, c_out, modes, n, batch):
    torch.manual_seed(0)
    fft_layer = SpectralConv2d(c_in, c_out, modes).to(dtype)
    with torch.no_grad():
        fft_layer.weight_real.normal_()
        fft_layer.weight_imag.normal_()
        matrix_layer = MatrixSpectralConv2d(fft_layer, n)
        h = torch.randn(batch, c_in, n, n, dtype=dtype)
        want = fft_layer(h)
        got = matrix_layer(h)
    assert got.dtype == dtype and got.shape == want.shape
    assert float((got - want).abs().max()) <= tol * float(want.abs().max())


def test_matrix_spectral_conv_refuses_another_grid():
    layer = MatrixSpectralConv2d(SpectralConv2d(2, 2, 3), 12)
    with pytest.raises(ValueError, match="expects"):
        layer(torch.randn(1, 2, 16, 16))


def test_inference_form_replaces_only_small_layers_and_leaves_the_model_alone():
    latent = ConditionalFNO(FNOConfig(modes=4, width=6)).eval()
    physical = ConditionalFNO(FNOConfig(modes=6, width=6)).eval()
    for net, n, replaced in ((latent, 16, 8), (physical, 64, 0)):
        x, c, t = torch.randn(2, 1, n, n), torch.randn(2, 1, n, n), torch.rand(2)
        grids = spectral_grids(net, lambda: net(t, x, c))
        assert set(grids.values()) == {n} and len(grids) == 8
        fast = inference_form(net, grids)
        assert sum(isinstance(m, MatrixSpectralConv2d) for m in fast.modules()) == replaced
        assert len({id(m.forward_dft_t) for m in fast.modules() if isinstance(m, MatrixSpectralConv2d)}) <= 1
        assert not any(isinstance(m, MatrixSpectralConv2d) for m in inference_form(net, grids, matrix_dft=False).modules())
        assert sum(isinstance(m, SpectralConv2d) for m in net.modules()) == 8  # the original is untouched
        with torch.no_grad():
            want, got = net(t, x, c), fast(t, x, c)
        assert float((got - want).abs().max()) <= 1e-5 * float(want.abs().max())


def test_spectral_grids_refuses_a_layer_seen_on_two_grids():
    layer = SpectralConv2d(1, 1, 2)

    def two_calls() -> None:
        layer(torch.randn(1, 1, 8, 8))
        layer(torch.randn(1, 1, 12, 12))

    with pytest.raises(ValueError, match="several grids"):
        spectral_grids(layer, two_calls)


def test_exported_artifact_runs_the_matrix_form_frozen(tmp_path):
    m = tiny("latent-fm", reg="mp")
    res = export_model(m, NORM, DATASET, tmp_path / "c.pt", run_id="r1")
    n_spectral = sum(isinstance(x, SpectralConv2d) for x in m.modules())
    assert n_spectral > 0 and res.metadata["matrix_dft_layers"] == n_spectral  # all small at this size
    assert res.metadata["precomputed_time_paths"] == 1  # the one-step FM sampler
    frozen = load_artifact(res.path).module
    assert list(frozen.parameters()) == []  # weights are constants of the frozen graph
    saved = load_artifact(res.path, freeze=False).module
    keys = saved.state_dict().keys()
    assert any(k.endswith("spectral.forward_dft_t") for k in keys)
    assert any(k.endswith("spectral.weight_real") for k in keys)  # the trained weights, under their names
    eager = ClosureArtifact(m, NORM).eval()
    omega = 0.1 + 2.0 * torch.randn(3, 16, 16)
    noise = torch.randn(eager.noise_shape(3))
    with torch.no_grad():
        want = eager.sample(omega, noise)
        for module in (frozen, saved):
            assert float((module.sample(omega, noise) - want).abs().max()) <= 1e-5 * NORM.closure_std


@pytest.mark.parametrize("n_steps", [1, 3])
def test_time_grid_sampler_equals_the_flow_euler_sampler(n_steps):
    torch.manual_seed(1)
    net = ConditionalFNO(FNOConfig(modes=2, width=6)).eval()
    sampler = FlowEuler(net, n_steps).eval()
    fast = TimeGridFlowEuler(sampler).eval()
    x0, c = torch.randn(3, 1, 8, 8), torch.randn(3, 1, 16, 16)
    with torch.no_grad():
        want, got = sampler(x0, c), fast(x0, c)
        (states_want, straight_want), (states_got, straight_got) = sampler.trajectory(x0, c), fast.trajectory(x0, c)
    assert float((got - want).abs().max()) <= 1e-5 * float(want.abs().max())
    assert states_got.shape == states_want.shape == (n_steps + 1, 3, 1, 8, 8)
    assert float((straight_got - straight_want).abs().max()) <= 1e-4
    assert fast.nfe == sampler.nfe == n_steps and fast.name == sampler.name
    scripted = torch.jit.script(fast)
    with torch.no_grad():
        assert float((scripted(x0, c) - want).abs().max()) <= 1e-5 * float(want.abs().max())


def test_inference_form_swaps_only_one_time_flow_euler_samplers_once():
    one_time = FlowEuler(ConditionalFNO(FNOConfig(modes=2, width=4)), 2)
    jumps = MeanFlowJump(ConditionalFNO(FNOConfig(modes=2, width=4, two_times=True)), 1)
    holder = torch.nn.ModuleDict({"a": one_time, "b": jumps})
    holder.alias = one_time  # the same sampler under two names, as ClosureArtifact holds it
    fast = inference_form(holder, {})
    assert isinstance(fast["a"], TimeGridFlowEuler) and fast.alias is fast["a"]
    assert type(fast["b"]) is MeanFlowJump
    assert type(inference_form(holder, {}, time_grid=False)["a"]) is FlowEuler  # the ablation switch
    assert type(holder["a"]) is FlowEuler  # the original is untouched
    with pytest.raises(ValueError, match="one-time"):
        TimeGridFlowEuler(jumps)


def test_the_eager_network_can_be_rebuilt_from_the_inference_form():
    torch.manual_seed(2)
    net = ConditionalFNO(FNOConfig(modes=2, width=4)).eval()
    holder = torch.nn.ModuleDict({"s": FlowEuler(net, 1)})
    fast = inference_form(holder, spectral_grids(holder, lambda: net(torch.zeros(1), torch.randn(1, 1, 8, 8),
                                                                    torch.randn(1, 1, 8, 8))))
    assert isinstance(fast["s"], TimeGridFlowEuler)
    fresh = ConditionalFNO(FNOConfig(modes=2, width=4)).eval()
    missing, _ = fresh.load_state_dict(fast["s"].network.state_dict(), strict=False)
    assert missing == []
    x, c, t = torch.randn(2, 1, 8, 8), torch.randn(2, 1, 8, 8), torch.zeros(2)
    with torch.no_grad():
        assert torch.equal(fresh(t, x, c), net(t, x, c))
