"""A-priori metrics (closure.evaluation) against hand-computed cases, and a full evaluation of a run."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from closure.evaluation import (closure_spectrum, ensemble_mean_relative_error, evaluate_model, evenly_spaced_rows,
                                fair_crps, field_std_ratio, high_band_energy_ratio, per_sample_relative_errors, pixel_std, spectrum_error, spread_skill_ratio,
                                spread_skill_terms)
from closure.models import ClosureModel, ModelConfig
from tests.closure.synthetic import write_synthetic_dataset



def _truth(n: int = 8) -> np.ndarray:
    return np.random.default_rng(0).standard_normal((n, n))


def test_ensemble_mean_error_is_zero_for_symmetric_spread_and_one_for_a_doubled_field():
    h = _truth()
    assert ensemble_mean_relative_error(np.stack([h + 1, h - 1]), h) == pytest.approx(0.0, abs=1e-15)
    assert ensemble_mean_relative_error(np.stack([2 * h, 2 * h, 2 * h]), h) == pytest.approx(1.0)


def test_per_sample_error_of_a_constant_offset_is_offset_times_n_over_the_norm():
    h = _truth()
    samples = np.stack([h + 0.5, h - 2.0])
    errors = per_sample_relative_errors(samples, h)
    norm = np.linalg.norm(h)
    np.testing.assert_allclose(errors, [0.5 * 8 / norm, 2.0 * 8 / norm])


def test_pixel_std_uses_the_unbiased_estimator():
    samples = np.stack([np.zeros((4, 4)), 2 * np.ones((4, 4))])
    assert pixel_std(samples) == pytest.approx(math.sqrt(2.0))  # var = ((−1)² + 1²) / (2 − 1)


def test_fair_crps_on_hand_computed_ensembles():
    y = np.zeros((1, 1))
    # x = (0, 2), y = 1: mean |x − y| = 1, pair term (1/(2·2·1))·(2 + 2) = 1  → 0
    assert fair_crps(np.array([0.0, 2.0]).reshape(2, 1, 1), y + 1) == pytest.approx(0.0)
    # x = (0, 1, 3), y = 0: 4/3 − (1/(2·3·2))·2·(1 + 3 + 2) = 4/3 − 1 = 1/3
    assert fair_crps(np.array([0.0, 1.0, 3.0]).reshape(3, 1, 1), y) == pytest.approx(1.0 / 3.0)


def test_fair_crps_sorted_form_equals_the_double_sum():
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal((7, 3, 3)), rng.standard_normal((3, 3))
    s = x.shape[0]
    pairs = sum(np.abs(x[i] - x[j]) for i, j in itertools.product(range(s), repeat=2))
    brute = (np.abs(x - y).mean(axis=0) - pairs / (2 * s * (s - 1))).mean()
    assert fair_crps(x, y) == pytest.approx(brute, rel=1e-12)


def test_spread_skill_ratio_of_a_two_member_ensemble_by_hand():
    samples = np.stack([np.zeros((4, 4)), 2 * np.ones((4, 4))])
    var, mse = spread_skill_terms(samples, np.zeros((4, 4)))
    assert (var, mse) == (pytest.approx(2.0), pytest.approx(1.0))  # spread² = 2, skill² = (1 − 0)² = 1
    assert spread_skill_ratio([var], [mse], 2) == pytest.approx(math.sqrt(1.5) * math.sqrt(2.0))


def test_spread_skill_ratio_of_a_reliable_gaussian_ensemble_is_one():
    rng = np.random.default_rng(2)
    variances, errors = [], []
    for _ in range(200):  # truth and members from the same law around a common mean
        mean = rng.standard_normal((4, 4))
        draws = mean + rng.standard_normal((6, 4, 4))
        v, e = spread_skill_terms(draws[1:], draws[0])
        variances.append(v)
        errors.append(e)
    assert spread_skill_ratio(variances, errors, 5) == pytest.approx(1.0, abs=0.05)


def test_spectrum_of_one_fourier_mode_sits_in_its_shell_with_half_the_mean_square():
    n = 8
    x = np.arange(n) / n
    f = np.cos(2 * np.pi * x)[None, :] * np.ones((n, 1))  # mode |n| = 1, <f²> = 1/2
    e = closure_spectrum(f)
    assert e[1] == pytest.approx(0.25)
    assert e.sum() == pytest.approx(0.5 * np.mean(f**2))
    assert spectrum_error(np.stack([2 * f, 2 * f]), f) == pytest.approx(3.0)  # 4 E − E over E
    assert spectrum_error(np.stack([f, -f]), f) == pytest.approx(0.0, abs=1e-14)


def test_conditions_are_evenly_spaced_over_the_split():
    assert evenly_spaced_rows(100, 5).tolist() == [0, 25, 50, 74, 99]
    assert evenly_spaced_rows(3, 10).tolist() == [0, 1, 2]


def test_metric_inputs_are_checked():
    with pytest.raises(ValueError, match=r"samples must have shape \(S, N, N\)"):
        ensemble_mean_relative_error(np.zeros((4, 4)), np.zeros((4, 4)))
    with pytest.raises(ValueError, match="S >= 2"):
        fair_crps(np.zeros((1, 2, 2)), np.zeros((2, 2)))


def test_evaluate_model_returns_every_metric_with_the_settings(tmp_path):
    from closure.data import read_info

    data = write_synthetic_dataset(tmp_path / "d.h5")
    info = read_info(data)
    torch.manual_seed(0)
    model = ClosureModel(ModelConfig(model="latent-si", grid=16, width=8, autoencoder="pca", condition="pooled"))
    res = evaluate_model(model, info.normalisation, data, samples=4, conditions=3)
    for key in ("ensemble_mean_rel_error", "sample_rel_error_mean", "sample_rel_error_2std", "sample_std", "crps",
                "spectrum_error", "spread_skill", "straightness", "nfe"):
        assert math.isfinite(res[key]), key
    assert res["nfe"] == 10 and res["steps"] == 10 and res["sampler"] == "si-euler-maruyama"
    assert res["conditions"] == 3 and len(res["per_condition"]["crps"]) == 3
    assert 0 < res["straightness"] <= 1
    # latent models also report the latent geometry on the whole (40-pair) test split
    assert res["geometry_points"] == 40 and res["geometry_k"] == 10
    assert all(0 <= res[k] <= 1 for k in ("knn_preservation", "trustworthiness", "continuity"))
    again = evaluate_model(model, info.normalisation, data, samples=4, conditions=3)
    assert again["ensemble_mean_rel_error"] == res["ensemble_mean_rel_error"]  # seeded noise


def test_field_std_ratio_is_one_for_samples_like_the_truth_and_lower_for_their_mean():
    rng = np.random.default_rng(4)
    truth = rng.standard_normal((16, 16))
    samples = rng.standard_normal((50, 16, 16))
    assert field_std_ratio(samples, truth) == pytest.approx(1.0, rel=0.1)
    mean = np.repeat(samples.mean(axis=0)[None], 2, axis=0)  # the conditional mean of white noise: ~0
    assert field_std_ratio(mean, truth) < 0.2
    assert field_std_ratio(3.0 * truth[None], truth) == pytest.approx(3.0)


def test_high_band_energy_ratio_sees_only_modes_in_the_upper_half_of_the_band():
    """Truth with shells 1, 2 and 5 populated and a 1e-12 floor elsewhere: the resolved band is 1..5, its
    upper half 3..5, so only the k = 5 mode counts."""
    x = np.arange(16) / 16
    low = np.cos(2 * np.pi * 2 * x)[None, :].repeat(16, axis=0) + np.cos(2 * np.pi * x)[None, :]
    high = np.cos(2 * np.pi * 5 * x)[None, :].repeat(16, axis=0)
    truth = low + high + 1e-6 * np.cos(2 * np.pi * 7 * x)[None, :]
    assert high_band_energy_ratio((low + 2 * high)[None].repeat(2, axis=0), truth) == pytest.approx(4.0)
    assert high_band_energy_ratio((3 * low + high)[None].repeat(2, axis=0), truth) == pytest.approx(1.0)


def test_noise_std_ratio_is_one_for_samples_with_the_noise_spread_and_absent_for_a_noise_free_target(tmp_path) -> None:
    """For ``missing-physics-noisy`` the law is F(ω) + σ_W ξ: samples with the noise's point std score 1."""
    from closure.evaluation import _noise_std_ratio
    from kolmo.dataset import DatasetSpec, build_dataset
    from kolmo.pairs import open_pairs
    from kolmo.targets import noise_point_std

    kw = dict(preset="dong2026", fine=32, coarse=8, trajectories=2, test_trajectories=1, burn_in=0.0, t_end=0.02,
              every=0.01, seed=3)
    build_dataset(DatasetSpec(target="missing-physics-noisy", **kw), tmp_path / "noisy.h5")
    config = open_pairs(tmp_path / "noisy.h5", "test").config
    sigma = noise_point_std(config)
    assert sigma > 0
    res = {"target": "missing-physics-noisy", "sample_std": 0.5 * sigma}
    assert _noise_std_ratio(config, res) == pytest.approx(0.5)
    assert _noise_std_ratio(config, dict(res, target="missing-physics")) is None
