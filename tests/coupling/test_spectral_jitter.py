"""Jitter drawn in rfft2 space has the law of the rfft2 of physical white noise (coupling.spectral_jitter); the
one-pass jitter step; and why every mode is drawn (the solver keeps every mode of the closure term)."""

from __future__ import annotations

import numpy as np

from coupling.normal_stream import NormalStream
from coupling.spectral_jitter import (add_spectral_white_noise_numba, jitter_step_numba, noise_draw_shape,
                                      spectral_white_noise_reference)
from kolmo.diagnostics import closure_injection
from kolmo.grid import Grid
from kolmo.simulation import Simulation
from tests.coupling.conftest import reduced_config

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


def test_a_jitter_step_adds_the_streams_normals_and_gives_the_solvers_injection_diagnostics_to_the_bit() -> None:
    """jitter_step_numba (one pass: draws, addition, injection sums) = the stream's normals added by
    add_spectral_white_noise_numba, and ⟨ψH⟩, ⟨ωH⟩ equal to kolmo.diagnostics.closure_injection bit for bit."""
    grid = Grid(N, 2 * np.pi)
    rng = np.random.default_rng(5)
    held0 = rng.standard_normal((3, N, N // 2 + 1)) + 1j * rng.standard_normal((3, N, N // 2 + 1))
    omega_hat = rng.standard_normal(held0.shape) + 1j * rng.standard_normal(held0.shape)
    stream, twin = NormalStream(2, "jitter"), NormalStream(2, "jitter")
    z = np.empty(noise_draw_shape(3, N))
    held, injection = held0.copy(), np.zeros((2, 3))
    state, raw, rejected = stream.kernel_args(z.size)
    jitter_step_numba(state, raw, rejected, z, held, S, omega_hat, grid.inv_k2, 1.0 / N**4, injection, True)
    reference = add_spectral_white_noise_numba(held0.copy(), twin.fill(np.empty(noise_draw_shape(3, N))), S)
    np.testing.assert_allclose(held, reference, rtol=1e-14, atol=1e-14 * S * N)
    np.testing.assert_array_equal(injection, closure_injection(grid, omega_hat, held))
    np.testing.assert_array_equal(stream.state, twin.state)  # the same numbers drawn


def test_the_solver_adds_every_mode_of_the_closure_term_so_no_jitter_mode_can_be_left_undrawn() -> None:
    """The 2/3 mask acts on the advection only: a closure term made of one mode outside it (|k_x| ≥ N/3)
    moves that mode of ω̂ by Δt·Ĥ (cn-euler, up to its viscous factor ≈ 1) and no other, so the jitter
    must draw every mode of the rfft2 half-plane."""
    cfg = reduced_config(N, members=1, t_end=1e-3)
    outside = np.zeros((1, N, N // 2 + 1), dtype=complex)
    outside[0, 1, 3] = 1.0  # (k_y, k_x) = (1, 3), 3 ≥ N/3: outside the square 2/3 mask
    h = np.fft.irfft2(outside, s=(N, N))
    zero = Simulation(cfg, closure=lambda state: np.zeros((1, N, N)), omega0=np.zeros((1, N, N)), planner="estimate")
    one = Simulation(cfg, closure=lambda state: h, omega0=np.zeros((1, N, N)), planner="estimate")
    assert not zero.grid.mask[1, 3]
    zero.advance()
    one.advance()
    change = one.omega_hat - zero.omega_hat
    assert abs(change[0, 1, 3] / cfg.dt - 1) < 1e-3
    np.testing.assert_allclose(np.delete(change.ravel(), 1 * (N // 2 + 1) + 3), 0.0, atol=1e-15)


def test_the_injection_sums_are_the_sequential_sums_over_rows_then_columns_member_by_member() -> None:
    """closure_injection (members interleaved in the compiled loop) gives the bits of the plain sequential
    sum of each member's terms in row-major order (the order of every earlier version)."""
    grid = Grid(N, 2 * np.pi)
    rng = np.random.default_rng(6)
    omega_hat = rng.standard_normal((3, N, N // 2 + 1)) + 1j * rng.standard_normal((3, N, N // 2 + 1))
    h_hat = rng.standard_normal(omega_hat.shape) + 1j * rng.standard_normal(omega_hat.shape)
    expected = np.zeros((2, 3))
    m = N // 2 + 1
    for b in range(3):
        e = z = 0.0
        for j in range(N):
            for i in range(m):
                w = 1.0 if i in (0, m - 1) else 2.0
                a, h = complex(omega_hat[b, j, i]), complex(h_hat[b, j, i])
                p = w * (a.real * h.real + a.imag * h.imag)
                e += p * float(grid.inv_k2[j, i])
                z += p
        expected[:, b] = e * (1.0 / float(N) ** 4), z * (1.0 / float(N) ** 4)
    np.testing.assert_array_equal(closure_injection(grid, omega_hat, h_hat), expected)
