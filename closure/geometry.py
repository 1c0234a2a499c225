r"""Latent geometry: how well a latent keeps the neighbourhoods of the fields it encodes.

For points ``x_i`` (flattened target fields, the input space) and their latents ``z_i = E(x_i)``,
``i = 1 … n``, with Euclidean distances in each space, ``N_k^x(i)`` / ``N_k^z(i)`` the ``k`` nearest other
points of ``i`` in input / latent space, and ``r^x(i, j)`` the rank of ``j`` among the neighbours of ``i``
in input space (1 = nearest; ``r^z`` likewise in latent space):

=====================  ===========================================================================
measure                definition
=====================  ===========================================================================
kNN preservation       ``P_k = (1 / (n k)) Σ_i |N_k^x(i) ∩ N_k^z(i)|``: the share of each point's
                       ``k`` input neighbours that are also its latent neighbours (1 = all kept;
                       a random embedding gives ``≈ k / (n − 1)``)
trustworthiness        ``T_k = 1 − 2 / (n k (2n − 3k − 1)) Σ_i Σ_{j ∈ N_k^z(i) \ N_k^x(i)} (r^x(i, j) − k)``
                       (Venna & Kaski 2001): penalises latent neighbours that are far in input space
                       (false neighbours); 1 = none
continuity             ``C_k``: the same with the spaces swapped, ``Σ_{j ∈ N_k^x(i) \ N_k^z(i)}
                       (r^z(i, j) − k)``: penalises input neighbours torn apart in the latent
local stress           ``S_k = min_s Σ (d^z_ij − s d^x_ij)² / Σ (d^z_ij)² = 1 − (Σ d^z d^x)² / (Σ (d^z)² Σ (d^x)²)``
                       over the pairs ``j ∈ N_k^x(i)``: the MP criterion up to one scale (0 = the
                       latent is locally an isometry times a constant; 1 = collapsed)
distance correlation   Spearman rank correlation of ``d^x_ij`` and ``d^z_ij`` over all pairs ``i < j``
                       (global geometry; 1 = same order of all distances; 0 when all the distances
                       of one space are equal, e.g. a collapsed latent)
=====================  ===========================================================================

On time series (snapshots 0.1 time units apart) the nearest neighbours of a field are its neighbours in
time, which any continuous encoder keeps: the rank measures then saturate at 1, and the local stress
and the distance correlation are the ones that separate latents. All five are invariant to a scalar map
``z → a z + b`` (the latent standardisation of :mod:`closure.models`). Ties in distance are broken by index. The normaliser of
``T_k`` and ``C_k`` needs ``k < (2n − 1)/3``; :func:`latent_geometry` asks for ``k < n / 2``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from scipy.spatial.distance import cdist

if TYPE_CHECKING:
    from closure.models import ClosureModel

__all__ = ["neighbour_ranks", "knn_preservation", "trustworthiness", "continuity", "local_stress",
           "distance_correlation", "latent_geometry",
           "model_latent_geometry", "GEOMETRY_METRICS"]

GEOMETRY_METRICS = {
    "knn_preservation": "share of each test target's k nearest neighbours kept in the latent",
    "trustworthiness": "1 − normalised rank excess of false latent neighbours (Venna & Kaski)",
    "continuity": "1 − normalised rank excess of input neighbours lost in the latent",
    "local_stress": "scale-fitted stress of latent vs target distances on the k-NN pairs (0 = isometric)",
    "distance_correlation": "Spearman correlation of all pairwise target and latent distances",
}


def _points(a: np.ndarray | torch.Tensor) -> np.ndarray:
    return np.asarray(torch.as_tensor(a).detach().cpu().double().reshape(len(a), -1).numpy())


def neighbour_ranks(points: np.ndarray) -> np.ndarray:
    """Rank matrix ``r (n, n)``: ``r[i, j]`` = rank of ``j`` among the other points by distance from ``i``
    (1 = nearest; ``r[i, i] = 0``; ties broken by index).

    Parameters
    ----------
    points : ndarray, shape (n, ...)
        Points, flattened to ``(n, d)``.
    """
    p = _points(points)
    d = cdist(p, p)
    np.fill_diagonal(d, -np.inf)  # the point itself sorts first, rank 0
    order = np.argsort(d, axis=1, kind="stable")
    ranks = np.empty_like(order)
    rows = np.arange(len(p))[:, None]
    ranks[rows, order] = np.arange(len(p))[None, :]
    return ranks


def _check(n: int, k: int) -> None:
    if not 1 <= k < n / 2:
        raise ValueError(f"k must satisfy 1 <= k < n/2 = {n / 2:g}, got k={k}")


def knn_preservation(x: np.ndarray, z: np.ndarray, k: int = 10) -> float:
    """``P_k`` of the module docstring for inputs ``x (n, ...)`` and latents ``z (n, ...)``."""
    rx, rz = neighbour_ranks(x), neighbour_ranks(z)
    _check(len(rx), k)
    both = (rx >= 1) & (rx <= k) & (rz >= 1) & (rz <= k)
    return float(both.sum() / (len(rx) * k))


def _rank_excess(r_from: np.ndarray, r_by: np.ndarray, k: int) -> float:
    """``1 − 2/(n k (2n − 3k − 1)) Σ_i Σ_{j: r_from(i,j) ≤ k, r_by(i,j) > k} (r_by(i, j) − k)``."""
    n = len(r_from)
    _check(n, k)
    intruders = (r_from >= 1) & (r_from <= k) & (r_by > k)
    excess = float((r_by[intruders] - k).sum())
    return 1.0 - 2.0 * excess / (n * k * (2 * n - 3 * k - 1))


def trustworthiness(x: np.ndarray, z: np.ndarray, k: int = 10) -> float:
    """``T_k``: latent neighbours ranked by their input-space rank (module docstring)."""
    return _rank_excess(neighbour_ranks(z), neighbour_ranks(x), k)


def continuity(x: np.ndarray, z: np.ndarray, k: int = 10) -> float:
    """``C_k``: input neighbours ranked by their latent rank (module docstring)."""
    return _rank_excess(neighbour_ranks(x), neighbour_ranks(z), k)


def local_stress(x: np.ndarray, z: np.ndarray, k: int = 10) -> float:
    """``S_k`` (module docstring): scale-fitted stress of latent against input distances on the k-NN pairs."""
    px, pz = _points(x), _points(z)
    _check(len(px), k)
    return _local_stress(cdist(px, px), cdist(pz, pz), neighbour_ranks(px), k)


def _local_stress(dx: np.ndarray, dz: np.ndarray, rx: np.ndarray, k: int) -> float:
    near = (rx >= 1) & (rx <= k)
    a, b = dz[near], dx[near]
    denom = float((a * a).sum() * (b * b).sum())
    return 1.0 if denom == 0 else 1.0 - float((a * b).sum()) ** 2 / denom


def distance_correlation(x: np.ndarray, z: np.ndarray) -> float:
    """Spearman correlation of all pairwise distances ``d^x_ij``, ``d^z_ij`` (``i < j``)."""
    px, pz = _points(x), _points(z)
    return _distance_correlation(cdist(px, px), cdist(pz, pz))


def _distance_correlation(dx: np.ndarray, dz: np.ndarray) -> float:
    from scipy.stats import spearmanr

    i, j = np.triu_indices(len(dx), 1)
    a, b = dx[i, j], dz[i, j]
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return 0.0
    return float(spearmanr(a, b).statistic)


def latent_geometry(x: np.ndarray | torch.Tensor, z: np.ndarray | torch.Tensor, k: int = 10) -> dict[str, float]:
    """All five measures for inputs ``x (n, ...)`` and latents ``z (n, ...)`` (distances and ranks once).

    Returns
    -------
    dict
        ``knn_preservation``, ``trustworthiness``, ``continuity``, ``local_stress``,
        ``distance_correlation``, ``geometry_k`` and ``geometry_points``.
    """
    if len(x) != len(z):
        raise ValueError(f"x and z must hold the same points, got {len(x)} and {len(z)}")
    px, pz = _points(x), _points(z)
    rx, rz = neighbour_ranks(px), neighbour_ranks(pz)
    n = len(rx)
    _check(n, k)
    dx, dz = cdist(px, px), cdist(pz, pz)
    kept = ((rx >= 1) & (rx <= k) & (rz >= 1) & (rz <= k)).sum()
    return {"knn_preservation": float(kept / (n * k)), "trustworthiness": _rank_excess(rz, rx, k),
            "continuity": _rank_excess(rx, rz, k), "local_stress": _local_stress(dx, dz, rx, k),
            "distance_correlation": _distance_correlation(dx, dz), "geometry_k": k, "geometry_points": n}


@torch.no_grad()
def model_latent_geometry(model: "ClosureModel", closure_n: torch.Tensor, k: int = 10,
                          batch: int = 256) -> dict[str, Any]:
    """:func:`latent_geometry` between normalised target fields ``closure_n (n, 1, N, N)`` and their raw
    target latents ``E_H(H_n)`` (before the scalar standardisation, which leaves ranks unchanged)."""
    model.eval()
    z = torch.cat([model.target_coder.encode(closure_n[s:s + batch]) for s in range(0, len(closure_n), batch)])
    return latent_geometry(closure_n, z, k)
