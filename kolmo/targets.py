r"""Closure targets: what the closure term stands for, and the coarse model it completes.

The one home of the target names. Dataset files (:mod:`kolmo.dataset`), artifact metadata
(:mod:`coupling.artifact`), the online equation (:mod:`coupling.online`) and the closure protocol
(:mod:`coupling.protocol`) all read :data:`TARGETS`.

========================  ===========================================  =================================
target                    closure term (coarse grid, 1/time²)           coarse model
========================  ===========================================  =================================
``missing-physics``       :math:`H = S[-P_f(u\cdot\nabla\omega)]`        no advection, Q-Wiener noise
                          (the predictable part; dong2026 default)      drawn by the solver, ``cn-euler``
``missing-physics-noisy`` :math:`H = S[-P_f(u\cdot\nabla\omega)         no advection, no noise,
                          + \sigma_W\xi^n]` (one reading of the         ``cn-euler``
                          reference code; kept for comparison)
``sgs``                   :math:`-\tau`, :math:`\tau = TG\,P_f(u\cdot   own dealiased advection
                          \nabla\omega) - P_c(\bar u\cdot\nabla\bar      (LES)
                          \omega)` (all coarse modes)
``sgs-resolved``          :math:`-P_c\tau`: ``sgs`` restricted to the    own dealiased advection
                          coarse model's 2/3 band                       (LES)
                          :math:`|n_x|, |n_y| < N_c/3`
========================  ===========================================  =================================

Why ``missing-physics`` holds no noise (../shared/SCIENCE.md §2): the Q-Wiener draw of a step is
independent of ω, so no closure can predict it; it only sets a floor on the a-priori error
(:func:`noise_floor`) and, held for ``k`` steps between closure resamples, it would be injected
``k`` times. The solver draws it every step as known physics instead.

Why ``sgs-resolved``: the coarse model zeroes its advection outside the 2/3 band, and 99.9 % of
the power of ``sgs`` lies in :math:`N_c/3 \le |n| < N_c/2` (``sgs`` contains the aliasing of the
coarse product that the coarse model removes). The band-limited target is the part of τ that
acts on the modes the LES resolves: ``RHS_c(ω̄) − P_c τ = P_c T G RHS_f(ω)`` on the 2/3 band, to
round-off (tested).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kolmo.errors import ConfigurationError

__all__ = ["Target", "TARGETS", "DEFAULT_TARGETS", "get_target", "reduced_model", "noise_floor", "coarse_model_mismatch", "same_coarse_model", "read_target",
           "noise_point_std"]


@dataclass(frozen=True)
class Target:
    """One closure target.

    Attributes
    ----------
    name
        User-facing name (``kolmo dataset --target``, artifact metadata ``target``).
    definition
        The definition stored in dataset files (plain text).
    coarse_grainings
        Coarse-graining methods that apply (:data:`kolmo.dataset.COARSE_GRAININGS`), default first.
    advection
        Whether the coarse model keeps its own advection (LES) or drops it (missing physics).
    noise
        Whether the coarse model draws the preset's stochastic forcing itself.
    stepper
        Stepper the coarse model is forced to (``None``: the preset's).
    includes_noise
        Whether the closure term holds the step's noise draw (unpredictable part).
    band_limited
        Whether the closure is zero outside the coarse model's 2/3 band.
    """

    name: str
    definition: str
    coarse_grainings: tuple[str, ...]
    advection: bool
    noise: bool
    stepper: str | None
    includes_noise: bool = False
    band_limited: bool = False

    def coarse_model_changes(self) -> dict[str, Any]:
        """The :class:`~kolmo.presets.Config` fields that turn the fine physics into this target's coarse model."""
        changes: dict[str, Any] = {"advection": self.advection}
        if not self.noise:
            changes["noise_sigma"] = 0.0
        if self.stepper is not None:
            changes["stepper"] = self.stepper
        return changes

    def describe_coarse_model(self) -> str:
        """One line for run summaries, e.g. ``advection off, stochastic forcing drawn by the solver, cn-euler``."""
        if self.advection:
            return "the equation keeps its own dealiased advection (LES)"
        noise = "stochastic forcing drawn by the solver" if self.noise else "stochastic forcing off (H holds it)"
        return f"reduced model: advection off, {noise}, stepper {self.stepper}"


_ADVECTION = "the 2/3-dealiased fine-grid advection -P_f(u.grad omega) of the state at the recording time t_n"
_SGS = ("tau = T G P_f(u.grad omega) - P_c(u_bar.grad omega_bar), omega_bar = T G omega, T the sharp truncation to "
        "the coarse grid's modes (|n_x|,|n_y| < N_c/2), G the filter (identity for sharp), P_f/P_c the 2/3 "
        "dealiasing of the fine/coarse grid")

TARGETS: dict[str, Target] = {t.name: t for t in (
    Target("missing-physics",
           f"H = S[-P_f(u.grad omega)]: {_ADVECTION}, subsampled (S = every (N_f/N_c)-th point). A vorticity "
           "tendency (1/time^2). Coarse model: no advection, the Q-Wiener noise drawn by the solver every step, "
           "d(omega)/dt = nu lap(omega) - mu omega + f + sigma_W xi + H (stepped with cn-euler: the paper's "
           "reduced model).",
           ("subsample",), advection=False, noise=True, stepper="cn-euler"),
    Target("missing-physics-noisy",
           f"H = S[-P_f(u.grad omega) + sigma_W xi]: {_ADVECTION} plus the Q-Wiener noise drawn for the step "
           "t_n -> t_n + dt, subsampled (S = every (N_f/N_c)-th point). A vorticity tendency (1/time^2). The noise "
           "draw is independent of omega: it sets an irreducible floor on the a-priori error. Coarse model: no "
           "advection, no noise, d(omega)/dt = nu lap(omega) - mu omega + f + H (cn-euler).",
           ("subsample",), advection=False, noise=False, stepper="cn-euler", includes_noise=True),
    Target("sgs",
           f"-tau, {_SGS}. A vorticity tendency (1/time^2). Coarse model: its own dealiased advection plus -tau, so "
           "RHS_c(omega_bar) - tau = T G RHS_f(omega) up to the forcing.",
           ("sharp", "gaussian"), advection=True, noise=True, stepper=None),
    Target("sgs-resolved",
           f"-P_c tau, {_SGS}: the sgs term restricted to the coarse model's 2/3 band |n_x|,|n_y| < N_c/3 (the "
           "modes its own advection acts on). A vorticity tendency (1/time^2). Coarse model: its own dealiased "
           "advection plus -P_c tau, so RHS_c(omega_bar) - P_c tau = P_c T G RHS_f(omega) up to the forcing.",
           ("sharp", "gaussian"), advection=True, noise=True, stepper=None, band_limited=True),
)}
"""Every closure target by name."""

DEFAULT_TARGETS: dict[str, str] = {"dong2026": "missing-physics", "kolmogorov": "sgs-resolved"}
"""Target of each preset when ``--target`` is not given.

``kolmogorov`` defaults to ``sgs-resolved``: measured online (benchmarks/RESULTS.md, "LES"), 32² LES of a
128² DNS, one-step latent FM closures trained on each target: ``sgs-resolved`` 0.28 energy-spectrum error
(no closure 0.29), ``sgs`` 0.57 with twice the DNS enstrophy (it puts its errors in the band the LES's own
advection does not damp). The *exact* (replayed) terms say the opposite: the exact ``sgs`` term keeps a 32²
LES at relative error 0.07 after one time unit where no closure is at 0.57, the exact ``sgs-resolved`` term
at 0.57 (the state's modes N/3 <= |n| < N/2, which the coarse model does not advect, are what needs the
closure). So this default is about what a learned closure gets right today, not about the definitions; with
an alias-free coarse model (state kept in the 2/3 band) the two targets would coincide."""


def get_target(name: str) -> Target:
    """The :class:`Target` called ``name``; :class:`ConfigurationError` listing the valid names otherwise."""
    try:
        return TARGETS[name]
    except (KeyError, TypeError):
        raise ConfigurationError(f"unknown closure target {name!r}; valid: {', '.join(TARGETS)}") from None


def reduced_model(config: Any, target: str) -> Any:
    """``config`` (a :class:`~kolmo.presets.Config`) turned into the coarse model of ``target``."""
    return config.replace(**get_target(target).coarse_model_changes())


def noise_point_std(config: Any) -> float:
    r"""Point standard deviation of the Q-Wiener tendency :math:`\sigma_W\xi` of ``config`` (1/time²).

    In ``rfft2`` layout the solver draws :math:`\hat\xi_k = a_k (g_1 + i g_2)` on a half plane of
    modes (:class:`kolmo.forcing.QWienerForcing`), so the real field
    :math:`\xi(x) = N^{-2}\sum_k \hat\xi_k e^{ik\cdot x}` has variance
    :math:`4 N^{-4} \sum_{\text{drawn}} a_k^2`, independent of ``N`` once the spectrum is resolved.
    Returns 0 for a preset without noise.
    """
    if not config.noise_sigma > 0:
        return 0.0
    from kolmo.forcing import QWienerForcing
    from kolmo.grid import Grid

    grid = Grid(config.n, config.L, config.dealias)
    return QWienerForcing(grid, config.dt, config.noise_sigma, config.noise_alpha, config.noise_kappa, []).point_std()


def noise_floor(config: Any, closure_rms: float) -> float:
    r"""Irreducible relative error of any prediction of a noise-inclusive target.

    The noise part of ``missing-physics-noisy`` is independent of the condition, so even the exact
    conditional mean misses it: :math:`\|E[H|\omega] - H\|/\|H\| \approx \mathrm{std}(\sigma_W\xi)/
    \mathrm{rms}(H)` (measured at 64²: 0.0195 / 0.142 ≈ 0.137).

    Parameters
    ----------
    config
        The fine run's :class:`~kolmo.presets.Config` (noise settings and Δt).
    closure_rms
        Root mean square of the stored closure over the train split (1/time²).
    """
    if not closure_rms > 0:
        raise ConfigurationError(f"closure rms {closure_rms}; expected a positive number")
    return noise_point_std(config) / closure_rms


def coarse_model_mismatch(target: str, config: Any) -> str | None:
    """Why ``config`` is not the coarse model of ``target`` (``None`` when it is).

    Checked: advection on/off, and for targets without advection whether the stochastic forcing is
    drawn by the solver (``missing-physics``) or held by the closure (``missing-physics-noisy``) —
    a closure run with the other setting would miss the noise or add it twice. Presets without
    noise pass either way.
    """
    t = get_target(target)
    if bool(config.advection) != t.advection:
        return (f"target {target!r}, which needs advection {'on' if t.advection else 'off'}, but the equation has "
                f"advection={'on' if config.advection else 'off'}")
    if t.advection:
        return None
    from kolmo.presets import preset

    if not preset(config.preset, config.n).noise_sigma > 0:
        return None
    drawn = bool(config.noise_sigma > 0)
    if drawn != t.noise:
        other = "missing-physics" if drawn else "missing-physics-noisy"
        return (f"target {target!r}, which needs the stochastic forcing {'drawn by the solver' if t.noise else 'off'} "
                f"({'noise_sigma > 0' if t.noise else 'noise_sigma = 0'}), but the equation has noise_sigma = "
                f"{config.noise_sigma:g}; a closure of target {other!r} fits that run")
    return None


def same_coarse_model(a: str, b: str) -> bool:
    """Whether targets ``a`` and ``b`` complete the same coarse model (so their closures can be summed)."""
    return get_target(a).coarse_model_changes() == get_target(b).coarse_model_changes()


LEGACY_FORMAT_VERSIONS: dict[str, int] = {"kolmo-dataset": 1, "kolmo-closure": 1}
"""Last format version of each file kind written before ``missing-physics`` lost its noise term."""


def read_target(name: str, file_format: str, format_version: Any) -> str:
    """The current name of the target stored as ``name`` in a file of ``file_format`` / ``format_version``.

    Dataset files and closure artifacts up to :data:`LEGACY_FORMAT_VERSIONS` called the
    noise-inclusive definition ``missing-physics``; it is ``missing-physics-noisy`` now.
    """
    legacy = LEGACY_FORMAT_VERSIONS.get(file_format)
    if name == "missing-physics" and legacy is not None and format_version == legacy:
        return "missing-physics-noisy"
    return name
