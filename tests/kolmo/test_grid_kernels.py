"""Spectral operators and kernels: exact derivatives, exact Poisson inversion, Numba == NumPy."""

import numpy as np
import pytest

from kolmo import kernels
from kolmo.errors import ConfigurationError
from kolmo.grid import Grid


def band_limited(grid: Grid, rng: np.random.Generator, frac: float = 1 / 3, batch: int = 2) -> np.ndarray:
    """Random spectral field with modes only where |n_x|, |n_y| < frac·N."""
    n = grid.n
    ny = np.abs(np.fft.fftfreq(n, 1 / n))[:, None]
    nx = np.fft.rfftfreq(n, 1 / n)[None, :]
    keep = (ny < frac * n) & (nx < frac * n)
    f = np.fft.rfft2(rng.standard_normal((batch, n, n))) * keep
    f[:, 0, 0] = 0
    return f


@pytest.mark.parametrize("L", [1.0, 2 * np.pi])
def test_spectral_derivatives_exact_for_trig_polynomial(L: float) -> None:
    g = Grid(32, L)
    x, y = g.mesh()
    a, b = 2 * np.pi / L * 3, 2 * np.pi / L * 5
    f = np.sin(a * x) * np.cos(b * y)
    fh = np.fft.rfft2(f)
    dfdx = np.fft.irfft2(1j * g.kx_odd[None, :] * fh, s=(32, 32))
    dfdy = np.fft.irfft2(1j * g.ky_odd[:, None] * fh, s=(32, 32))
    np.testing.assert_allclose(dfdx, a * np.cos(a * x) * np.cos(b * y), atol=1e-12 * a)
    np.testing.assert_allclose(dfdy, -b * np.sin(a * x) * np.sin(b * y), atol=1e-12 * b)


def test_poisson_inversion_exact() -> None:
    """−∇²ψ = ω with ψ̂ = ω̂/|k|²: applying −∇² to ψ recovers ω (mean-free) to round-off."""
    g = Grid(48, 2.0)
    wh = band_limited(g, np.random.default_rng(0), frac=0.5)[0]
    psi_h = wh * g.inv_k2
    np.testing.assert_allclose(g.k2 * psi_h, wh, atol=1e-12 * np.abs(wh).max())
    x, y = g.mesh()
    k = 2 * np.pi / g.L
    psi = np.sin(k * x + 2 * k * y)
    omega = 5 * k**2 * psi
    np.testing.assert_allclose(np.fft.irfft2(np.fft.rfft2(omega) * g.inv_k2, s=(48, 48)), psi, atol=1e-13)


def test_velocity_is_divergence_free_and_has_the_right_curl() -> None:
    g = Grid(32)
    wh = band_limited(g, np.random.default_rng(1))
    uh, vh = kernels.velocity_hat(wh, g.kx_odd, g.ky_odd, g.inv_k2)
    div = 1j * g.kx_odd * uh + 1j * g.ky_odd[:, None] * vh
    curl = 1j * g.kx_odd * vh - 1j * g.ky_odd[:, None] * uh  # ∂x v − ∂y u
    assert np.abs(div).max() < 1e-12 * np.abs(wh).max()
    np.testing.assert_allclose(curl, wh, atol=1e-12 * np.abs(wh).max())


def test_numba_velocity_kernel_matches_numpy_reference() -> None:
    g = Grid(32)
    wh = band_limited(g, np.random.default_rng(2), frac=0.5, batch=3)
    out = np.empty((6,) + wh.shape[1:], dtype=complex)
    kernels.velocity_hat_numba(wh, g.kx_odd, g.ky_odd, g.inv_k2, 0.25, out)
    ref = kernels.velocity_hat(wh, g.kx_odd, g.ky_odd, g.inv_k2, 0.25).reshape(out.shape)
    np.testing.assert_allclose(out, ref, rtol=1e-14, atol=1e-14 * np.abs(ref).max())


def test_numba_products_match_numpy_reference() -> None:
    rng = np.random.default_rng(3)
    u, v = rng.standard_normal((2, 2, 16, 16))
    fields = np.concatenate([u, v])
    speed = np.zeros(2)
    kernels.basdevant_products_numba(fields, speed)
    p, q, s = kernels.basdevant_products(u, v)
    np.testing.assert_allclose(fields[:2], p, rtol=1e-14)
    np.testing.assert_allclose(fields[2:], q, rtol=1e-13, atol=1e-14)
    np.testing.assert_allclose(speed, s)


def test_basdevant_advection_equals_advective_form_on_dealiased_modes() -> None:
    from kolmo.equation import VorticityEquation

    g = Grid(64)
    wh = band_limited(g, np.random.default_rng(4), batch=2)
    eq = VorticityEquation(g, nu=0.0, members=2)
    ref = kernels.advection_hat_reference(wh, g.kx_odd, g.ky_odd, g.inv_k2, g.mask)
    np.testing.assert_allclose(eq.advection_hat(wh), ref, atol=1e-12 * np.abs(ref).max())


def test_fftw_and_numpy_backends_agree() -> None:
    from kolmo.equation import VorticityEquation

    g = Grid(32)
    wh = band_limited(g, np.random.default_rng(5), frac=0.5, batch=2)
    f = np.fft.rfft2(np.random.default_rng(6).standard_normal((32, 32)))
    f = np.fft.irfft2(f, s=(32, 32))
    outs = []
    for backend in ("fftw", "numpy"):
        eq = VorticityEquation(g, nu=1e-3, mu=0.1, forcing=f, members=2, backend=backend)
        out = np.empty_like(wh)
        eq.explicit_terms(wh, out)
        outs.append(out)
    np.testing.assert_allclose(outs[0], outs[1], atol=1e-11 * np.abs(outs[1]).max())


@pytest.mark.parametrize("backend", ["fftw", "numpy"])
def test_complex_fft2_is_numpys_fft2_unnormalised_and_carries_two_real_fields(backend: str) -> None:
    from kolmo.fft import ComplexFFT2

    rng = np.random.default_rng(7)
    a, b = rng.standard_normal((2, 3, 16, 16))
    t = ComplexFFT2(16, 3, backend=backend, planner="estimate")
    t.field[...] = a + 1j * b
    t.forward()
    np.testing.assert_allclose(t.spec, np.fft.fft2(a + 1j * b), atol=1e-12 * 256)
    np.testing.assert_allclose(t.field, a + 1j * b, atol=0)  # forward preserves its input
    # the two real fields' rfft2 from the one complex spectrum: F_a(k) = (F(k) + conj F(-k)) / 2
    mirror = np.conj(np.roll(t.spec[:, ::-1, ::-1], 1, axis=(-2, -1)))
    np.testing.assert_allclose(((t.spec + mirror) / 2)[..., :9], np.fft.rfft2(a), atol=1e-12 * 256)
    t.inverse()
    np.testing.assert_allclose(t.field, 256 * (a + 1j * b), atol=1e-12 * 256)
    with pytest.raises(ConfigurationError, match="FFT batch"):
        ComplexFFT2(16, 0)


def test_grid_rejects_bad_sizes() -> None:
    with pytest.raises(ConfigurationError, match="even integer"):
        Grid(33)
    with pytest.raises(ConfigurationError, match="dealias"):
        Grid(32, dealias="3/2")
    with pytest.raises(ConfigurationError, match="positive"):
        Grid(32, L=-1.0)


@pytest.mark.parametrize("with_tendency", [False, True])
def test_fused_stage_kernels_match_numpy_reference(with_tendency: bool) -> None:
    """The stage update (cn_stage_advective_numba) and the stage fused with the next inversion
    (cn_stage_invert_numba) equal the NumPy stage reference followed by the NumPy velocities."""
    from kolmo.equation import VorticityEquation
    from kolmo.forcing import kolmogorov_forcing
    from kolmo.stepping import make_stepper

    g, b = Grid(32), 3
    rng = np.random.default_rng(7)
    eq = VorticityEquation(g, 1e-2, 0.1, kolmogorov_forcing(g), members=b)
    (eg, ig), gdt, zdt = make_stepper("cn-rk3", eq, 0.01)._gains[1], 0.01 * 5 / 12, -0.01 * 17 / 60
    u0 = band_limited(g, rng, frac=0.5, batch=b)
    pq0 = np.fft.rfft2(rng.standard_normal((2 * b, 32, 32)))
    prev0 = np.fft.rfft2(rng.standard_normal((b, 32, 32)))
    tend = np.fft.rfft2(rng.standard_normal((b, 32, 32))) * 0.1 if with_tendency else None
    ref_u, ref_nl = kernels.cn_stage_advective(u0, pq0, eq.coef_a, eq.coef_c, eq.forcing_hat, tend, prev0, eg, ig, gdt, zdt)
    ref_vel = kernels.velocity_hat(ref_u, g.kx_odd, g.ky_odd, g.inv_k2, 0.25).reshape(pq0.shape)
    t = tend if with_tendency else prev0  # an unused placeholder when there is no tendency
    scale = np.abs(ref_u).max()

    u, pq, prev = u0.copy(), pq0.copy(), prev0.copy()
    kernels.cn_stage_advective_numba(u, pq, eq.coef_a, eq.coef_c, eq.forcing_hat, t, prev, eg, ig, gdt, zdt, with_tendency)
    np.testing.assert_allclose(u, ref_u, rtol=0, atol=1e-14 * scale)
    np.testing.assert_allclose(prev, ref_nl, rtol=0, atol=1e-14 * np.abs(ref_nl).max())

    u, pq, prev = u0.copy(), pq0.copy(), prev0.copy()
    kernels.cn_stage_invert_numba(u, pq, eq.coef_a, eq.coef_c, eq.forcing_hat, t, prev, eg, ig, gdt, zdt,
                                  with_tendency, g.kx_odd, g.ky_odd, g.inv_k2, 0.25)
    np.testing.assert_allclose(u, ref_u, rtol=0, atol=1e-14 * scale)
    np.testing.assert_allclose(prev, ref_nl, rtol=0, atol=1e-14 * np.abs(ref_nl).max())
    np.testing.assert_allclose(pq, ref_vel, rtol=0, atol=1e-14 * np.abs(ref_vel).max())
