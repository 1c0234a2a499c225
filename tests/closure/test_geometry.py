"""closure.geometry: neighbour ranks, kNN preservation, trustworthiness and continuity checked by hand on
five points on a line, their invariances, and the latent-geometry report of a model."""

import numpy as np
import pytest
import torch

from closure.geometry import continuity, distance_correlation, knn_preservation, latent_geometry, local_stress, \
    model_latent_geometry, neighbour_ranks, trustworthiness
from closure.models import ClosureModel, ModelConfig

# inputs on a line; the latent swaps the places of points 1 and 3
X = np.array([[0.0], [1.0], [3.0], [7.0], [15.0]])
Z = np.array([[0.0], [7.0], [3.0], [1.0], [15.0]])


def test_neighbour_ranks_by_hand():
    r = neighbour_ranks(X)
    # from point 3 (at 7): distances 7, 6, 4, -, 8 -> ranks 3, 2, 1, 0, 4
    assert r[3].tolist() == [3, 2, 1, 0, 4]
    assert r[4].tolist() == [4, 3, 2, 1, 0]
    assert neighbour_ranks(np.zeros((3, 2)))[1].tolist() == [1, 0, 2]  # ties broken by index


def test_knn_preservation_trustworthiness_continuity_by_hand():
    # k = 1: input NN 0→1, 1→0, 2→1, 3→2, 4→3; latent NN 0→3, 1→2, 2→3, 3→0, 4→1: none kept.
    # trustworthiness: input ranks of the latent NN 3, 2, 3, 3, 3 → excess Σ(r − 1) = 9, T = 1 − 2·9/(5·1·6)
    # continuity: latent ranks of the input NN 3, 3, 3, 2, 3 → excess 9, C = 0.4
    assert knn_preservation(X, Z, k=1) == 0.0
    assert trustworthiness(X, Z, k=1) == pytest.approx(0.4)
    assert continuity(X, Z, k=1) == pytest.approx(0.4)
    # k = 2: each point keeps one of its two neighbours (P = 0.5); each intruder has rank 3 (excess 1 each,
    # 5 in all): T = C = 1 − 2·5/(5·2·3) = 2/3
    assert knn_preservation(X, Z, k=2) == pytest.approx(0.5)
    assert trustworthiness(X, Z, k=2) == pytest.approx(2 / 3)
    assert continuity(X, Z, k=2) == pytest.approx(2 / 3)
    both = latent_geometry(X, Z, k=2)
    assert both == pytest.approx({"knn_preservation": 0.5, "trustworthiness": 2 / 3, "continuity": 2 / 3,
                                  "local_stress": local_stress(X, Z, k=2), "distance_correlation": 0.6,
                                  "geometry_k": 2, "geometry_points": 5})


def test_local_stress_and_distance_correlation_by_hand():
    # k = 1 pairs 0→1, 1→0, 2→1, 3→2, 4→3: input distances 1, 1, 2, 4, 8; latent 7, 7, 4, 2, 14
    # S = 1 − (Σ dz dx)² / (Σ dz² Σ dx²) = 1 − 142² / (314 · 86)
    assert local_stress(X, Z, k=1) == pytest.approx(1 - 142**2 / (314 * 86))
    # the ten pair distances rank (1,3,6,10,2,5,9,4,8,7) in input space and (6,3,1,10,4,5,7,2,8,9) in the
    # latent: Σ d² = 66, Spearman ρ = 1 − 6·66 / (10·99) = 0.6
    assert distance_correlation(X, Z) == pytest.approx(0.6)
    assert local_stress(X, 3.0 * X + 1.0, k=2) == pytest.approx(0.0, abs=1e-15)
    assert (local_stress(X, np.zeros_like(X), k=2), distance_correlation(X, np.zeros_like(X))) == (1.0, 0.0)


def test_measures_are_one_for_an_isometry_and_ignore_a_scalar_map():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 1, 4, 4))
    q, _ = np.linalg.qr(rng.normal(size=(16, 16)))
    z = 0.01 * (x.reshape(40, 16) @ q.T) + 5.0  # rotation, scale, shift
    assert latent_geometry(x, z, k=5) == pytest.approx({"knn_preservation": 1.0, "trustworthiness": 1.0,
                                                        "continuity": 1.0, "local_stress": 0.0,
                                                        "distance_correlation": 1.0, "geometry_k": 5,
                                                        "geometry_points": 40}, abs=1e-12)
    z2 = rng.normal(size=(40, 3))
    assert latent_geometry(x, z2, k=5) == pytest.approx(latent_geometry(x, -3.0 * z2 + 1.0, k=5))
    assert latent_geometry(x, z2, k=5)["knn_preservation"] < 0.5


def test_geometry_rejects_a_neighbourhood_too_large_for_the_normaliser():
    with pytest.raises(ValueError, match=r"k must satisfy 1 <= k < n/2 = 2.5, got k=3"):
        trustworthiness(X, Z, k=3)
    with pytest.raises(ValueError, match="x and z must hold the same points, got 5 and 4"):
        latent_geometry(X, Z[:4])


def test_model_latent_geometry_measures_the_raw_target_latent():
    torch.manual_seed(0)
    model = ClosureModel(ModelConfig(model="latent-fm", reg="none", grid=16, width=8))
    h = torch.randn(30, 1, 16, 16)
    out = model_latent_geometry(model, h, k=4, batch=7)
    with torch.no_grad():
        z = model.target_coder.encode(h)
    assert out == pytest.approx(latent_geometry(h, z, k=4))
