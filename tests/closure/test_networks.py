"""Tests of closure.networks: shapes, TorchScript export, symmetry, and the cost model."""

import math

import pytest
import torch

from closure.networks import (
    ConditionalFNO,
    ConditionalMLP,
    FNOConfig,
    GaussianFourierEmbedding,
    SpectralConv2d,
    count_flops,
    count_parameters,
    fft_flops,
)



def test_physical_fno_maps_64_squared_state_to_same_shape():
    net = ConditionalFNO(FNOConfig.physical())
    x, c, t = torch.randn(2, 1, 64, 64), torch.randn(2, 1, 64, 64), torch.rand(2)
    assert net(t, x, c).shape == (2, 1, 64, 64)


def test_latent_fno_accepts_a_finer_condition_by_block_averaging_it():
    net = ConditionalFNO(FNOConfig.latent())
    z, omega, t = torch.randn(3, 1, 16, 16), torch.randn(3, 1, 64, 64), torch.rand(3)
    out = net(t, z, omega)
    assert out.shape == (3, 1, 16, 16)
    pooled = torch.nn.functional.avg_pool2d(omega, 4)
    torch.testing.assert_close(out, net(t, z, pooled))


def test_fno_is_scriptable_and_scripted_output_equals_eager():
    net = ConditionalFNO(FNOConfig.latent(channels=2, cond_channels=3)).eval()
    scripted = torch.jit.script(net)
    x, c, t = torch.randn(2, 2, 16, 16), torch.randn(2, 3, 16, 16), torch.rand(2)
    with torch.no_grad():
        torch.testing.assert_close(scripted(t, x, c), net(t, x, c))


def test_fno_is_equivariant_under_periodic_grid_shifts():
    """The closure H(ω) commutes with translations of the periodic square; so does the operator."""
    net = ConditionalFNO(FNOConfig.latent()).double()
    x, c, t = torch.randn(2, 1, 16, 16, dtype=torch.float64), torch.randn(2, 1, 16, 16, dtype=torch.float64), torch.rand(2, dtype=torch.float64)
    shift = (3, -5)
    with torch.no_grad():
        shifted = net(t, torch.roll(x, shift, (-2, -1)), torch.roll(c, shift, (-2, -1)))
        torch.testing.assert_close(shifted, torch.roll(net(t, x, c), shift, (-2, -1)))


def test_scalar_time_is_broadcast_over_the_batch():
    net = ConditionalFNO(FNOConfig.latent())
    x, c = torch.randn(2, 1, 16, 16), torch.randn(2, 1, 16, 16)
    torch.testing.assert_close(net(torch.tensor(0.3), x, c), net(torch.full((2,), 0.3), x, c))


def test_closed_form_flops_equal_the_shape_count():
    for config, n in ((FNOConfig.physical(), 64), (FNOConfig.latent(), 16)):
        net = ConditionalFNO(config)
        x, c, t = torch.randn(1, 1, n, n), torch.randn(1, 1, n, n), torch.rand(1)
        assert count_flops(net, t, x, c) == pytest.approx(net.flops_per_sample(n), rel=1e-12)


def test_physical_fno_cost_is_a_few_hundred_megaflops():
    net = ConditionalFNO(FNOConfig.physical())
    flops = net.flops_per_sample(64)
    assert 2e8 < flops < 4e8
    assert 1.5e6 < count_parameters(net) < 2.5e6


def test_fft_flops_follow_five_n_log_n():
    assert fft_flops(1024, real=False) == pytest.approx(5 * 1024 * 10)
    assert fft_flops(64 * 64, real=True) == pytest.approx(2.5 * 4096 * 12)
    with pytest.raises(ValueError, match="n_points"):
        fft_flops(0)


def test_spectral_conv_keeps_only_the_low_modes():
    layer = SpectralConv2d(1, 1, modes=2).double()
    n = 16
    y, x = torch.meshgrid(torch.arange(n), torch.arange(n), indexing="ij")
    high = torch.cos(2 * math.pi * 5 * x.double() / n)[None, None]  # wavenumber 5 >= modes
    torch.testing.assert_close(layer(high), torch.zeros_like(high), atol=1e-12, rtol=0)


def test_spectral_conv_rejects_a_grid_too_coarse_for_its_modes():
    layer = SpectralConv2d(1, 1, modes=6)
    with pytest.raises(ValueError, match="at least 12x12"):
        layer(torch.randn(1, 1, 8, 8))


def test_gaussian_fourier_embedding_is_sin_cos_of_fixed_frequencies():
    emb = GaussianFourierEmbedding(8, scale=2.0)
    t = torch.tensor([0.0, 0.25])
    e = emb(t)
    assert e.shape == (2, 8)
    torch.testing.assert_close(e[0], torch.cat([torch.zeros(4), torch.ones(4)]))
    assert emb.frequencies.requires_grad is False
    with pytest.raises(ValueError, match="even"):
        GaussianFourierEmbedding(7)


def test_fno_rejects_wrong_channels_with_a_clear_message():
    net = ConditionalFNO(FNOConfig.latent())
    with pytest.raises(ValueError, match=r"x_t must have shape \(B, 1, n, n\)"):
        net(torch.rand(2), torch.randn(2, 2, 16, 16), torch.randn(2, 1, 16, 16))
    with pytest.raises(ValueError, match="not an integer multiple"):
        net(torch.rand(2), torch.randn(2, 1, 16, 16), torch.randn(2, 1, 24, 24))


def test_mlp_has_the_common_interface_and_is_scriptable():
    net = ConditionalMLP((1, 2, 2), (1, 2, 2), hidden=16, depth=2)
    scripted = torch.jit.script(net)
    x, c, t = torch.randn(5, 1, 2, 2), torch.randn(5, 1, 2, 2), torch.rand(5)
    torch.testing.assert_close(scripted(t, x, c), net(t, x, c))
    assert net(t, x, c).shape == x.shape
