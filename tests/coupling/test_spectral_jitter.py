"""Jitter drawn in rfft2 space has the law of the rfft2 of physical white noise (coupling.spectral_jitter)."""

from __future__ import annotations

import numpy as np

from coupling.spectral_jitter import add_spectral_white_noise_numba, noise_draw_shape, spectral_white_noise_reference

K, N, S = 4000, 8, 0.3  # samples, grid, std per point
SELF_CONJUGATE = [(0, 0), (N // 2, 0), (0, N // 2), (N // 2, N // 2)]  # (ky, kx) in the rfft2 layout


def spectral_samples(seed: int = 0) -> np.ndarray:
    z = np.random.default_rng(seed).standard_normal(noise_draw_shape(K, N)).astype(np.float32)
    out = add_spectral_white_noise_numba(np.zeros((K, N, N // 2 + 1), dtype=np.complex128), z, S)
    np.testing.assert_allclose(out, spectral_white_noise_reference(z, S), rtol=1e-12, atol=1e-12)
    return out


def test_spectral_jitter_has_the_per_mode_variance_and_symmetry_of_physical_white_noise() -> None:
    """Per mode E|η̂|² = s²N² (the physical definition: rfft2 of N(0, s²) per point), real and imaginary
    parts s²N²/2 each and uncorrelated, self-conjugate modes real; each checked to 5 sampling σ."""
    eta_hat = spectral_samples()
    physical = np.fft.rfft2(S * np.random.default_rng(1).standard_normal((K, N, N)))
    expected = S**2 * N**2
    for sample in (eta_hat, physical):  # the same statistics for both: the law of the physical definition
        power = (np.abs(sample) ** 2).mean(axis=0) / expected
        real_mode = np.zeros(power.shape, dtype=bool)
        for ky, kx in SELF_CONJUGATE:
            real_mode[ky, kx] = True
        tol = 5 * np.where(real_mode, np.sqrt(2.0), 1.0) / np.sqrt(K)  # std of the mean of χ²₁ or Exp(1)
        assert np.all(np.abs(power - 1) < tol), np.abs(power - 1).max()
        re2 = (sample.real ** 2).mean(axis=0) / expected
        im2 = (sample.imag ** 2).mean(axis=0) / expected
        cross = (sample.real * sample.imag).mean(axis=0) / expected
        general = ~real_mode
        assert np.all(np.abs(re2[general] - 0.5) < 5 * np.sqrt(0.5) / np.sqrt(K))
        assert np.all(np.abs(im2[general] - 0.5) < 5 * np.sqrt(0.5) / np.sqrt(K))
        assert np.all(np.abs(cross[general]) < 5 * 0.5 / np.sqrt(K))
        assert np.abs(sample.imag[:, real_mode]).max() < 1e-9 * np.sqrt(expected)
    # Hermitian on the kx = 0 and Nyquist columns: the spectrum of a real field (round trip exact)
    np.testing.assert_array_equal(eta_hat[:, N - 1:N // 2:-1, [0, -1]], np.conj(eta_hat[:, 1:N // 2, [0, -1]]))
    field = np.fft.irfft2(eta_hat, s=(N, N))
    np.testing.assert_allclose(np.fft.rfft2(field), eta_hat, atol=1e-12 * np.sqrt(expected))
    # back in physical space: variance s² per point, neighbours uncorrelated
    assert abs(field.var() / S**2 - 1) < 5 * np.sqrt(2.0 / field.size)
    lag = (field * np.roll(field, 1, axis=-1)).mean() / S**2
    assert abs(lag) < 5 / np.sqrt(field.size)


def test_spectral_jitter_adds_in_place_and_is_linear_in_the_std() -> None:
    held = np.full((2, N, N // 2 + 1), 1.0 + 2.0j)
    z = np.random.default_rng(3).standard_normal(noise_draw_shape(2, N))
    out = add_spectral_white_noise_numba(held, z, 2 * S)
    assert out is held
    np.testing.assert_allclose(held - (1.0 + 2.0j), 2 * spectral_white_noise_reference(z, S), rtol=1e-12)
