"""Probability paths from a source ``x0`` to the target ``x1`` (the closure term, or its latent).

Each path is a small stateless object (after torchcfm) with

- the closed-form interpolant ``x_t`` and its regression target,
- ``sample(x1, ...) -> PathSample(t, x0, noise, x_t, target)`` drawing whatever was not given,
- ``loss(network, x1, c, ...) -> Tensor`` (scalar), the mean over all elements of the squared error.

``network`` is any module with ``forward(t (B,), x_t (B, C, n, n), c (B, Cc, m, m)) -> (B, C, n, n)``
(:mod:`closure.networks`). Time conventions: flow matching and stochastic interpolants run from the
source at ``t = 0`` to the data at ``t = 1``; the VE-SDE runs from the data at ``t = 0`` to noise at
``t = 1`` (Song et al. 2021). Samplers for each path are in :mod:`closure.samplers`.

Paths
-----
- :class:`FlowMatching` — ``x_t = (1 − t) x0 + t x1``, target ``u = x1 − x0`` (Lipman et al. 2023;
  Liu et al. 2023), ``t ~ U[0, 1]``.
- :class:`StochasticInterpolant` — ``x_t = (1 − t) x0 + t x1 + ε (1 − t) √t ξ`` with a Gaussian or
  "empirical" (condition-as-source) ``x0`` (Albergo et al. 2023; Chen et al. 2024).
- :class:`VESDE` — variance-exploding diffusion with ``σ = 30``, denoising score matching weighted by
  ``σ_t²`` (Song et al. 2021), plus :class:`VEScoreNetwork`, the reference parameterisation
  ``s(t, x, c) = F(t, x, c) / σ_t``.
"""

import math
from dataclasses import dataclass
from typing import Optional

import torch
from torch import Tensor, nn

from closure.batch_shard import RandomSource, draw_rand, draw_randn

__all__ = ["PathSample", "FlowMatching", "MeanFlow", "StochasticInterpolant", "VESDE", "VEScoreNetwork", "ve_std"]


@dataclass(frozen=True)
class PathSample:
    """One draw from a probability path.

    Attributes
    ----------
    t : Tensor, shape (B,)
        Path times.
    x0 : Tensor, shape (B, C, n, n)
        Source sample (for the VE-SDE: the clean data ``x1``, which sits at ``t = 0`` there).
    noise : Tensor, shape (B, C, n, n)
        The extra Gaussian noise of the path (``ξ`` for SI, ``z`` for the VE-SDE, zeros for FM).
    x_t : Tensor, shape (B, C, n, n)
        Point on the path.
    target : Tensor, shape (B, C, n, n)
        Regression target of the network at ``(t, x_t)``.
    """

    t: Tensor
    x0: Tensor
    noise: Tensor
    x_t: Tensor
    target: Tensor


def _broadcast_time(t: Tensor, x: Tensor) -> Tensor:
    """Reshape per-sample times ``(B,)`` to ``(B, 1, 1, 1)`` (any trailing rank of ``x``)."""
    if t.dim() != 1 or t.shape[0] != x.shape[0]:
        raise ValueError(f"t must have shape ({x.shape[0]},), got {tuple(t.shape)}")
    return t.reshape((-1,) + (1,) * (x.dim() - 1)).to(x.dtype)


def _check_same_shape(a: Tensor, b: Tensor, name_a: str, name_b: str) -> None:
    if a.shape != b.shape:
        raise ValueError(f"{name_a} must have the shape of {name_b}, {tuple(b.shape)}; got {tuple(a.shape)}")


def _uniform_times(batch: int, low: float, like: Tensor, generator: RandomSource) -> Tensor:
    """``t ~ U[low, 1]`` of shape ``(batch,)`` on ``like``'s device and dtype (every draw of a path goes
    through :mod:`closure.batch_shard`, so a data-parallel shard draws its rows of the global batch)."""
    u = draw_rand(batch, like, generator)
    return low + (1.0 - low) * u


def _randn_like(x: Tensor, generator: RandomSource) -> Tensor:
    return draw_randn(x.shape, x, generator)


class FlowMatching:
    """Flow matching on the linear (rectified / conditional-OT) path.

    ``x_t = (1 − t) x0 + t x1``,  ``u_t = d x_t / dt = x1 − x0``,
    ``L = E_{t ~ U[0,1]} ‖v(t, x_t, c) − u_t‖²``  (Lipman et al. 2023, eq. 23 with σ_min = 0).

    With ``x0 ~ N(0, I)`` drawn independently of ``(x1, c)`` the minimiser is
    ``v*(t, x, c) = E[x1 − x0 | x_t = x, c]``; at ``t = 0`` this is ``E[x1 | c] − x``, so one Euler step
    ``x1 = x0 + v*(0, x0, c)`` returns the conditional mean for every ``x0`` (no spread). A coupled source
    (``x0`` passed explicitly, e.g. after reflow, or an exact transport map) makes paths straight and one
    step exact.
    """

    def interpolate(self, t: Tensor, x0: Tensor, x1: Tensor) -> Tensor:
        """``x_t = (1 − t) x0 + t x1`` for ``t (B,)``, ``x0, x1 (B, C, n, n)``."""
        _check_same_shape(x0, x1, "x0", "x1")
        tb = _broadcast_time(t, x1)
        return (1.0 - tb) * x0 + tb * x1

    def velocity(self, t: Tensor, x0: Tensor, x1: Tensor) -> Tensor:
        """Target ``u_t = x1 − x0`` (independent of ``t``)."""
        _check_same_shape(x0, x1, "x0", "x1")
        return x1 - x0

    def sample(
        self,
        x1: Tensor,
        x0: Optional[Tensor] = None,
        t: Optional[Tensor] = None,
        generator: RandomSource = None,
    ) -> PathSample:
        """Draw ``(t, x_t, u_t)``; ``x0 ~ N(0, I)`` and ``t ~ U[0, 1]`` unless given."""
        if x0 is None:
            x0 = _randn_like(x1, generator)
        if t is None:
            t = _uniform_times(x1.shape[0], 0.0, x1, generator)
        x_t = self.interpolate(t, x0, x1)
        return PathSample(t=t, x0=x0, noise=torch.zeros_like(x1), x_t=x_t, target=self.velocity(t, x0, x1))

    def loss(
        self,
        network: nn.Module,
        x1: Tensor,
        c: Tensor,
        x0: Optional[Tensor] = None,
        t: Optional[Tensor] = None,
        generator: RandomSource = None,
    ) -> Tensor:
        """Mean squared error ``mean ‖v(t, x_t, c) − (x1 − x0)‖²`` over batch and elements."""
        s = self.sample(x1, x0=x0, t=t, generator=generator)
        return torch.mean((network(s.t, s.x_t, c) - s.target) ** 2)


ADAPTIVE_EPS = 1e-3
"""``ε`` of MeanFlow's adaptive loss weight ``(e + ε)^{-p}``."""


class MeanFlow:
    r"""Average velocity on the linear path (MeanFlow, Geng et al. 2025), in this project's time convention.

    Noise ``x0`` at ``t = 0``, data ``x1`` at ``t = 1``, ``x_t = (1 − t) x0 + t x1``. The average velocity
    of the probability-flow ODE between ``r ≤ t`` is ``u(x_r, r, t) = (x_t − x_r)/(t − r)`` along the
    trajectory through ``x_r`` (``u → v`` as ``r → t``). Differentiating ``(t − r) u = x_t − x_r`` in ``r``
    with ``x_r`` moving on its trajectory gives the MeanFlow identity (SCIENCE.md §3)

    .. math:: u = v + (t - r)\,rac{du}{dr},\qquad rac{du}{dr} = \partial_r u + (
abla_x u)\,v ,

    one forward-mode JVP of the network with tangent ``(v, 1, 0)`` on ``(x_r, r, t)``. The loss regresses
    the network on the stop-gradient target,

    .. math:: L = \mathbb E\,ig\|u_	heta(x_r, r, t, c) - \mathrm{sg}ig(v_r + (t - r)\,
              	frac{d u_	heta}{dr}ig)ig\|^2,\qquad v_r = x_1 - x_0,

    with ``(r, t)`` two sorted uniform times, and ``r = t`` (plain flow matching) for a share
    ``equal_fraction`` of the pairs. The exact minimiser maps noise to a sample of ``p(x1 | c)`` in ONE
    step, ``x1 = x0 + u(x0, 0, 1, c)``: the jump along the ODE, not the first tangent (which would land on
    ``E[x1 | c]``, see :class:`FlowMatching`). Closed-form check: for ``v = a τ`` the average velocity
    ``u = a (t + r)/2`` satisfies the identity.

    The network is called ``network(r, x_r, c, t)`` (start time first, the end time as ``t_end``).

    The per-sample squared error ``e`` is weighted by ``sg((e + ε)^{-p})`` (MeanFlow's adaptive loss, ``p = 1``
    by default: a robust, scale-free loss; ``p = 0`` is the plain mean squared error).

    Parameters
    ----------
    equal_fraction : float
        Share of pairs with ``r = t`` (0.5 in SCIENCE.md's toy check; the MeanFlow paper uses 0.75).
    adaptive_power : float
        ``p`` of the adaptive weighting.
    """

    def __init__(self, equal_fraction: float = 0.5, adaptive_power: float = 1.0) -> None:
        if not 0.0 <= equal_fraction <= 1.0:
            raise ValueError(f"equal_fraction must lie in [0, 1], got {equal_fraction}")
        if not adaptive_power >= 0.0:
            raise ValueError(f"adaptive_power must be >= 0, got {adaptive_power}")
        self.equal_fraction = float(equal_fraction)
        self.adaptive_power = float(adaptive_power)

    def times(self, batch: int, like: Tensor, generator: RandomSource) -> tuple[Tensor, Tensor]:
        """``(r, t)`` of shape ``(B,)``: sorted uniform pairs, ``r = t`` for a share ``equal_fraction``."""
        a = _uniform_times(batch, 0.0, like, generator)
        b = _uniform_times(batch, 0.0, like, generator)
        r, t = torch.minimum(a, b), torch.maximum(a, b)
        equal = draw_rand(batch, like, generator) < self.equal_fraction
        return torch.where(equal, t, r), t

    def target(self, network: nn.Module, x_r: Tensor, r: Tensor, t: Tensor, v: Tensor, c: Tensor) -> tuple[Tensor, Tensor]:
        """Network output ``u_θ(x_r, r, t, c)`` (with graph) and the stop-gradient MeanFlow target."""

        def u(x: Tensor, r_: Tensor, t_: Tensor) -> Tensor:
            return network(r_, x, c, t_)

        out, du_dr = torch.func.jvp(u, (x_r, r, t), (v, torch.ones_like(r), torch.zeros_like(t)))
        target = v + _broadcast_time(t - r, v) * du_dr
        return out, target.detach()

    def loss(
        self,
        network: nn.Module,
        x1: Tensor,
        c: Tensor,
        x0: Optional[Tensor] = None,
        generator: RandomSource = None,
    ) -> Tensor:
        """Mean squared error between ``u_θ`` and the MeanFlow target over batch and elements."""
        if x0 is None:
            x0 = _randn_like(x1, generator)
        r, t = self.times(x1.shape[0], x1, generator)
        x_r = FlowMatching().interpolate(r, x0, x1)  # the same linear path, at the start time r
        out, target = self.target(network, x_r, r, t, x1 - x0, c)
        err = ((out - target) ** 2).reshape(x1.shape[0], -1).mean(dim=1)
        if self.adaptive_power == 0.0:
            return err.mean()
        weight = (err.detach() + ADAPTIVE_EPS) ** (-self.adaptive_power)
        return (weight * err).mean()


class StochasticInterpolant:
    """Stochastic interpolant with a Brownian latent term (Chen et al. 2024, "Föllmer" interpolant).

    Interpolant (SCIENCE.md §3, ``ε = 1`` there)::

        x_t = (1 − t) x0 + t x1 + ε (1 − t) W_t,    W_t = √t ξ,   ξ ~ N(0, I)

    so ``γ(t) = ε (1 − t) √t`` multiplies ``ξ``. Source ``x0``: ``"gaussian"`` (``N(0, I)``, independent of
    the condition) or ``"empirical"`` (the condition mapped to the target space, passed explicitly).

    Drift target. The pathwise derivative ``x1 − x0 + γ'(t) ξ`` is singular at ``t = 0``
    (``γ' ~ ε / (2 √t)``). Read ``W_t`` as a Brownian motion instead; Itô's formula gives
    ``d x_t = (x1 − x0 − ε W_t) dt + ε (1 − t) dW_t``, whose drift part is the regression target::

        R_t = x1 − x0 − ε √t ξ,     L = E ‖b(t, x_t, c) − R_t‖²,   t ~ U[0, 1].

    SDE integrated by the sampler (:class:`closure.samplers.InterpolantEulerMaruyama`)::

        dX_t = b(t, X_t, c) dt + ε (1 − t) dW_t,    X_0 = x0,   t: 0 → 1.

    Its one-time marginals equal those of ``x_t`` given ``c`` (Gyöngy's mimicking theorem: the
    diffusion coefficient ``ε (1 − t)`` is deterministic and ``b = E[R_t | x_t, c]``), so no score or
    denoiser is needed; the noise vanishes at ``t = 1``.

    Parameters
    ----------
    source : {"gaussian", "empirical"}
        Source distribution.
    noise_scale : float
        ``ε`` (1 in the reference).
    """

    def __init__(self, source: str = "gaussian", noise_scale: float = 1.0) -> None:
        if source not in ("gaussian", "empirical"):
            raise ValueError(f"source must be 'gaussian' or 'empirical', got {source!r}")
        if not noise_scale >= 0.0:
            raise ValueError(f"noise_scale must be >= 0, got {noise_scale}")
        self.source = source
        self.noise_scale = float(noise_scale)

    def gamma(self, t: Tensor) -> Tensor:
        """Noise amplitude ``γ(t) = ε (1 − t) √t`` of ``ξ`` in ``x_t``."""
        return self.noise_scale * (1.0 - t) * torch.sqrt(t)

    def diffusion(self, t: Tensor) -> Tensor:
        """Diffusion coefficient ``ε (1 − t)`` of the sampling SDE."""
        return self.noise_scale * (1.0 - t)

    def interpolate(self, t: Tensor, x0: Tensor, x1: Tensor, xi: Tensor) -> Tensor:
        """``x_t = (1 − t) x0 + t x1 + ε (1 − t) √t ξ``."""
        _check_same_shape(x0, x1, "x0", "x1")
        _check_same_shape(xi, x1, "xi", "x1")
        tb = _broadcast_time(t, x1)
        return (1.0 - tb) * x0 + tb * x1 + self.gamma(tb) * xi

    def drift(self, t: Tensor, x0: Tensor, x1: Tensor, xi: Tensor) -> Tensor:
        """Drift target ``R_t = x1 − x0 − ε √t ξ`` (Itô drift of ``x_t``)."""
        _check_same_shape(x0, x1, "x0", "x1")
        _check_same_shape(xi, x1, "xi", "x1")
        tb = _broadcast_time(t, x1)
        return x1 - x0 - self.noise_scale * torch.sqrt(tb) * xi

    def sample(
        self,
        x1: Tensor,
        x0: Optional[Tensor] = None,
        t: Optional[Tensor] = None,
        xi: Optional[Tensor] = None,
        generator: RandomSource = None,
    ) -> PathSample:
        """Draw ``(t, x_t, R_t)``; ``x0`` is required for the empirical source."""
        if x0 is None:
            if self.source == "empirical":
                raise ValueError("the empirical source needs x0 (the condition mapped to the target space)")
            x0 = _randn_like(x1, generator)
        if xi is None:
            xi = _randn_like(x1, generator)
        if t is None:
            t = _uniform_times(x1.shape[0], 0.0, x1, generator)
        return PathSample(
            t=t, x0=x0, noise=xi, x_t=self.interpolate(t, x0, x1, xi), target=self.drift(t, x0, x1, xi)
        )

    def loss(
        self,
        network: nn.Module,
        x1: Tensor,
        c: Tensor,
        x0: Optional[Tensor] = None,
        t: Optional[Tensor] = None,
        xi: Optional[Tensor] = None,
        generator: RandomSource = None,
    ) -> Tensor:
        """Mean squared error ``mean ‖b(t, x_t, c) − R_t‖²`` over batch and elements."""
        s = self.sample(x1, x0=x0, t=t, xi=xi, generator=generator)
        return torch.mean((network(s.t, s.x_t, c) - s.target) ** 2)


def ve_std(t: Tensor, sigma: float) -> Tensor:
    """Marginal standard deviation of the VE-SDE ``dx = σ^t dW``: ``σ_t = √((σ^{2t} − 1) / (2 ln σ))``."""
    log_sigma = math.log(sigma)
    return torch.sqrt(torch.expm1(2.0 * log_sigma * t) / (2.0 * log_sigma))


class VESDE:
    """Variance-exploding SDE ``dx = σ^t dW``, ``t ∈ [0, 1]`` (Song et al. 2021, "SMLD" with σ = 30).

    - diffusion coefficient ``g(t) = σ^t``;
    - perturbation kernel ``x_t = x + σ_t z``, ``z ~ N(0, I)``, ``σ_t² = ∫_0^t g² = (σ^{2t} − 1)/(2 ln σ)``;
    - conditional score ``∇ log p(x_t | x) = −z / σ_t``;
    - denoising score matching with weight ``λ(t) = σ_t²`` (the reference)::

          L = E_{t ~ U[t_eps, 1]} σ_t² ‖s(t, x_t, c) + z / σ_t‖² = E ‖σ_t s(t, x_t, c) + z‖².

    Here ``t = 0`` is the data (``x1`` of the other paths) and ``t = 1`` the noise.

    Parameters
    ----------
    sigma : float
        ``σ`` (30 in the reference).
    t_eps : float
        Smallest training time (``σ_t → 0`` at ``t = 0``).
    """

    def __init__(self, sigma: float = 30.0, t_eps: float = 1e-5) -> None:
        if not sigma > 1.0:
            raise ValueError(f"sigma must be > 1, got {sigma}")
        if not 0.0 < t_eps < 1.0:
            raise ValueError(f"t_eps must lie in (0, 1), got {t_eps}")
        self.sigma = float(sigma)
        self.t_eps = float(t_eps)

    def std(self, t: Tensor) -> Tensor:
        """``σ_t = √((σ^{2t} − 1) / (2 ln σ))``."""
        return ve_std(t, self.sigma)

    def diffusion(self, t: Tensor) -> Tensor:
        """``g(t) = σ^t``."""
        return torch.exp(math.log(self.sigma) * t)

    def time_of_std(self, std: Tensor) -> Tensor:
        """Inverse of :meth:`std`: ``t = ln(1 + 2 ln σ · σ_t²) / (2 ln σ)``."""
        two_log = 2.0 * math.log(self.sigma)
        return torch.log1p(two_log * std**2) / two_log

    def perturb(self, t: Tensor, x1: Tensor, z: Tensor) -> Tensor:
        """``x_t = x1 + σ_t z``."""
        _check_same_shape(z, x1, "z", "x1")
        return x1 + self.std(_broadcast_time(t, x1)) * z

    def score(self, t: Tensor, z: Tensor) -> Tensor:
        """Conditional score target ``−z / σ_t``."""
        return -z / self.std(_broadcast_time(t, z))

    def sample(
        self,
        x1: Tensor,
        t: Optional[Tensor] = None,
        z: Optional[Tensor] = None,
        generator: RandomSource = None,
    ) -> PathSample:
        """Draw ``(t, x_t, −z/σ_t)``; ``t ~ U[t_eps, 1]`` and ``z ~ N(0, I)`` unless given."""
        if z is None:
            z = _randn_like(x1, generator)
        if t is None:
            t = _uniform_times(x1.shape[0], self.t_eps, x1, generator)
        return PathSample(t=t, x0=x1, noise=z, x_t=self.perturb(t, x1, z), target=self.score(t, z))

    def loss(
        self,
        score_network: nn.Module,
        x1: Tensor,
        c: Tensor,
        t: Optional[Tensor] = None,
        z: Optional[Tensor] = None,
        generator: RandomSource = None,
    ) -> Tensor:
        """``mean ‖σ_t s(t, x_t, c) + z‖²`` over batch and elements (σ_t²-weighted DSM).

        The reference sums over elements and averages over the batch; that is this loss times the
        number of elements per sample.
        """
        s = self.sample(x1, t=t, z=z, generator=generator)
        std = self.std(_broadcast_time(s.t, x1))
        return torch.mean((std * score_network(s.t, s.x_t, c) + s.noise) ** 2)


class VEScoreNetwork(nn.Module):
    """Score model with the reference output scaling ``s(t, x, c) = F(t, x, c) / σ_t``.

    Dividing by ``σ_t`` lets ``F`` predict ``−z`` (order one) at every noise level.

    Parameters
    ----------
    network : nn.Module
        ``F`` with the common interface.
    sigma : float
        ``σ`` of the VE-SDE.
    """

    def __init__(self, network: nn.Module, sigma: float = 30.0) -> None:
        super().__init__()
        if not sigma > 1.0:
            raise ValueError(f"sigma must be > 1, got {sigma}")
        self.network = network
        self.sigma = float(sigma)

    def forward(self, t: Tensor, x_t: Tensor, c: Tensor) -> Tensor:
        """Score ``(B, C, n, n)`` at times ``t (B,)``."""
        if t.dim() == 0:
            t = t.expand(x_t.shape[0])
        std = ve_std(t.to(x_t.dtype), self.sigma)
        return self.network(t, x_t, c) / std[:, None, None, None]
