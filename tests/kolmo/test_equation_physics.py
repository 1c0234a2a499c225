"""Physics of the vorticity equation: conservation, exact decay, the laminar fixed point."""

import numpy as np
import pytest

from kolmo import diagnostics
from kolmo.equation import VorticityEquation
from kolmo.forcing import kolmogorov_forcing
from kolmo.grid import Grid
from kolmo.stepping import make_stepper
from tests.kolmo.test_grid_kernels import band_limited


@pytest.mark.parametrize("n,L", [(32, 2 * np.pi), (64, 1.0)])
def test_dealiased_advection_conserves_energy_and_enstrophy(n: int, L: float) -> None:
    """Inviscid, unforced: dE/dt = <ψ N> = 0 and dZ/dt = <ω N> = 0 to round-off (2/3-band-limited ω)."""
    g = Grid(n, L)
    wh = band_limited(g, np.random.default_rng(10), batch=3)
    eq = VorticityEquation(g, nu=0.0, mu=0.0, members=3)
    rhs = np.empty_like(wh)
    eq.explicit_terms(wh, rhs)
    scale_e = np.sqrt(diagnostics.inner_product(g, wh * g.inv_k2, wh * g.inv_k2 * g.k2)
                      * diagnostics.inner_product(g, rhs, rhs))
    scale_z = np.sqrt(diagnostics.inner_product(g, wh, wh) * diagnostics.inner_product(g, rhs, rhs))
    de = diagnostics.inner_product(g, wh * g.inv_k2, rhs)
    dz = diagnostics.inner_product(g, wh, rhs)
    assert np.all(np.abs(de) < 1e-13 * scale_e)
    assert np.all(np.abs(dz) < 1e-13 * scale_z)


def test_inviscid_run_conserves_energy_and_enstrophy_to_time_error() -> None:
    """Integrated with cn-rk3 for 50 small steps, E and Z drift only at the scheme's O(dt³) per unit time."""
    g = Grid(32)
    wh = band_limited(g, np.random.default_rng(11), frac=0.25, batch=1)
    eq = VorticityEquation(g, nu=0.0, mu=0.0, members=1)
    st = make_stepper("cn-rk3", eq, 1e-4)
    e0, z0, _ = diagnostics.spectral_moments(g, wh)[0]
    for _ in range(50):
        st(wh)
    e1, z1, _ = diagnostics.spectral_moments(g, wh)[0]
    assert abs(e1 - e0) / e0 < 1e-8
    assert abs(z1 - z0) / z0 < 1e-6


@pytest.mark.parametrize("stepper,tol", [("cn-euler", 1e-6), ("cn-rk3", 1e-7), ("ars343", 1e-9)])
def test_single_fourier_mode_decays_at_viscous_plus_drag_rate(stepper: str, tol: float) -> None:
    """A single mode has u·∇ω = 0, so ω̂_k(t) = ω̂_k(0) exp(−(ν|k|² + μ)t) within the scheme's error."""
    g = Grid(32, 2 * np.pi)
    x, y = g.mesh()
    omega = np.cos(3 * x + 2 * y)[None]
    nu, mu, dt, steps = 1e-2, 0.1, 1e-3, 200
    eq = VorticityEquation(g, nu=nu, mu=mu, members=1)
    st = make_stepper(stepper, eq, dt)
    wh = np.fft.rfft2(omega)
    for _ in range(steps):
        st(wh)
    exact = np.exp(-(nu * 13 + mu) * dt * steps) * omega
    got = np.fft.irfft2(wh, s=(32, 32))
    assert np.abs(got - exact).max() < tol
    other = np.abs(wh).copy()
    other[0, 2, 3] = other[0, -2, 3] = 0
    assert other.max() < 1e-10 * np.abs(np.fft.rfft2(omega)).max()


@pytest.mark.parametrize("stepper", ["cn-euler", "cn-rk3", "ars343"])
def test_laminar_kolmogorov_flow_is_a_fixed_point(stepper: str) -> None:
    """ω = f/(ν k_f² + μ) with f = −A k_f cos(k_f y) is steady: u·∇ω = 0 for a shear flow."""
    g = Grid(32, 2 * np.pi)
    nu, mu = 1e-2, 0.1
    f = kolmogorov_forcing(g, 4.0, 1.0)
    lam = f / (nu * 16 + mu)
    eq = VorticityEquation(g, nu=nu, mu=mu, forcing=f, members=1)
    st = make_stepper(stepper, eq, 0.01)
    wh = np.fft.rfft2(lam[None])
    for _ in range(100):
        st(wh)
    np.testing.assert_allclose(np.fft.irfft2(wh, s=(32, 32))[0], lam, atol=1e-11 * np.abs(lam).max())


def test_diagnostics_match_physical_space_definitions() -> None:
    g = Grid(32, 2.0)
    wh = band_limited(g, np.random.default_rng(12), frac=0.5, batch=2)
    omega = np.fft.irfft2(wh, s=(32, 32))
    psi_h = wh * g.inv_k2
    u = np.fft.irfft2(1j * g.ky_odd[:, None] * psi_h, s=(32, 32))
    v = np.fft.irfft2(-1j * g.kx_odd * psi_h, s=(32, 32))
    wx = np.fft.irfft2(1j * g.kx_odd * wh, s=(32, 32))
    wy = np.fft.irfft2(1j * g.ky_odd[:, None] * wh, s=(32, 32))
    e, z, p = diagnostics.spectral_moments(g, wh).T
    np.testing.assert_allclose(e, 0.5 * np.mean(u**2 + v**2, axis=(1, 2)), rtol=1e-12)
    np.testing.assert_allclose(z, 0.5 * np.mean(omega**2, axis=(1, 2)), rtol=1e-12)
    np.testing.assert_allclose(p, 0.5 * np.mean(wx**2 + wy**2, axis=(1, 2)), rtol=1e-12)


def test_spectra_of_a_single_mode_and_their_sums() -> None:
    g = Grid(32, 2 * np.pi)
    x, y = g.mesh()
    omega = 2.0 * np.cos(3 * x + 4 * y)[None]  # |n| = 5
    e_k, z_k = diagnostics.spectra(g, np.fft.rfft2(omega))
    assert np.argmax(z_k[0]) == 5 and np.isclose(z_k[0, 5], 0.5 * 2.0**2 / 2)  # Z = <ω²>/2 = 1
    assert np.isclose(e_k[0, 5], z_k[0, 5] / 25)
    wh = band_limited(g, np.random.default_rng(13), frac=0.5, batch=2)
    e_k, z_k = diagnostics.spectra(g, wh)
    e, z, _ = diagnostics.spectral_moments(g, wh).T
    np.testing.assert_allclose(e_k.sum(1), e, rtol=1e-12)
    np.testing.assert_allclose(z_k.sum(1), z, rtol=1e-12)


def test_closure_injection_equals_inner_products() -> None:
    g = Grid(32, 2.0)
    rng = np.random.default_rng(14)
    wh = band_limited(g, rng, frac=0.5, batch=2)
    hh = np.fft.rfft2(rng.standard_normal((2, 32, 32)))
    inj = diagnostics.closure_injection(g, wh, hh)
    np.testing.assert_allclose(inj[0], diagnostics.inner_product(g, wh * g.inv_k2, hh), rtol=1e-12)
    np.testing.assert_allclose(inj[1], diagnostics.inner_product(g, wh, hh), rtol=1e-12)
