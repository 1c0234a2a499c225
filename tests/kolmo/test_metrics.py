"""Online-evaluation metrics against hand-computed cases."""

import math

import numpy as np
import pytest

from kolmo import metrics
from kolmo.errors import NonFiniteError, ShapeError


# ---------------------------------------------------------------------------------------------- errors
def test_relative_l2_error_of_a_scaled_field_is_the_scale_offset():
    rng = np.random.default_rng(0)
    y = rng.standard_normal((8, 8))
    x = np.stack([y, 1.5 * y, -y])
    np.testing.assert_allclose(metrics.relative_l2_error(x, y), [0.0, 0.5, 2.0], atol=1e-14)


def test_relative_l2_error_of_zero_reference_is_nan_and_shapes_are_checked():
    assert np.isnan(metrics.relative_l2_error(np.ones((2, 4, 4)), np.zeros((4, 4)))).all()
    with pytest.raises(ShapeError):
        metrics.relative_l2_error(np.ones((2, 4, 4)), np.ones((5, 5)))


def test_ensemble_mean_std_uses_unbiased_variance_and_zero_for_one_member():
    x = np.array([[1.0], [3.0]])
    mean, std = metrics.ensemble_mean_std(x)
    assert mean[0] == 2.0 and std[0] == pytest.approx(math.sqrt(2.0))
    mean, std = metrics.ensemble_mean_std(x[:1])
    assert mean[0] == 1.0 and std[0] == 0.0


# ---------------------------------------------------------------------------------------------- CRPS
def test_crps_of_one_member_is_the_absolute_error():
    x = np.array([[1.0, -2.0, 0.5]])
    y = np.array([0.0, 1.0, 0.5])
    np.testing.assert_allclose(metrics.crps_fair(x, y), [1.0, 3.0, 0.0])


def test_crps_of_a_two_member_ensemble_by_hand():
    # members 0 and 2, observation 1: mean|X-y| = 1, pair term = (|0-2|+|2-0|)/(2*2*1) = 1 -> 0
    assert metrics.crps_fair(np.array([0.0, 2.0]), np.array(1.0)) == pytest.approx(0.0)
    # members 0 and 2, observation 3: mean|X-y| = (3+1)/2 = 2, pair term 1 -> 1
    assert metrics.crps_fair(np.array([0.0, 2.0]), np.array(3.0)) == pytest.approx(1.0)


def test_crps_sorted_pair_sum_equals_the_double_sum():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((7, 5))
    y = rng.standard_normal(5)
    b = x.shape[0]
    direct = np.abs(x - y).mean(0) - np.abs(x[:, None] - x[None, :]).sum((0, 1)) / (2 * b * (b - 1))
    np.testing.assert_allclose(metrics.crps_fair(x, y), direct, atol=1e-13)


def test_fair_crps_of_a_gaussian_ensemble_matches_the_closed_form():
    # CRPS(N(0,1), y=0) = 2 phi(0) - 1/sqrt(pi) = (sqrt(2) - 1)/sqrt(pi); the fair estimator is unbiased
    rng = np.random.default_rng(2)
    x = rng.standard_normal((4, 200_000))
    got = metrics.crps_fair(x, np.zeros(200_000)).mean()
    assert got == pytest.approx((math.sqrt(2) - 1) / math.sqrt(math.pi), abs=5e-3)


# ---------------------------------------------------------------------------------------------- spread-skill
def test_spread_skill_of_a_perfect_ensemble_is_one():
    # truth and members exchangeable: all drawn from the same distribution at every point
    rng = np.random.default_rng(3)
    b, npts = 5, 400_000
    centre = rng.standard_normal(npts) * 3.0
    truth = centre + rng.standard_normal(npts)
    ens = centre + rng.standard_normal((b, npts))
    ss = metrics.spread_skill(ens, truth)
    assert ss.members == b
    assert ss.ratio == pytest.approx(1.0, abs=0.01)
    # without the (B+1)/B correction a 5-member ensemble would look under-dispersive by ~9 %
    assert ss.spread / ss.skill == pytest.approx(math.sqrt(b / (b + 1)), abs=0.01)


def test_spread_skill_of_an_overconfident_ensemble_is_below_one_and_undefined_for_one_member():
    rng = np.random.default_rng(4)
    truth = rng.standard_normal(10_000)
    ens = 0.3 * rng.standard_normal((4, 10_000))
    assert metrics.spread_skill(ens, truth).ratio < 0.5
    one = metrics.spread_skill(ens[:1], truth)
    assert math.isnan(one.ratio) and math.isnan(one.spread) and one.skill > 0


# ---------------------------------------------------------------------------------------------- W1
def test_w1_of_shifted_samples_is_the_shift():
    rng = np.random.default_rng(5)
    a = rng.standard_normal(1000)
    assert metrics.wasserstein1(a, a + 0.7) == pytest.approx(0.7)
    assert metrics.wasserstein1(a, a) == 0.0


def test_w1_with_unequal_sizes_by_hand_and_against_the_cdf_formula():
    # {0, 1} vs {0, 0.5, 1}: quantiles on (0,1/3]: 0 vs 0; (1/3,1/2]: 0 vs .5; (1/2,2/3]: 1 vs .5; (2/3,1]: 1 vs 1
    assert metrics.wasserstein1([0.0, 1.0], [0.0, 0.5, 1.0]) == pytest.approx(0.5 / 6 + 0.5 / 6)
    rng = np.random.default_rng(6)
    a, b = rng.standard_normal(37), rng.standard_normal(53) + 0.3
    grid = np.sort(np.concatenate([a, b]))
    fa = np.searchsorted(np.sort(a), grid[:-1], side="right") / a.size
    fb = np.searchsorted(np.sort(b), grid[:-1], side="right") / b.size
    cdf_formula = np.sum(np.abs(fa - fb) * np.diff(grid))
    assert metrics.wasserstein1(a, b) == pytest.approx(cdf_formula, rel=1e-12)
    # a sample repeated k times is the same distribution
    assert metrics.wasserstein1(a, np.repeat(a, 3)) == pytest.approx(0.0, abs=1e-15)


def test_w1_refuses_empty_and_non_finite_samples():
    with pytest.raises(ShapeError):
        metrics.wasserstein1([], [1.0])
    with pytest.raises(NonFiniteError):
        metrics.wasserstein1([np.nan, 1.0], [1.0])


# ---------------------------------------------------------------------------------------------- spectra
def test_spectra_of_a_single_mode_sit_in_its_shell_and_sum_to_the_domain_means():
    n, L, m = 32, 2 * np.pi, 3
    x = np.arange(n) * L / n
    amp = 2.0
    omega = amp * np.cos(m * x)[None, :].repeat(n, 0)  # ω = A cos(3x): Z = A²/4, E = Z/k²
    k, e, z = metrics.isotropic_spectra(omega, L)
    assert k[m] == pytest.approx(m * 2 * np.pi / L)
    np.testing.assert_allclose(z[0, m], amp**2 / 4)
    np.testing.assert_allclose(e[0, m], amp**2 / 4 / m**2)
    assert np.sum(z) == pytest.approx(z[0, m]) and np.sum(e) == pytest.approx(e[0, m])
    u, v = metrics.velocity(omega, L)  # ψ = A cos(3x)/9, u = ∂yψ = 0, v = -∂xψ = A sin(3x)/3
    np.testing.assert_allclose(u, 0.0, atol=1e-13)
    np.testing.assert_allclose(v, amp / m * np.sin(m * x)[None, :].repeat(n, 0), atol=1e-13)
    assert 0.5 * np.mean(u**2 + v**2) == pytest.approx(e[0, m])


def test_log_spectral_error_counts_decades_below_the_cutoff_only():
    k = np.arange(0, 9, dtype=float)
    ref = np.exp(-k)
    assert metrics.log_spectral_error(ref, ref, k, 5.0) == 0.0
    assert metrics.log_spectral_error(10 * ref, ref, k, 5.0) == pytest.approx(1.0)
    worse_above = ref.copy()
    worse_above[6:] *= 1e3  # beyond the cutoff: not scored
    assert metrics.log_spectral_error(worse_above, ref, k, 5.0) == 0.0
    assert metrics.spectral_cutoff(64, 2 * np.pi) == pytest.approx(64 / 3)


# ---------------------------------------------------------------------------------------------- horizon, similarity
def test_blowup_horizon_is_the_first_non_finite_or_too_large_time():
    t = np.array([0.0, 1.0, 2.0, 3.0])
    z = np.array([[1.0, 1.0, 1.0], [1.0, 50.0, 1.0], [np.nan, 1.0, 1.0], [np.inf, 1.0, 1.0]])
    h = metrics.blowup_horizon(t, z, threshold=10.0)
    np.testing.assert_array_equal(h.horizon, [2.0, 1.0, 3.0])
    np.testing.assert_array_equal(h.blew_up, [True, True, False])
    finite = np.ones_like(z, dtype=bool)
    finite[3, 2] = False
    assert metrics.blowup_horizon(t, np.ones_like(z), 10.0, finite).horizon[2] == 3.0


def test_similarity_score():
    assert metrics.similarity(0.0, 2.0) == 1.0
    assert metrics.similarity(2.0, 2.0) == 0.0
    assert metrics.similarity(4.0, 2.0) == -1.0
    assert metrics.similarity(0.0, 0.0) == 1.0
    assert math.isnan(metrics.similarity(1.0, 0.0))
    assert math.isnan(metrics.similarity(float("nan"), 1.0))


def test_metrics_module_imports_neither_torch_nor_matplotlib():
    import subprocess
    import sys

    code = "import sys, kolmo.metrics; print('torch' in sys.modules, 'matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]
