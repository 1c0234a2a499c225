"""Forcing registry, Q-Wiener noise statistics and initial-condition spectra."""

import numpy as np
import pytest

from kolmo.errors import ConfigurationError
from kolmo.forcing import QWienerForcing, make_forcing, member_generators
from kolmo.grid import Grid
from kolmo.initial import band_limited_field, gaussian_random_field


def test_unknown_forcing_lists_valid_names() -> None:
    with pytest.raises(ConfigurationError, match="dong2026, kolmogorov, none"):
        make_forcing("taylor-green", Grid(16))


def test_dong2026_forcing_is_the_diagonal_sin_plus_cos() -> None:
    g = Grid(16, 1.0)
    x, y = g.mesh()
    f = make_forcing("dong2026", g, wavenumber=1.0, amplitude=0.1)
    np.testing.assert_allclose(f, 0.1 * (np.sin(2 * np.pi * (x + y)) + np.cos(2 * np.pi * (x + y))))


def test_qwiener_noise_has_the_reference_spectral_variance() -> None:
    """E|σ_W ξ̂_k|² = σ_W² κ b(k)² for every drawn mode, b = exp(−α|k|²/2) N²/(L√Δt); Hermitian; no mean."""
    g = Grid(32, 1.0)
    dt, sigma, alpha, kappa = 1e-3, 5e-5, 0.005, 10
    noise = QWienerForcing(g, dt, sigma, alpha, kappa, member_generators(7, 4))
    out = np.zeros((4, 32, 17), dtype=complex)
    acc = np.zeros((32, 17))
    draws = 500
    for _ in range(draws):
        noise.sample(out)
        acc += (np.abs(out) ** 2).mean(0)
    var = acc / draws
    b2 = (np.exp(-alpha * g.k2 / 2) * 32**2 / (g.L * np.sqrt(dt))) ** 2 * sigma**2 * kappa
    for (j, i) in [(1, 0), (0, 1), (1, 1), (-2, 3), (3, 2)]:
        assert abs(var[j, i] / b2[j, i] - 1) < 0.1, (j, i, var[j, i] / b2[j, i])
    assert np.all(out[:, 0, 0] == 0)
    field = np.fft.irfft2(out, s=(32, 32))
    np.testing.assert_allclose(np.fft.rfft2(field), out, atol=1e-9 * np.abs(out).max())  # Hermitian


def test_noise_is_reproducible_and_restartable() -> None:
    g = Grid(16, 1.0)
    a = QWienerForcing(g, 1e-3, 5e-5, 0.005, 10, member_generators(3, 2))
    out1, out2 = np.zeros((2, 2, 16, 9), dtype=complex)
    a.sample(out1)
    state = a.get_state()
    a.sample(out1)
    b = QWienerForcing(g, 1e-3, 5e-5, 0.005, 10, member_generators(99, 2))
    b.set_state(state)
    b.sample(out2)
    np.testing.assert_array_equal(out1, out2)


def test_grf_has_the_reference_spectrum() -> None:
    """Mean |ω̂_k|² over samples equals A_k² = (√2 τ^{α−1} N² (|k|²+τ²)^{−α/2})²."""
    g = Grid(32, 1.0)
    gens = member_generators(0, 400, stream="initial")
    power = np.mean([np.abs(np.fft.rfft2(gaussian_random_field(g, r))) ** 2 for r in gens], axis=0)
    amp2 = (np.sqrt(2) * 7**1.5 * 32**2 * (g.k2 + 49) ** -1.25) ** 2
    for (j, i) in [(1, 0), (0, 2), (2, 3)]:
        assert abs(power[j, i] / amp2[j, i] - 1) < 0.2
    assert power[0, 0] < 1e-20


def test_band_limited_field_has_requested_rms_velocity_and_band() -> None:
    g = Grid(32)
    w = band_limited_field(g, np.random.default_rng(0), 2.0, 4.0, rms_velocity=1.5)
    wh = np.fft.rfft2(w)
    nmag = np.sqrt(g.k2)
    assert np.abs(wh[(nmag < 2) | (nmag > 4)]).max() < 1e-10
    energy = 0.5 * np.sum(g.rfft_weights * np.abs(wh) ** 2 * g.inv_k2) / 32**4
    assert np.isclose(np.sqrt(2 * energy), 1.5)
