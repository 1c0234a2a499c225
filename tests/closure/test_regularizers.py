"""Tests of closure.regularizers: MP, GA and batch-KL losses against hand computations, and the
diffusion-potential distances against an explicit loop implementation."""

import math

import numpy as np
import pytest
import torch

from closure.regularizers import (
    batch_kl_loss,
    diffusion_potential,
    geometry_aware_loss,
    metric_preserving_loss,
    potential_distance_median,
    potential_distances,
    scaled_geometry_aware_loss,
)


def test_metric_preserving_loss_on_four_points_by_hand():
    # inputs on a line at 0, 1, 3, 7; latents at 0, 2, 3, 4 (1-d each)
    x = torch.tensor([[0.0], [1.0], [3.0], [7.0]], dtype=torch.float64)
    z = torch.tensor([[0.0], [2.0], [3.0], [4.0]], dtype=torch.float64)
    # k = 1 nearest neighbours in x: 0->1, 1->0, 2->1, 3->2
    # gaps |z_i - z_j| - |x_i - x_j|: (2-1), (2-1), (1-2), (1-4) -> squares 1, 1, 1, 9
    assert float(metric_preserving_loss(z, x, k=1)) == pytest.approx((1 + 1 + 1 + 9) / 4)
    # k = 2: 0->{1,2}, 1->{0,2}, 2->{1,0}, 3->{2,1}
    # gaps: 0: (1, 0)  1: (1, -1)  2: (-1, 0)  3: (-3, -4)
    expected = ((1 + 0) / 2 + (1 + 1) / 2 + (1 + 0) / 2 + (9 + 16) / 2) / 4
    assert float(metric_preserving_loss(z, x, k=2)) == pytest.approx(expected)


def test_metric_preserving_loss_vanishes_for_an_isometry_and_flattens_fields():
    x = torch.randn(6, 1, 4, 4, dtype=torch.float64)
    q, _ = torch.linalg.qr(torch.randn(16, 16, dtype=torch.float64))
    z = (x.reshape(6, 16) @ q.T).reshape(6, 1, 4, 4) + 3.0  # rotation + shift
    assert float(metric_preserving_loss(z, x, k=5)) == pytest.approx(0.0, abs=1e-20)


def test_metric_preserving_loss_has_finite_gradients_with_coincident_latents():
    x = torch.randn(6, 3)
    z = torch.zeros(6, 2, requires_grad=True)
    metric_preserving_loss(z, x, k=5).backward()
    assert bool(torch.isfinite(z.grad).all())


def test_metric_preserving_loss_rejects_too_small_batches():
    with pytest.raises(ValueError, match="k must satisfy 1 <= k < batch size 5, got k=5"):
        metric_preserving_loss(torch.randn(5, 2), torch.randn(5, 3), k=5)


def test_geometry_aware_loss_on_three_points_by_hand():
    z = torch.tensor([[0.0, 0.0], [3.0, 4.0], [0.0, 1.0]], dtype=torch.float64)  # |z_i - z_j|: 5, 1, √18
    d = torch.tensor([[0.0, 4.0, 1.0], [4.0, 0.0, 2.0], [1.0, 2.0, 0.0]], dtype=torch.float64)
    expected = (
        math.exp(-4.0) * (5.0 - 4.0) ** 2 + math.exp(-1.0) * (1.0 - 1.0) ** 2 + math.exp(-2.0) * (math.sqrt(18.0) - 2.0) ** 2
    ) / 3
    assert float(geometry_aware_loss(z, d)) == pytest.approx(expected, rel=1e-14)


def test_geometry_aware_loss_rejects_a_distance_matrix_of_the_wrong_size():
    with pytest.raises(ValueError, match=r"distances must have shape \(3, 3\)"):
        geometry_aware_loss(torch.randn(3, 2), torch.zeros(4, 4))


def test_batch_kl_is_zero_for_standardised_latents_and_matches_the_gaussian_kl():
    z = torch.tensor([[1.0, 2.0], [-1.0, 4.0], [1.0, 2.0], [-1.0, 4.0]], dtype=torch.float64)
    # dim 0: μ = 0, s² = 1 -> 0;  dim 1: μ = 3, s² = 1 -> ½ (9 + 1 − 1 − 0) = 4.5
    assert float(batch_kl_loss(z)) == pytest.approx((0.0 + 4.5) / 2)
    z2 = torch.tensor([[2.0], [-2.0]], dtype=torch.float64)  # μ = 0, s² = 4
    assert float(batch_kl_loss(z2)) == pytest.approx(0.5 * (4 - 1 - math.log(4)))


def _potential_by_loops(x: np.ndarray, knn: int, t: int, decay: float, thresh: float) -> np.ndarray:
    """Step-by-step reference: kernel entries one by one, Markov matrix, t products, potential."""
    n = len(x)
    d = np.array([[np.sqrt(((x[i] - x[j]) ** 2).sum()) for j in range(n)] for i in range(n)])
    eps = np.array([sorted(d[i, j] for j in range(n) if j != i)[knn - 1] for i in range(n)])
    k = np.zeros((n, n))
    for i in range(n):
        for j in range(n):
            k[i, j] = 0.5 * (math.exp(-((d[i, j] / eps[i]) ** decay)) + math.exp(-((d[i, j] / eps[j]) ** decay)))
            if k[i, j] < thresh:
                k[i, j] = 0.0
    p = k / k.sum(axis=1, keepdims=True)
    pt = np.eye(n)
    for _ in range(t):
        pt = pt @ p
    return -np.log(pt + 1e-7)


def test_diffusion_potential_distances_follow_the_phate_recipe_on_six_points():
    x = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.2], [3.0, 3.0], [3.5, 3.0], [10.0, 0.0]])
    u_ref = _potential_by_loops(x, knn=2, t=3, decay=2.0, thresh=1e-4)
    np.testing.assert_allclose(diffusion_potential(x, knn=2, t=3, decay=2.0), u_ref, rtol=1e-12, atol=1e-12)
    d = potential_distances(x, knn=2, t=3, decay=2.0)
    d_ref = np.sqrt(((u_ref[:, None, :] - u_ref[None, :, :]) ** 2).sum(-1))
    np.testing.assert_allclose(d, d_ref, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(d, d.T)
    np.testing.assert_allclose(np.diag(d), 0.0)
    assert d[0, 1] < d[0, 3]  # points in one cluster are closer than across clusters


def test_landmark_potentials_are_exact_when_every_point_is_a_landmark():
    x = np.random.default_rng(1).normal(size=(60, 5))
    np.testing.assert_array_equal(diffusion_potential(x, n_landmarks=60), diffusion_potential(x))


def test_landmark_potentials_reproduce_the_landmark_diffusion_on_landmark_rows():
    x = np.random.default_rng(2).normal(size=(200, 5))
    u = diffusion_potential(x, knn=5, t=4, n_landmarks=50, seed=3)
    assert u.shape == (200, 50)
    landmarks = np.sort(np.random.default_rng(3).choice(200, size=50, replace=False))
    exact_on_landmarks = diffusion_potential(x[landmarks], knn=5, t=4)
    np.testing.assert_allclose(u[landmarks], exact_on_landmarks, rtol=1e-10, atol=1e-10)
    assert np.isfinite(u).all()


def test_diffusion_potential_rejects_bad_parameters():
    with pytest.raises(ValueError, match="knn must satisfy 1 <= knn < n = 5, got 10"):
        diffusion_potential(np.zeros((5, 2)))
    with pytest.raises(ValueError, match=r"shape \(n, d\)"):
        diffusion_potential(np.zeros(5))


# ---------------------------------------------------------------------------------------------- GA scale
def test_scaled_geometry_aware_loss_on_three_points_by_hand():
    z = torch.tensor([[0.0, 0.0], [3.0, 4.0], [0.0, 1.0]], dtype=torch.float64)  # pairs (01, 02, 12): 5, 1, √18
    d = torch.tensor([[0.0, 4.0, 1.0], [4.0, 0.0, 2.0], [1.0, 2.0, 0.0]], dtype=torch.float64)
    med = 2.0  # D̃ = 2, 0.5, 1; w = e^-2, e^-0.5, e^-1
    dt, dz = [2.0, 0.5, 1.0], [5.0, 1.0, math.sqrt(18.0)]
    w = [math.exp(-v) for v in dt]
    cross = sum(a * b * c for a, b, c in zip(w, dz, dt))
    zz = sum(a * b * b for a, b in zip(w, dz))
    dd = sum(a * c * c for a, c in zip(w, dt))
    expected = 1.0 - cross**2 / (zz * dd)
    assert float(scaled_geometry_aware_loss(z, d, med)) == pytest.approx(expected, rel=1e-12)
    # the same as the weighted residual at the least-squares scale s* = Σ w d D̃ / Σ w D̃²
    s = cross / dd
    assert expected == pytest.approx(sum(a * (b - s * c) ** 2 for a, b, c in zip(w, dz, dt)) / zz, rel=1e-12)


def test_scaled_geometry_aware_loss_is_zero_for_proportional_distances_and_scale_free():
    u = torch.randn(7, 30, dtype=torch.float64) * 40.0  # potential-like points, distances O(100)
    d = torch.cdist(u, u)
    med = float(d[torch.triu_indices(7, 7, 1).unbind()].median())
    z = 0.01 * u[:, :30].reshape(7, 1, 5, 6) + 2.0  # latent distances = D / 100: proportional
    assert float(scaled_geometry_aware_loss(z, d, med)) == pytest.approx(0.0, abs=1e-12)
    z2 = torch.randn(7, 1, 5, 6, dtype=torch.float64)
    l1 = float(scaled_geometry_aware_loss(z2, d, med))
    assert 0.0 < l1 < 1.0
    assert float(scaled_geometry_aware_loss(3.0 * z2 - 1.0, d, med)) == pytest.approx(l1, rel=1e-12)


def test_scaled_geometry_aware_loss_is_one_for_a_collapsed_latent_with_finite_gradients():
    z = torch.zeros(5, 3, requires_grad=True)
    x = torch.randn(5, 4)
    d = torch.cdist(x, x)
    loss = scaled_geometry_aware_loss(z, d, 1.0)
    assert float(loss.detach()) == pytest.approx(1.0)
    loss.backward()
    assert bool(torch.isfinite(z.grad).all())
    with pytest.raises(ValueError, match="median = 0.0; expected a positive finite distance"):
        scaled_geometry_aware_loss(z, d, 0.0)


def test_reference_geometry_aware_loss_vanishes_at_potential_distances_of_order_100():
    """The published weights exp(−D) underflow in float32 for D > 104: the term is exactly zero however
    wrong the latent distances are; the median-scaled term is not."""
    u = 40.0 * torch.randn(8, 50)
    d = torch.cdist(u, u)
    z = torch.randn(8, 16)
    assert float(d[torch.triu_indices(8, 8, 1).unbind()].min()) > 110
    assert float(geometry_aware_loss(z, d)) == 0.0
    assert float(scaled_geometry_aware_loss(z, d, float(d.median()))) > 0.0


def test_potential_distance_median_by_hand_and_by_sampling():
    u = np.array([[0.0, 0.0], [3.0, 4.0], [0.0, 1.0], [0.0, 3.0]])  # pair distances 5, 1, 3, √18, √10, 2
    assert potential_distance_median(u) == pytest.approx(3.0)  # sorted 1, 2, 3, √10, √18, 5: lower middle
    big = np.random.default_rng(0).normal(size=(400, 5))
    exact = potential_distance_median(big)
    assert potential_distance_median(big, max_pairs=20_000, seed=1) == pytest.approx(exact, rel=0.02)
    with pytest.raises(ValueError, match=r"potentials must have shape \(n, m\) with n >= 2"):
        potential_distance_median(np.zeros((1, 3)))
