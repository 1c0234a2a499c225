"""Tests of closure.paths: every interpolant and target recomputed in closed form."""

import math

import pytest
import torch
from torch import nn

from closure.paths import VESDE, FlowMatching, StochasticInterpolant, VEScoreNetwork, ve_std


@pytest.fixture(autouse=True)
def seeded():
    torch.manual_seed(0)


def _batch(b: int = 4):
    shape = (b, 2, 3, 3)
    return torch.rand(b, dtype=torch.float64), torch.randn(shape, dtype=torch.float64), torch.randn(shape, dtype=torch.float64), torch.randn(shape, dtype=torch.float64)


class _Constant(nn.Module):
    """Field returning a fixed tensor, to evaluate losses by hand."""

    def __init__(self, value: torch.Tensor) -> None:
        super().__init__()
        self.value = value

    def forward(self, t, x, c):
        return self.value.expand_as(x)


def test_flow_matching_interpolant_and_velocity_are_linear_in_time():
    t, x0, x1, _ = _batch()
    fm = FlowMatching()
    for b in range(4):
        expected = (1 - t[b]) * x0[b] + t[b] * x1[b]
        torch.testing.assert_close(fm.interpolate(t, x0, x1)[b], expected)
    torch.testing.assert_close(fm.velocity(t, x0, x1), x1 - x0)
    zeros, ones = torch.zeros(4, dtype=torch.float64), torch.ones(4, dtype=torch.float64)
    torch.testing.assert_close(fm.interpolate(zeros, x0, x1), x0)
    torch.testing.assert_close(fm.interpolate(ones, x0, x1), x1)


def test_flow_matching_velocity_is_the_time_derivative_of_the_interpolant():
    t, x0, x1, _ = _batch()
    fm, h = FlowMatching(), 1e-6
    fd = (fm.interpolate(t + h, x0, x1) - fm.interpolate(t - h, x0, x1)) / (2 * h)
    torch.testing.assert_close(fd, fm.velocity(t, x0, x1), atol=1e-8, rtol=1e-8)


def test_flow_matching_sample_and_loss_use_the_given_source_and_times():
    t, x0, x1, c = _batch()
    fm = FlowMatching()
    s = fm.sample(x1, x0=x0, t=t)
    torch.testing.assert_close(s.x_t, (1 - t)[:, None, None, None] * x0 + t[:, None, None, None] * x1)
    torch.testing.assert_close(s.target, x1 - x0)
    value = torch.full((1, 2, 3, 3), 0.5, dtype=torch.float64)
    loss = fm.loss(_Constant(value), x1, c, x0=x0, t=t)
    torch.testing.assert_close(loss, torch.mean((0.5 - (x1 - x0)) ** 2))
    drawn = fm.sample(x1)
    assert drawn.t.shape == (4,) and float(drawn.t.min()) >= 0.0 and float(drawn.t.max()) <= 1.0


def test_stochastic_interpolant_adds_brownian_noise_that_vanishes_at_both_ends():
    t, x0, x1, xi = _batch()
    si = StochasticInterpolant(noise_scale=0.7)
    tb = t[:, None, None, None]
    expected = (1 - tb) * x0 + tb * x1 + 0.7 * (1 - tb) * torch.sqrt(tb) * xi
    torch.testing.assert_close(si.interpolate(t, x0, x1, xi), expected)
    torch.testing.assert_close(si.gamma(torch.tensor([0.0, 1.0, 0.25])), 0.7 * torch.tensor([0.0, 0.0, 0.75 * 0.5]))
    ends = torch.tensor([0.0, 1.0, 0.0, 1.0], dtype=torch.float64)
    torch.testing.assert_close(si.interpolate(ends, x0, x1, xi), torch.where(ends[:, None, None, None] > 0, x1, x0))


def test_stochastic_interpolant_drift_target_is_the_ito_drift():
    """R_t = x1 − x0 − ε W_t with W_t = √t ξ: the dt-part of d[(1−t)x0 + t x1 + ε(1−t)W_t]."""
    t, x0, x1, xi = _batch()
    si = StochasticInterpolant(noise_scale=0.7)
    torch.testing.assert_close(si.drift(t, x0, x1, xi), x1 - x0 - 0.7 * torch.sqrt(t)[:, None, None, None] * xi)
    torch.testing.assert_close(si.diffusion(torch.tensor([0.0, 0.5, 1.0])), torch.tensor([0.7, 0.35, 0.0]))
    s = si.sample(x1, x0=x0, t=t, xi=xi)
    torch.testing.assert_close(s.target, si.drift(t, x0, x1, xi))
    torch.testing.assert_close(s.x_t, si.interpolate(t, x0, x1, xi))


def test_stochastic_interpolant_marginal_variance_matches_monte_carlo_of_the_brownian_form():
    """x_t built with W_t from a simulated Brownian path has the same law as with √t ξ."""
    si = StochasticInterpolant()
    n, steps, t_idx = 200_000, 50, 20
    increments = torch.randn(steps, n, dtype=torch.float64) * math.sqrt(1.0 / steps)
    w_t = increments[:t_idx].sum(dim=0)
    t = t_idx / steps
    x0, x1 = torch.randn(n, dtype=torch.float64), 2.0 + 0.5 * torch.randn(n, dtype=torch.float64)
    brownian = (1 - t) * x0 + t * x1 + (1 - t) * w_t
    closed = si.interpolate(torch.full((n,), t, dtype=torch.float64), x0[:, None], x1[:, None], torch.randn(n, 1, dtype=torch.float64))
    assert float(brownian.var()) == pytest.approx(float(closed.var()), rel=0.02)
    assert float(brownian.var()) == pytest.approx((1 - t) ** 2 + t**2 * 0.25 + (1 - t) ** 2 * t, rel=0.02)


def test_empirical_source_requires_the_condition_as_x0():
    si = StochasticInterpolant(source="empirical")
    with pytest.raises(ValueError, match="needs x0"):
        si.sample(torch.randn(2, 1, 4, 4))
    with pytest.raises(ValueError, match="'gaussian' or 'empirical'"):
        StochasticInterpolant(source="uniform")


def test_ve_sde_std_equals_hand_computed_values():
    ve = VESDE(sigma=30.0)
    t = torch.tensor([0.0, 0.1, 0.4, 1.0], dtype=torch.float64)
    expected = torch.tensor([math.sqrt((30.0 ** (2 * s) - 1) / (2 * math.log(30.0))) for s in (0.0, 0.1, 0.4, 1.0)], dtype=torch.float64)
    torch.testing.assert_close(ve.std(t), expected)
    assert float(ve.std(torch.tensor(1.0, dtype=torch.float64))) == pytest.approx(math.sqrt(899.0 / (2 * math.log(30.0))), rel=1e-14)
    torch.testing.assert_close(ve.diffusion(t), 30.0**t)


def test_ve_sde_variance_grows_at_the_rate_g_squared():
    """d σ_t² / dt = g(t)²: the perturbation kernel is the law of ∫ g dW."""
    ve, h = VESDE(), 1e-6
    t = torch.tensor([0.05, 0.3, 0.9], dtype=torch.float64)
    rate = (ve.std(t + h) ** 2 - ve.std(t - h) ** 2) / (2 * h)
    torch.testing.assert_close(rate, ve.diffusion(t) ** 2, rtol=1e-7, atol=0)


def test_ve_sde_time_of_std_inverts_std():
    ve = VESDE()
    t = torch.tensor([1e-3, 0.1, 0.4, 1.0], dtype=torch.float64)
    torch.testing.assert_close(ve.time_of_std(ve.std(t)), t)


def test_ve_sde_perturbation_score_target_and_weighted_loss():
    t, x1, z, c = _batch()
    ve = VESDE()
    std = ve.std(t)[:, None, None, None]
    torch.testing.assert_close(ve.perturb(t, x1, z), x1 + std * z)
    torch.testing.assert_close(ve.score(t, z), -z / std)
    s = ve.sample(x1, t=t, z=z)
    torch.testing.assert_close(s.x_t, x1 + std * z)
    value = torch.full((1, 2, 3, 3), -0.3, dtype=torch.float64)
    loss = ve.loss(_Constant(value), x1, c, t=t, z=z)
    # σ_t²-weighted DSM: mean σ_t² (s + z/σ_t)² = mean (σ_t s + z)²
    torch.testing.assert_close(loss, torch.mean(std**2 * (-0.3 + z / std) ** 2))
    drawn = ve.sample(x1)
    assert float(drawn.t.min()) >= ve.t_eps


def test_ve_score_network_divides_the_raw_output_by_sigma_t():
    raw = _Constant(torch.ones(1, 2, 3, 3, dtype=torch.float64))
    score = VEScoreNetwork(raw, sigma=30.0)
    t, x, _, c = _batch()
    torch.testing.assert_close(score(t, x, c), 1.0 / ve_std(t, 30.0)[:, None, None, None].expand_as(x))


def test_paths_reject_mismatched_shapes_and_times():
    fm = FlowMatching()
    with pytest.raises(ValueError, match="x0 must have the shape of x1"):
        fm.interpolate(torch.rand(2), torch.randn(2, 1, 3, 3), torch.randn(2, 1, 4, 4))
    with pytest.raises(ValueError, match=r"t must have shape \(2,\)"):
        fm.interpolate(torch.rand(3), torch.randn(2, 1, 3, 3), torch.randn(2, 1, 3, 3))
    with pytest.raises(ValueError, match="sigma must be > 1"):
        VESDE(sigma=1.0)
