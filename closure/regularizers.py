"""Latent-geometry regularizers for the target autoencoder (SCIENCE.md §3).

- :func:`metric_preserving_loss` (MP, weight 1e-2): latent distances match input distances between
  nearest neighbours in the batch.
- :func:`geometry_aware_loss` (GA, weight 1e-3): latent distances match precomputed diffusion-potential
  (PHATE) distances, weighted towards near pairs; the distances come from :func:`potential_distances`
  (or, for large training sets, :func:`diffusion_potential` with landmarks). Two scales
  (:data:`GA_SCALES`): ``"reference"`` (the formula as published; its weights ``exp(−D)`` underflow for
  potential distances of O(100), so the term is negligible) and ``"median"`` (distances divided by their
  training-set median :func:`potential_distance_median`, latent distances matched after a least-squares
  scale fit: a scale-free weighted stress in [0, 1]).
- :func:`batch_kl_loss` (joint training, weight 0.1): per-dimension batch moments of ``z`` pulled to
  ``N(0, 1)``.

Every loss takes batches ``(B, ...)`` and flattens all but the first dimension; distances are
Euclidean norms of the flattened vectors (units of the field, or of the latent).
"""

import math
from typing import Optional

import numpy as np
import torch
from scipy.spatial.distance import cdist
from torch import Tensor

__all__ = [
    "MP_WEIGHT",
    "GA_WEIGHT",
    "KL_WEIGHT",
    "metric_preserving_loss",
    "GA_SCALES",
    "geometry_aware_loss",
    "scaled_geometry_aware_loss",
    "potential_distance_median",
    "batch_kl_loss",
    "diffusion_potential",
    "potential_distances",
]

MP_WEIGHT: float = 1e-2
"""Weight of the MP loss in the reference training."""
GA_WEIGHT: float = 1e-3
"""Weight of the GA loss in the reference training."""
KL_WEIGHT: float = 0.1
"""Weight of the batch KL in the reference joint training."""
GA_SCALES = ("reference", "median")
"""Scales of the GA term: the published formula, or median-normalised distances with a scale fit."""


def _pairwise(v: Tensor) -> Tensor:
    """Euclidean distances ``(B, B)`` between rows of ``v (B, d)``, with a zero-safe gradient."""
    diff = v[:, None, :] - v[None, :, :]
    sq = (diff * diff).sum(dim=-1)
    safe = torch.where(sq > 0, sq, torch.ones_like(sq))
    return torch.where(sq > 0, torch.sqrt(safe), torch.zeros_like(sq))


def metric_preserving_loss(z: Tensor, x: Tensor, k: int = 5) -> Tensor:
    """Metric-preserving (MP) loss on the k nearest neighbours within the batch.

    ``L_MP = (1/B) Σ_i (1/k) Σ_{j ∈ kNN(i)} (‖z_i − z_j‖ − ‖x_i − x_j‖)²``,

    with ``kNN(i)`` the ``k`` nearest other batch members of ``x_i`` in input space (ties broken by
    index; the neighbour search carries no gradient).

    Parameters
    ----------
    z : Tensor, shape (B, ...)
        Latents.
    x : Tensor, shape (B, ...)
        Inputs (fields).
    k : int
        Neighbours per point (5 in the reference); needs ``B > k``.

    Returns
    -------
    Tensor, scalar
    """
    if z.shape[0] != x.shape[0]:
        raise ValueError(f"z and x must have the same batch size, got {z.shape[0]} and {x.shape[0]}")
    batch = x.shape[0]
    if not 1 <= k < batch:
        raise ValueError(f"k must satisfy 1 <= k < batch size {batch}, got k={k}")
    dx = _pairwise(x.reshape(batch, -1))
    dz = _pairwise(z.reshape(batch, -1))
    with torch.no_grad():
        search = dx.detach().clone()
        search.fill_diagonal_(float("inf"))
        neighbours = torch.topk(search, k, dim=1, largest=False, sorted=True).indices  # (B, k)
    gap = torch.gather(dz, 1, neighbours) - torch.gather(dx, 1, neighbours)
    return (gap**2).mean()


def _ga_batch(z: Tensor, distances: Tensor) -> tuple[Tensor, Tensor]:
    """Latent and given distances over the ``i < j`` pairs of a batch, after checking the shapes."""
    batch = z.shape[0]
    if batch < 2:
        raise ValueError(f"need a batch of at least 2, got {batch}")
    if distances.shape != (batch, batch):
        raise ValueError(f"distances must have shape ({batch}, {batch}), got {tuple(distances.shape)}")
    dz = _pairwise(z.reshape(batch, -1))
    i, j = torch.triu_indices(batch, batch, offset=1, device=z.device)
    return dz[i, j], distances.to(z.dtype)[i, j]


def geometry_aware_loss(z: Tensor, distances: Tensor) -> Tensor:
    """Geometry-aware (GA) loss against precomputed distances, at the reference scale.

    ``L_GA = mean_{i<j} exp(−D_ij) (‖z_i − z_j‖ − D_ij)²`` over the ``B (B − 1) / 2`` pairs of the batch.

    As published, ``D`` is the Euclidean distance between diffusion potentials in ``R^m`` (``m`` = points
    or landmarks, up to 2,000): on dong2026 closures its median is O(100), so ``exp(−D)`` underflows for
    almost every pair and the term is negligible against reconstruction (measured in benchmarks/RESULTS.md §7). Kept for
    comparison; :func:`scaled_geometry_aware_loss` is the fixed scale.

    Parameters
    ----------
    z : Tensor, shape (B, ...)
        Latents of the batch.
    distances : Tensor, shape (B, B)
        Diffusion-potential distances ``D`` between the batch members (e.g. ``D_full[idx][:, idx]``, or
        ``torch.cdist(U[idx], U[idx])`` from :func:`diffusion_potential` potentials ``U``).

    Returns
    -------
    Tensor, scalar
    """
    dz, dij = _ga_batch(z, distances)
    return (torch.exp(-dij) * (dz - dij) ** 2).mean()


def scaled_geometry_aware_loss(z: Tensor, distances: Tensor, median: float, eps: float = 1e-12) -> Tensor:
    """Geometry-aware loss at a fixed scale: median-normalised distances, latent distances scale-fitted.

    With ``D̃_ij = D_ij / median`` (``median`` = median of ``D`` over training pairs,
    :func:`potential_distance_median`), weights ``w_ij = exp(−D̃_ij)`` (O(1): a pair at the median
    distance weighs e⁻¹) and ``d_ij = ‖z_i − z_j‖``, over the ``i < j`` pairs of the batch::

        L = min_s Σ w (d − s D̃)² / Σ w d²  =  1 − (Σ w d D̃)² / (Σ w d² · Σ w D̃² + eps)

    (the optimal scale is ``s* = Σ w d D̃ / Σ w D̃²``). ``L ∈ [0, 1]``: 0 when the latent distances are
    proportional to the potential distances on the weighted pairs, 1 for a collapsed latent; it is
    invariant to ``z → a z + b``, so it shapes the latent geometry and leaves the latent scale to the
    reconstruction (and the scalar standardisation of :mod:`closure.models`).

    Parameters
    ----------
    z : Tensor, shape (B, ...)
        Latents of the batch.
    distances : Tensor, shape (B, B)
        Diffusion-potential distances ``D`` (raw, as for :func:`geometry_aware_loss`).
    median : float
        Positive normalising distance.
    eps : float
        Keeps the ratio finite for a collapsed latent.

    Returns
    -------
    Tensor, scalar
    """
    if not (median > 0 and math.isfinite(median)):
        raise ValueError(f"median = {median}; expected a positive finite distance")
    dz, dij = _ga_batch(z, distances)
    d = dij / median
    w = torch.exp(-d)
    cross = (w * dz * d).sum()
    return 1.0 - cross**2 / ((w * dz**2).sum() * (w * d**2).sum() + eps)


def potential_distance_median(potentials: np.ndarray | Tensor, max_pairs: int = 1_000_000, seed: int = 0) -> float:
    """Median of ``D_ij = ‖U_i − U_j‖`` over the pairs ``i < j`` of the rows of ``potentials``.

    (torch's median: the lower middle value for an even count.)

    Every pair when there are at most ``max_pairs`` of them; otherwise ``max_pairs`` pairs ``(i, j)``,
    ``i ≠ j``, drawn uniformly with replacement (seeded): the sample median, within ~0.1 % of the full one
    at the default size.

    Parameters
    ----------
    potentials : array or Tensor, shape (n, m)
        Diffusion potentials (:func:`diffusion_potential`), ``n >= 2``.
    max_pairs : int
        Pair budget.
    seed : int
        Seed of the pair draw.

    Returns
    -------
    float
    """
    u = torch.as_tensor(potentials).double()
    n = u.shape[0]
    if u.ndim != 2 or n < 2:
        raise ValueError(f"potentials must have shape (n, m) with n >= 2, got {tuple(u.shape)}")
    if n * (n - 1) // 2 <= max_pairs:
        i, j = torch.triu_indices(n, n, offset=1)
    else:
        gen = torch.Generator().manual_seed(seed)
        i = torch.randint(0, n, (max_pairs,), generator=gen)
        j = (i + torch.randint(1, n, (max_pairs,), generator=gen)) % n
    chunks = [torch.linalg.vector_norm(u[i[a:a + 100_000]] - u[j[a:a + 100_000]], dim=1)
              for a in range(0, len(i), 100_000)]
    return float(torch.cat(chunks).median())


def batch_kl_loss(z: Tensor, eps: float = 1e-12) -> Tensor:
    """Batch-moment KL divergence of each latent dimension to ``N(0, 1)``.

    ``KL = (1/d) Σ_k ½ (μ_k² + s_k² − 1 − ln s_k²)`` with ``μ_k``, ``s_k²`` the batch mean and (biased)
    batch variance of coordinate ``k`` — the KL of ``N(μ_k, s_k²)`` to ``N(0, 1)``, averaged over the
    ``d`` coordinates.

    Parameters
    ----------
    z : Tensor, shape (B, ...)
        Latents; needs ``B >= 2``.
    eps : float
        Floor on ``s_k²`` inside the logarithm.
    """
    batch = z.shape[0]
    if batch < 2:
        raise ValueError(f"need a batch of at least 2, got {batch}")
    flat = z.reshape(batch, -1)
    mu = flat.mean(dim=0)
    var = flat.var(dim=0, unbiased=False)
    return (0.5 * (mu**2 + var - 1.0 - torch.log(torch.clamp(var, min=eps)))).mean()


def _alpha_decay_markov(d: np.ndarray, bandwidth_rows: np.ndarray, bandwidth_cols: np.ndarray,
                        decay: float, thresh: float) -> np.ndarray:
    """Row-stochastic matrix from distances ``d (n, m)`` with the symmetrised α-decay kernel.

    ``K_ij = ½ [exp(−(d_ij/ε_i)^α) + exp(−(d_ij/ε_j)^α)]``, entries below ``thresh`` set to 0,
    ``P = K / Σ_j K_ij``.
    """
    tiny = np.finfo(np.float64).tiny  # duplicate points give ε = 0: keep d/ε finite or +inf, never 0/0
    bandwidth_rows = np.maximum(bandwidth_rows, tiny)
    bandwidth_cols = np.maximum(bandwidth_cols, tiny)
    with np.errstate(over="ignore", under="ignore"):
        k_rows = np.exp(-((d / bandwidth_rows[:, None]) ** decay))
        k_cols = np.exp(-((d / bandwidth_cols[None, :]) ** decay))
    kernel = 0.5 * (k_rows + k_cols)
    kernel[kernel < thresh] = 0.0
    return kernel / kernel.sum(axis=1, keepdims=True)


def _kth_neighbour_distance(d: np.ndarray, knn: int, self_column: Optional[np.ndarray]) -> np.ndarray:
    """Distance from each row to its ``knn``-th nearest column, excluding the row's own column."""
    d = d.copy()
    if self_column is not None:
        rows = np.nonzero(self_column >= 0)[0]
        d[rows, self_column[rows]] = np.inf
    return np.partition(d, knn - 1, axis=1)[:, knn - 1]


def diffusion_potential(
    x: np.ndarray,
    knn: int = 10,
    t: int = 10,
    decay: float = 40.0,
    thresh: float = 1e-4,
    n_landmarks: Optional[int] = 2000,
    seed: int = 0,
) -> np.ndarray:
    """Diffusion potentials ``U`` (PHATE, Moon et al. 2019), one row per point.

    Exact (``n_landmarks`` is None or ``>= n``):

    1. ``d_ij = ‖x_i − x_j‖`` (Euclidean, on the rows of ``x``).
    2. Adaptive bandwidth ``ε_i`` = distance from ``x_i`` to its ``knn``-th nearest neighbour (itself
       excluded).
    3. α-decay kernel ``K_ij = ½ [exp(−(d_ij/ε_i)^α) + exp(−(d_ij/ε_j)^α)]`` with ``α = decay``
       (symmetric; ``K_ii = 1``); entries below ``thresh`` set to 0 (graphtools' default 1e-4).
    4. Markov matrix ``P = D⁻¹ K``, ``D = diag(Σ_j K_ij)`` (row-normalised).
    5. ``t``-step diffusion ``P^t``.
    6. Potential ``U = −log(P^t + 1e-7)`` (row ``i`` = potential of the walk started at ``x_i``).

    Landmarks (``n_landmarks = m < n``; the default ``m = 2000`` is PHATE's rule: exact up to 2,000
    points, landmarks above — the exact form needs several dense ``n × n`` matrices): ``m`` points
    are drawn uniformly without replacement (seeded); steps 1–5 run on the landmarks, giving
    ``P_L (m, m)``; every point ``i`` then takes one kernel step into the landmarks, ``w_i`` (its row of
    the step-3/4 kernel against the landmarks, bandwidth = distance to its ``knn``-th nearest landmark,
    itself excluded when it is one), followed by ``t − 1`` landmark steps: ``p_i = w_i P_L^{t−1}`` and
    ``U_i = −log(p_i + 1e-7) ∈ R^m``. For a landmark, ``w_i`` is its row of ``P_L`` and ``U_i`` its exact
    landmark potential. Cost ``O(n m d + m³ log t)``, memory ``O(n m)``: 18,000 points of dimension
    256 with 2,000 landmarks take ~10 s on one CPU core and ~0.3 GB. PHATE picks landmarks by spectral clustering; uniform sampling is simpler
    and unbiased. Distances between landmark potentials live in ``R^m``, not ``R^n``: the scale of
    ``D`` depends on ``m``; keep ``m`` fixed between fitting and training.

    Parameters
    ----------
    x : ndarray, shape (n, d)
        Points: flattened fields, or (cheaper, and what PHATE does by default with 100 components)
        their leading PCA coefficients, e.g. ``PCAAutoencoder.fit(train).encode(x).flatten(1)``,
        which keeps distances within the PCA subspace.
    knn : int
        Neighbour count of the adaptive bandwidth (10 in the reference).
    t : int
        Diffusion time in steps (10 in the reference).
    decay : float
        α-decay exponent (PHATE default 40).
    thresh : float
        Kernel values below it are set to 0.
    n_landmarks : int or None
        Use the landmark approximation with this many landmarks when smaller than ``n``; ``None``
        forces the exact computation.
    seed : int
        Seed of the landmark draw.

    Returns
    -------
    ndarray, shape (n, n) (exact) or (n, m) (landmarks)
        Potentials ``U``; distances ``D_ij = ‖U_i − U_j‖``.
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"x must have shape (n, d), got {x.shape}")
    n = x.shape[0]
    if not 1 <= knn < n:
        raise ValueError(f"knn must satisfy 1 <= knn < n = {n}, got {knn}")
    if t < 1:
        raise ValueError(f"t must be >= 1, got {t}")
    if not decay > 0:
        raise ValueError(f"decay must be > 0, got {decay}")
    if n_landmarks is None or n_landmarks >= n:
        return _exact_potential(x, knn, t, decay, thresh)
    m = int(n_landmarks)
    if not knn < m:
        raise ValueError(f"n_landmarks must exceed knn = {knn}, got {m}")
    return _landmark_potential(x, knn, t, decay, thresh, m, seed)


def _exact_potential(x: np.ndarray, knn: int, t: int, decay: float, thresh: float) -> np.ndarray:
    """Steps 1–6 of :func:`diffusion_potential` on all ``n`` points, ``(n, n)``."""
    n = x.shape[0]
    d = cdist(x, x)
    eps = _kth_neighbour_distance(d, knn, np.arange(n))
    p = _alpha_decay_markov(d, eps, eps, decay, thresh)
    return -np.log(np.linalg.matrix_power(p, t) + 1e-7)


def _landmark_potential(x: np.ndarray, knn: int, t: int, decay: float, thresh: float, m: int,
                        seed: int) -> np.ndarray:
    """The landmark form of :func:`diffusion_potential` with ``m`` seeded uniform landmarks, ``(n, m)``."""
    n = x.shape[0]
    rng = np.random.default_rng(seed)
    landmarks = np.sort(rng.choice(n, size=m, replace=False))
    xl = x[landmarks]
    d_ll = cdist(xl, xl)
    eps_l = _kth_neighbour_distance(d_ll, knn, np.arange(m))
    p_l = _alpha_decay_markov(d_ll, eps_l, eps_l, decay, thresh)
    walk = np.linalg.matrix_power(p_l, t - 1)  # (m, m)
    self_column = np.full(n, -1)
    self_column[landmarks] = np.arange(m)
    potentials = np.empty((n, m))
    chunk = max(1, 2_000_000 // m)
    for start in range(0, n, chunk):
        stop = min(n, start + chunk)
        d_il = cdist(x[start:stop], xl)
        eps_i = _kth_neighbour_distance(d_il, knn, self_column[start:stop])
        w = _alpha_decay_markov(d_il, eps_i, eps_l, decay, thresh)
        potentials[start:stop] = -np.log(w @ walk + 1e-7)
    return potentials


def potential_distances(
    x: np.ndarray,
    knn: int = 10,
    t: int = 10,
    decay: float = 40.0,
    thresh: float = 1e-4,
    n_landmarks: Optional[int] = 2000,
    seed: int = 0,
) -> np.ndarray:
    """Diffusion-potential (PHATE) distances ``D_ij = ‖U_i − U_j‖`` between all points.

    ``U`` from :func:`diffusion_potential` (same parameters; see there for every step). Returns a dense
    ``(n, n)`` matrix: 1.3 GB in float32 for 18,000 points — for the full training set prefer keeping
    the landmark potentials ``U (n, m)`` and computing ``torch.cdist(U[idx], U[idx])`` per batch.

    Returns
    -------
    ndarray, shape (n, n)
        Symmetric, zero diagonal.
    """
    u = diffusion_potential(x, knn=knn, t=t, decay=decay, thresh=thresh, n_landmarks=n_landmarks, seed=seed)
    return cdist(u, u)
