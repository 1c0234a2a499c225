r"""A-priori evaluation of a closure model on test conditions (SCIENCE.md §4).

For each of ``conditions`` test pairs ``(ω, H)`` (evenly spaced over the test split) the model draws
``S = samples`` closures ``Ĥ_1 … Ĥ_S`` given ``ω`` (explicit, seeded noise), in solver units. Metrics,
each a function of ``samples (S, N, N)`` and ``truth (N, N)`` (all norms Frobenius over the grid):

=============================  ======================================================================
metric                         definition
=============================  ======================================================================
ensemble-mean relative error   ``‖mean_s Ĥ_s − H‖ / ‖H‖``  (the headline number of §5)
per-sample relative error      ``e_s = ‖Ĥ_s − H‖ / ‖H‖``; reported as mean ± 2 std over all samples of
                               all conditions
sample std                     pixel-wise ensemble std (``ddof = 1``), averaged over pixels (1/time²);
                               also relative to the rms of ``H``
spectrum error                 ``Σ_k |mean_s E_{Ĥ_s}(k) − E_H(k)| / Σ_k E_H(k)`` with ``E_f`` the
                               isotropic power spectrum of the field ``f`` itself
                               (:func:`kolmo.diagnostics.spectra`: ``Σ_k E_f(k) = ½⟨f²⟩``)
field std ratio                ``mean_s std_x(Ĥ_s) / std_x(H)`` (1 for samples of the law; the
                               conditional mean is smoother)
high-band energy ratio         power of the samples over the truth's in the upper half of the band
                               the truth populates (:func:`resolved_band`: within 6 decades of its peak)
irreducible floor              for a noise-inclusive target, the dataset's stated floor of the
                               ensemble-mean error (:func:`kolmo.targets.noise_floor`), reported
                               beside the error
noise std ratio                for a noise-inclusive target (conditional law ``F(ω) + σ_W ξ``): sample
                               std over the noise's point std (1 for a generator that keeps the law)
coarse-advection residual      for ``missing-physics`` targets, median of ``‖H − (−P_c ū·∇ω̄)‖/‖H‖``
                               over the evaluated pairs (:func:`kolmo.closure_terms.
                               coarse_advection_residual`): at round-off ``H`` is a function of ``ω̄``
                               and the ensemble spread can only measure the model's error
fair CRPS                      per pixel ``(1/S) Σ_s |Ĥ_s − H| − (1/(2 S (S−1))) Σ_{s,s'} |Ĥ_s − Ĥ_s'|``
                               (Ferro 2014), averaged over pixels (1/time²) and relative to rms(H)
spread–skill ratio             ``√((S+1)/S) · spread / skill`` with ``spread² = ⟨Var_s Ĥ⟩`` (``ddof 1``)
                               and ``skill² = ⟨(mean_s Ĥ − H)²⟩``, pooled over pixels and conditions
                               (Fortin et al. 2014; 1 for a reliable ensemble, < 1 over-confident)
straightness                   ``‖x_K − x_0‖ / Σ_k ‖x_{k+1} − x_k‖`` of the sampler's path in the
                               generator's space (:func:`closure.samplers.straightness`), on
                               ``min(S, 20)`` samples per condition; for a one-step sampler (trivially
                               straight) measured with a 10-step sampler of the same model
NFE                            network evaluations per sample
latent geometry (latent        kNN preservation, trustworthiness, continuity, local stress (k = 10)
models only)                   and distance correlation between the test targets ``H_n`` and their
                               latents, on up to 500 test pairs evenly spaced over the split
                               (:mod:`closure.geometry`)
=============================  ======================================================================
"""

from __future__ import annotations

import math
import os
import time
from typing import Any, Optional

import numpy as np
import torch
from torch import Tensor

from closure.data import ClosurePairs, Normalisation
from closure.errors import ConfigurationError
from closure.models import ClosureModel
from kolmo.diagnostics import spectra
from kolmo.errors import ShapeError
from kolmo.grid import Grid

__all__ = ["ensemble_mean_relative_error", "per_sample_relative_errors", "pixel_std", "closure_spectrum",
           "spectrum_error", "field_std_ratio", "high_band_energy_ratio", "fair_crps", "spread_skill_terms", "spread_skill_ratio", "evaluate_model",
           "evaluate_run", "evenly_spaced_rows", "METRICS"]

METRICS = {
    "ensemble_mean_rel_error": "‖mean(Ĥ) − H‖/‖H‖",
    "sample_rel_error_mean": "per-sample ‖Ĥ − H‖/‖H‖, mean",
    "sample_rel_error_2std": "per-sample ‖Ĥ − H‖/‖H‖, 2 std",
    "sample_std": "pixel-wise sample std (1/time²)",
    "sample_std_rel": "pixel-wise sample std / rms(H)",
    "spectrum_error": "Σ|⟨E_Ĥ⟩ − E_H| / ΣE_H",
    "field_std_ratio": "std_x(Ĥ_s) / std_x(H), mean over samples",
    "high_band_energy_ratio": "power of Ĥ_s / power of H, upper half of the resolved band",
    "crps": "fair CRPS (1/time²)",
    "crps_rel": "fair CRPS / rms(H)",
    "spread_skill": "spread–skill ratio",
    "straightness": "path straightness",
    "nfe": "network evaluations / sample",
}
_STRAIGHTNESS_SAMPLES = 20
_STRAIGHTNESS_STEPS_FOR_ONE_STEP = 10
_GEOMETRY_POINTS, _GEOMETRY_K = 500, 10


def _check(samples: np.ndarray, truth: np.ndarray) -> None:
    if samples.ndim != 3 or truth.shape != samples.shape[1:]:
        raise ValueError(f"samples must have shape (S, N, N) and truth (N, N); got {samples.shape} and {truth.shape}")


def ensemble_mean_relative_error(samples: np.ndarray, truth: np.ndarray) -> float:
    """``‖mean_s Ĥ_s − H‖ / ‖H‖`` for ``samples (S, N, N)``, ``truth (N, N)``."""
    _check(samples, truth)
    return float(np.linalg.norm(samples.mean(axis=0) - truth) / np.linalg.norm(truth))


def per_sample_relative_errors(samples: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """``(S,)`` array of ``‖Ĥ_s − H‖ / ‖H‖``."""
    _check(samples, truth)
    diff = (samples - truth[None]).reshape(samples.shape[0], -1)
    return np.linalg.norm(diff, axis=1) / np.linalg.norm(truth)


def pixel_std(samples: np.ndarray) -> float:
    """Pixel-wise ensemble standard deviation (``ddof = 1``) averaged over the grid."""
    if samples.ndim != 3 or samples.shape[0] < 2:
        raise ValueError(f"samples must have shape (S, N, N) with S >= 2, got {samples.shape}")
    return float(samples.std(axis=0, ddof=1).mean())


def closure_spectrum(fields: np.ndarray, L: float = 1.0) -> np.ndarray:
    """Isotropic power spectrum ``(..., K)`` of fields ``(..., N, N)``, shells of :mod:`kolmo.diagnostics`
    (``Σ_k E(k) = ½⟨f²⟩``)."""
    n = fields.shape[-1]
    flat = fields.reshape(-1, n, n)
    _, power = spectra(Grid(n, L), np.fft.rfft2(flat))
    return power.reshape(fields.shape[:-2] + (power.shape[-1],))


def spectrum_error(samples: np.ndarray, truth: np.ndarray, L: float = 1.0) -> float:
    """``Σ_k |mean_s E_{Ĥ_s}(k) − E_H(k)| / Σ_k E_H(k)``."""
    _check(samples, truth)
    e_samples = closure_spectrum(samples, L).mean(axis=0)
    e_truth = closure_spectrum(truth, L)
    return float(np.abs(e_samples - e_truth).sum() / e_truth.sum())


def field_std_ratio(samples: np.ndarray, truth: np.ndarray) -> float:
    """``mean_s std_x(Ĥ_s) / std_x(H)``: the amplitude of each sample field against the truth's (a sample
    of the conditional law has ratio ≈ 1; the conditional mean is smoother, < 1)."""
    _check(samples, truth)
    return float(samples.reshape(samples.shape[0], -1).std(axis=1).mean() / truth.std())


RESOLVED_DECADES = 6.0
"""The resolved band of a closure field ends where its spectrum falls ``RESOLVED_DECADES`` below its peak."""


def resolved_band(e_truth: np.ndarray, decades: float = RESOLVED_DECADES) -> slice:
    """Shells ``1 ≤ k < K``, ``K − 1`` the last shell with ``E_H(k) ≥ 10^{-decades} max E_H``: the band the
    truth actually populates (a smooth flow's closure falls to float round-off
    well before the grid's Nyquist, measured ~1e-19 at k ≥ 21 on dong2026 64²)."""
    floor = e_truth.max() * 10.0 ** (-decades)
    above = np.nonzero(e_truth[1:] >= floor)[0]
    k_end = int(above[-1]) + 2 if above.size else 2
    return slice(1, k_end)


def high_band_energy_ratio(samples: np.ndarray, truth: np.ndarray, L: float = 1.0) -> float:
    """``Σ_{k ∈ upper half} mean_s E_{Ĥ_s}(k) / Σ_{k ∈ upper half} E_H(k)``: power of the samples in the upper
    half ``[K/2, K)`` of the resolved band :func:`resolved_band` against the truth's (one-step samplers are
    known to lose it: ratio < 1; decoder artefacts add to it: ratio > 1)."""
    _check(samples, truth)
    e_truth = closure_spectrum(truth, L)
    band = resolved_band(e_truth)
    upper = slice(max(1, (band.start + band.stop) // 2), band.stop)
    e_samples = closure_spectrum(samples, L).mean(axis=0)[upper]
    return float(e_samples.sum() / e_truth[upper].sum())


def fair_crps(samples: np.ndarray, truth: np.ndarray) -> float:
    """Fair (ensemble-size unbiased) CRPS averaged over the grid (Ferro 2014).

    ``(1/S) Σ_s |x_s − y| − (1/(2 S (S − 1))) Σ_{s, s'} |x_s − x_s'|`` per pixel; the pair sum uses the
    sorted form ``Σ_{s,s'} |x_s − x_s'| = 2 Σ_i (2 i − S + 1) x_(i)`` (``i = 0 … S − 1``).
    """
    _check(samples, truth)
    s = samples.shape[0]
    if s < 2:
        raise ValueError(f"the fair CRPS needs S >= 2 samples, got {s}")
    skill = np.abs(samples - truth[None]).mean(axis=0)
    ordered = np.sort(samples, axis=0)
    weights = (2 * np.arange(s) - s + 1).reshape(-1, 1, 1)
    pair_sum = 2.0 * (weights * ordered).sum(axis=0)
    return float((skill - pair_sum / (2.0 * s * (s - 1))).mean())


def spread_skill_terms(samples: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    """``(⟨Var_s Ĥ⟩, ⟨(mean_s Ĥ − H)²⟩)`` over the grid (ddof 1), to be pooled over conditions."""
    _check(samples, truth)
    return float(samples.var(axis=0, ddof=1).mean()), float(((samples.mean(axis=0) - truth) ** 2).mean())


def spread_skill_ratio(variances: list[float], squared_errors: list[float], ensemble_size: int) -> float:
    """``√((S+1)/S) · √(mean variance) / √(mean squared error)`` pooled over conditions."""
    mse = float(np.mean(squared_errors))
    if mse == 0:
        return float("inf")
    return math.sqrt((ensemble_size + 1) / ensemble_size) * math.sqrt(float(np.mean(variances)) / mse)


def evenly_spaced_rows(n_test: int, conditions: int) -> np.ndarray:
    """``conditions`` evenly spaced row indices of a split of ``n_test`` pairs."""
    if conditions < 1:
        raise ConfigurationError(f"conditions = {conditions}; expected >= 1")
    if n_test < 1:
        raise ConfigurationError("the test split is empty")
    return np.unique(np.linspace(0, n_test - 1, min(conditions, n_test)).round().astype(np.int64))



@torch.no_grad()
def evaluate_model(model: ClosureModel, normalisation: Normalisation, data: str | os.PathLike, samples: int = 100,
                   steps: Optional[int] = None, sampler: Optional[str] = None, conditions: int = 10, seed: int = 0,
                   batch: Optional[int] = None, L: Optional[float] = None) -> dict[str, Any]:
    """A-priori metrics of ``model`` on ``conditions`` test pairs of ``data`` (see the module docstring).

    Parameters
    ----------
    model : ClosureModel
        Trained model (eval mode; CPU float32 here).
    normalisation : Normalisation
        The model's (training) normalisation.
    data : path-like
        Dataset file; its test split is used.
    samples : int
        Samples per condition (``S >= 2``).
    steps, sampler : optional
        Sampling steps and DM sampler (defaults of the family).
    conditions : int
        Test pairs, evenly spaced over the split.
    seed : int
        Seed of the sampling noise.
    batch : int, optional
        Samples drawn per model call (default all ``S`` at once).
    L : float, optional
        Domain side for the spectrum (only its shell layout matters here; default 1).

    Returns
    -------
    dict
        Summary metrics (keys of :data:`METRICS`), per-condition lists under ``per_condition``, and the
        settings (``steps``, ``sampler``, ``samples``, ``conditions``, ``rows``, ``seconds_per_sample``).
    """
    if samples < 2:
        raise ConfigurationError(f"samples = {samples}; at least 2 are needed for spread metrics")
    model.eval()
    n_test = _test_size(model, data)
    rows = evenly_spaced_rows(n_test, conditions)
    test = ClosurePairs(data, "test", normalisation, rows=rows, dtype=torch.float32)
    s_obj = model.make_sampler(steps, sampler)
    n_steps, nfe = int(s_obj.n_steps), int(s_obj.nfe)
    straight_steps = n_steps if n_steps > 1 else _STRAIGHTNESS_STEPS_FOR_ONE_STEP
    straight = model.make_sampler(straight_steps, sampler)
    stochastic_straight = model.stochastic_steps(sampler)
    gen = torch.Generator().manual_seed(seed)
    batch = batch or samples
    per: dict[str, list[float]] = {k: [] for k in _PER_CONDITION}
    all_errors: list[np.ndarray] = []
    variances: list[float] = []
    sq_errors: list[float] = []
    seconds = 0.0
    for i in range(len(test)):
        omega_n = test.omega[i:i + 1]
        truth = normalisation.closure_physical(test.closure[i, 0].double()).numpy()
        ens, dt = _draw_ensemble(model, normalisation, omega_n, samples, batch, steps, sampler, gen)
        seconds += dt
        errors_i, v, e = _score_condition(per, ens, truth, L or 1.0)
        all_errors.append(errors_i)
        variances.append(v)
        sq_errors.append(e)
        per["straightness"].append(_straightness(model, straight, omega_n, min(samples, _STRAIGHTNESS_SAMPLES),
                                                 straight_steps, sampler, stochastic_straight, gen))
    errors = np.concatenate(all_errors)
    cfg = model.config
    geometry = _latent_geometry(model, normalisation, data, n_test) if cfg.latent else {}
    out: dict[str, Any] = {key: float(np.mean(values)) for key, values in per.items()}
    out.update({
        "sample_rel_error_mean": float(errors.mean()), "sample_rel_error_2std": float(2 * errors.std()),
        "spread_skill": spread_skill_ratio(variances, sq_errors, samples), "nfe": nfe,
        "model": cfg.describe(), "family": cfg.model, "regularizer": cfg.reg if cfg.latent else None,
        "steps": n_steps, "sampler": s_obj.name, "straightness_steps": straight_steps,
        "samples": samples, "conditions": len(rows), "rows": rows.tolist(), "seed": seed,
        "seconds_per_sample": seconds / (samples * len(rows)), "threads": torch.get_num_threads(),
        "flops_per_sample": model.flops_per_sample(steps, sampler), "parameters": model.parameter_counts(),
        "per_condition": per, **geometry,
    })
    return out


_PER_CONDITION = ("ensemble_mean_rel_error", "sample_std", "sample_std_rel", "spectrum_error", "crps", "crps_rel",
                  "straightness", "field_std_ratio", "high_band_energy_ratio")
"""The per-condition metrics of :func:`evaluate_model`, in the order of its ``per_condition`` dict."""


def _test_size(model: ClosureModel, data: str | os.PathLike) -> int:
    """Pairs in the test split of ``data`` (:class:`ShapeError` when its grid is not the model's)."""
    from kolmo.pairs import Pairs

    with Pairs(data, "test") as pairs:
        n_test, grid = len(pairs), pairs.n
    if grid != model.config.grid:
        raise ShapeError(f"the test data are on a {grid}² grid; the model was trained on {model.config.grid}²")
    return n_test


def _draw_ensemble(model: ClosureModel, normalisation: Normalisation, omega_n: Tensor, samples: int, batch: int,
                   steps: Optional[int], sampler: Optional[str],
                   gen: torch.Generator) -> tuple[np.ndarray, float]:
    """``samples`` physical closures drawn for the condition ``omega_n (1, 1, n, n)``, ``batch`` per model
    call, and the seconds spent in :meth:`ClosureModel.sample`."""
    draws = []
    seconds = 0.0
    for start in range(0, samples, batch):
        b = min(batch, samples - start)
        noise = torch.randn(model.noise_shape(b, steps, sampler), generator=gen)
        t0 = time.perf_counter()
        h_n = model.sample(omega_n.expand(b, -1, -1, -1), noise, steps, sampler)
        seconds += time.perf_counter() - t0
        draws.append(normalisation.closure_physical(h_n[:, 0].double()).numpy())
    return np.concatenate(draws), seconds


def _score_condition(per: dict[str, list[float]], ens: np.ndarray, truth: np.ndarray,
                     L: float) -> tuple[np.ndarray, float, float]:
    """Append the per-condition metrics of ``ens`` against ``truth`` to ``per``; returns the per-sample
    relative errors and the spread-skill terms ``(variance, squared error)``."""
    rms = float(np.sqrt((truth**2).mean()))
    per["ensemble_mean_rel_error"].append(ensemble_mean_relative_error(ens, truth))
    errors = per_sample_relative_errors(ens, truth)
    per["sample_std"].append(pixel_std(ens))
    per["sample_std_rel"].append(per["sample_std"][-1] / rms)
    per["spectrum_error"].append(spectrum_error(ens, truth, L))
    per["field_std_ratio"].append(field_std_ratio(ens, truth))
    per["high_band_energy_ratio"].append(high_band_energy_ratio(ens, truth, L))
    per["crps"].append(fair_crps(ens, truth))
    per["crps_rel"].append(per["crps"][-1] / rms)
    v, e = spread_skill_terms(ens, truth)
    return errors, v, e


def _straightness(model: ClosureModel, straight: Any, omega_n: Tensor, k: int, straight_steps: int,
                  sampler: Optional[str], stochastic: bool, gen: torch.Generator) -> float:
    """Mean path straightness of ``k`` sampler trajectories for the condition ``omega_n``."""
    noise = torch.randn(model.noise_shape(k, straight_steps, sampler), generator=gen)
    c = model.encode_condition(omega_n.expand(k, -1, -1, -1))
    x_init = noise[0] if stochastic else noise
    if model.config.family == "si" and model.config.si_source == "empirical":
        x_init = c
    _, s_path = straight.trajectory(x_init, c, noise[1:] if stochastic else None)
    return float(s_path.mean())


def _latent_geometry(model: ClosureModel, normalisation: Normalisation, data: str | os.PathLike,
                     n_test: int) -> dict[str, Any]:
    """:func:`closure.geometry.model_latent_geometry` on up to ``_GEOMETRY_POINTS`` evenly spaced test pairs."""
    from closure.geometry import model_latent_geometry

    rows = evenly_spaced_rows(n_test, _GEOMETRY_POINTS)
    if len(rows) <= 2 * _GEOMETRY_K:
        return {}
    pairs = ClosurePairs(data, "test", normalisation, rows=rows, dtype=torch.float32)
    return model_latent_geometry(model, pairs.closure, k=_GEOMETRY_K)


def _coarse_advection_residual(pairs: Any, rows: list[int], target: Optional[str]) -> Optional[float]:
    """Median of :func:`kolmo.closure_terms.coarse_advection_residual` over the evaluated test pairs of a
    ``missing-physics`` target (``None`` for the other targets, whose closure is not the advection)."""
    if target not in ("missing-physics", "missing-physics-noisy"):
        return None
    from kolmo.closure_terms import coarse_advection_residual

    omega, closure = pairs[np.asarray(rows)]
    return float(np.median(coarse_advection_residual(omega, closure, pairs.config)))


def _noise_std_ratio(config: Any, result: dict[str, Any]) -> Optional[float]:
    """For a noise-inclusive target, the samples' pixel std over the Q-Wiener noise's point std
    (:func:`kolmo.targets.noise_point_std` of the fine run's ``config``): its conditional law is
    ``F(ω) + σ_W ξ``, so a generator that keeps it scores 1 (up to the spread of F's model error);
    ``None`` for the other targets."""
    from kolmo.targets import get_target, noise_point_std

    target = result.get("target")
    if target is None or not get_target(target).includes_noise:
        return None
    std = noise_point_std(config)
    return result["sample_std"] / std if std > 0 else None


def evaluate_run(run_dir: str | os.PathLike, data: str | os.PathLike, checkpoint: str = "best",
                 **kwargs: Any) -> dict[str, Any]:
    """:func:`evaluate_model` on the model of a training run; adds ``run_id``, ``checkpoint``, ``epoch`` and
    whether ``data`` is the training dataset (fingerprint match)."""
    from closure.data import read_info
    from closure.training import load_run

    run = load_run(run_dir, checkpoint)
    info = read_info(data)
    result = evaluate_model(run.model, run.normalisation, data, L=info.L, **kwargs)
    from kolmo.pairs import Pairs

    with Pairs(data, "test") as pairs:
        stats = pairs.attrs.get("stats", {})
        result["target"] = pairs.attrs.get("target")
        result["coarse_advection_residual"] = _coarse_advection_residual(pairs, result["rows"], result["target"])
        result["noise_std_ratio"] = _noise_std_ratio(pairs.config, result)
    result["irreducible_floor"] = stats.get("irreducible_floor") if isinstance(stats, dict) else None
    result.update({"run_id": run.run_id, "checkpoint": str(run.checkpoint), "epoch": run.epoch,
                   "phase": run.phase, "dataset_matches_training": info.fingerprint == run.dataset.get("fingerprint")})
    return result
