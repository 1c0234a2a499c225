"""Samplers: integrate a trained path from its source to a sample of ``p(x1 | c)``.

Every sampler is an ``nn.Module`` that owns its network, so ``torch.jit.script(sampler)`` exports the
whole generator. One call signature for all of them::

    sampler(x_init: Tensor (B, C, n, n), c: Tensor (B, Cc, m, m),
            step_noise: Optional[Tensor] (n_steps, B, C, n, n) = None) -> Tensor (B, C, n, n)

- ``x_init`` is the source sample, given explicitly so that an exported artifact can be called with fixed
  noise: ``N(0, I)`` for flow matching, the Gaussian or empirical source for stochastic interpolants, and
  ``N(0, I)`` for the VE-SDE samplers (scaled inside by ``σ_{t_max}``).
- ``step_noise`` are the standard-normal per-step increments of the stochastic samplers. ``None`` draws
  them with ``torch.randn_like`` (global RNG); deterministic samplers ignore the argument.
- ``trajectory(x_init, c, step_noise)`` returns all states ``(n_steps + 1, B, C, n, n)`` and the
  straightness ``S = ‖x_N − x_0‖ / Σ_k ‖x_{k+1} − x_k‖`` per sample (1 for a straight path).

Time grids are float64 buffers, cast to the dtype of ``x_init`` at every call (so a float64 run is
not limited by a float32 grid). Each sampler has the attributes ``name`` and ``nfe`` (network evaluations per sample) and a
:meth:`Sampler.describe` line pairing its named settings with its NFE (after EDM's README).

Samplers
--------
========================  ======================  ====================================  ==============
class                     path                    default settings                       NFE
========================  ======================  ====================================  ==============
FlowEuler                 FlowMatching            n_steps = 1 (conditional mean!)        n_steps
MeanFlowJump              MeanFlow                n_steps = 1 (one-step sample)          n_steps
InterpolantEulerMaruyama  StochasticInterpolant   n_steps                                n_steps
VEEulerMaruyama           VESDE (σ = 30)          10 steps, Karras ρ = 7, t ∈ [1e-3, t_max]  n_steps
VEHeun                    VESDE (σ = 30)          18 steps, Karras ρ = 7 in σ                2 n_steps − 1
========================  ======================  ====================================  ==============

``t_max = 0.1`` on physical fields and ``0.4`` on latents *(reference code)*: see :data:`T_MAX_PHYSICAL`
and :data:`T_MAX_LATENT`.
"""

import math
from typing import Dict, List, Optional, Tuple

import torch
from torch import Tensor, nn

from closure.paths import ve_std

__all__ = [
    "T_MAX_PHYSICAL",
    "T_MAX_LATENT",
    "T_MIN",
    "karras_grid",
    "straightness",
    "Sampler",
    "FlowEuler",
    "MeanFlowJump",
    "InterpolantEulerMaruyama",
    "VEEulerMaruyama",
    "VEHeun",
]

T_MAX_PHYSICAL: float = 0.1
"""Largest VE-SDE time of the reference sampler on physical 64² fields *(code)*."""
T_MAX_LATENT: float = 0.4
"""Largest VE-SDE time of the reference sampler on 16² latents *(code)*."""
T_MIN: float = 1e-3
"""Smallest VE-SDE time of the reference sampler *(code)*."""


def karras_grid(n: int, t_max: float, t_min: float, rho: float = 7.0) -> Tensor:
    """Karras et al. (2022) eq. (5) time grid, descending from ``t_max`` to ``t_min``.

    ``t_i = (t_max^{1/ρ} + i/(n − 1) · (t_min^{1/ρ} − t_max^{1/ρ}))^ρ``,  ``i = 0, …, n − 1``.
    ``ρ = 7`` concentrates points near ``t_min``. ``n = 1`` gives ``[t_max]``.

    Parameters
    ----------
    n : int
        Number of grid points (>= 1).
    t_max, t_min : float
        End points, ``t_max > t_min > 0`` (they may be times or noise levels σ).
    rho : float
        Exponent ``ρ`` (> 0).

    Returns
    -------
    Tensor, shape (n,), float64
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    if not t_max > t_min > 0.0:
        raise ValueError(f"need t_max > t_min > 0, got t_max={t_max}, t_min={t_min}")
    if not rho > 0.0:
        raise ValueError(f"rho must be > 0, got {rho}")
    if n == 1:
        return torch.tensor([t_max], dtype=torch.float64)
    i = torch.arange(n, dtype=torch.float64)
    a, b = t_max ** (1.0 / rho), t_min ** (1.0 / rho)
    grid = (a + i / (n - 1) * (b - a)) ** rho
    grid[0], grid[-1] = t_max, t_min  # exact end points, free of round-off
    return grid


def straightness(states: Tensor) -> Tensor:
    """Straightness ``S = ‖x_N − x_0‖ / Σ_{k<N} ‖x_{k+1} − x_k‖`` of each sampled path.

    Parameters
    ----------
    states : Tensor, shape (N + 1, B, ...)
        States along the path (``N >= 1``).

    Returns
    -------
    Tensor, shape (B,)
        ``S ∈ [0, 1]`` (triangle inequality), 1 for a straight path; ``1`` for paths of zero length.
    """
    if states.dim() < 2 or states.shape[0] < 2:
        raise ValueError("states must have shape (N + 1, B, ...) with N >= 1, got " + str(list(states.shape)))
    flat = states.reshape(states.shape[0], states.shape[1], -1)
    chord = torch.linalg.vector_norm(flat[-1] - flat[0], dim=-1)
    length = torch.linalg.vector_norm(flat[1:] - flat[:-1], dim=-1).sum(dim=0)
    return torch.where(length > 0, chord / torch.clamp(length, min=1e-30), torch.ones_like(length))


def _check_inputs(x: Tensor, c: Tensor) -> None:
    if x.dim() != 4:
        raise ValueError("x_init must have shape (B, C, n, n), got " + str(list(x.shape)))
    if c.dim() != 4 or c.shape[0] != x.shape[0]:
        raise ValueError(
            "c must have shape (" + str(x.shape[0]) + ", Cc, m, m), got " + str(list(c.shape))
        )


def _check_noise(step_noise: Tensor, n_steps: int, x: Tensor) -> None:
    expected = [n_steps] + list(x.shape)
    if list(step_noise.shape) != expected:
        raise ValueError("step_noise must have shape " + str(expected) + ", got " + str(list(step_noise.shape)))


class Sampler(nn.Module):
    """Base class: owns ``network`` and runs ``_run``; subclasses define the scheme.

    Attributes
    ----------
    name : str
        Scheme name.
    n_steps : int
        Integration steps.
    nfe : int
        Network evaluations per sample.
    """

    def __init__(self, network: nn.Module, n_steps: int, name: str, nfe: int) -> None:
        super().__init__()
        if n_steps < 1:
            raise ValueError(f"n_steps must be >= 1, got {n_steps}")
        self.network = network
        self.n_steps = n_steps
        self.name = name
        self.nfe = nfe

    def settings(self) -> Dict[str, float]:
        """Named settings of the scheme (for logs and file metadata)."""
        return {"n_steps": float(self.n_steps)}

    def describe(self) -> str:
        """One line: name, settings and NFE, e.g. ``fm-euler(n_steps=1) NFE=1``."""
        items = ", ".join(f"{k}={v:g}" for k, v in self.settings().items())
        return f"{self.name}({items}) NFE={self.nfe}"

    def _run(self, x_init: Tensor, c: Tensor, step_noise: Optional[Tensor], keep: bool) -> Tuple[Tensor, List[Tensor]]:
        raise NotImplementedError("Sampler subclasses implement _run")

    def forward(self, x_init: Tensor, c: Tensor, step_noise: Optional[Tensor] = None) -> Tensor:
        """Sample ``(B, C, n, n)`` from source ``x_init`` given condition ``c``."""
        _check_inputs(x_init, c)
        x, _ = self._run(x_init, c, step_noise, False)
        return x

    @torch.jit.export
    def trajectory(self, x_init: Tensor, c: Tensor, step_noise: Optional[Tensor] = None) -> Tuple[Tensor, Tensor]:
        """All states ``(n_steps + 1, B, C, n, n)`` and the straightness ``(B,)`` of each path."""
        _check_inputs(x_init, c)
        _, states = self._run(x_init, c, step_noise, True)
        stacked = torch.stack(states, dim=0)
        return stacked, straightness(stacked)


class FlowEuler(Sampler):
    """Forward-Euler integration of the flow-matching ODE ``dx/dt = v(t, x, c)``, ``t: 0 → 1``.

    ``x_{k+1} = x_k + Δt v(t_k, x_k, c)``, ``t_k = k Δt``, ``Δt = 1 / n_steps``. One step,
    ``x1 = x0 + v(0, x0, c)``, lands on the conditional mean ``E[x1 | c]`` for a network trained with
    independent noise, and on a sample only for straight (coupled, e.g. reflow) paths.

    Parameters
    ----------
    network : nn.Module
        Velocity field ``v(t, x_t, c)``.
    n_steps : int
        Euler steps (= NFE).
    """

    def __init__(self, network: nn.Module, n_steps: int = 1) -> None:
        super().__init__(network, n_steps, "fm-euler", n_steps)
        self.register_buffer("times", torch.linspace(0.0, 1.0, n_steps + 1, dtype=torch.float64))

    def _run(self, x_init: Tensor, c: Tensor, step_noise: Optional[Tensor], keep: bool) -> Tuple[Tensor, List[Tensor]]:
        x = x_init
        states: List[Tensor] = [x] if keep else []
        batch = x.shape[0]
        times = self.times.to(x.dtype)
        for k in range(self.n_steps):
            dt = times[k + 1] - times[k]
            x = x + dt * self._velocity(times[k].expand(batch), times[k + 1].expand(batch), x, c)
            if keep:
                states.append(x)
        return x, states

    def _velocity(self, t: Tensor, t_next: Tensor, x: Tensor, c: Tensor) -> Tensor:
        """The field the step follows from ``t`` to ``t_next``: the instantaneous velocity ``v(t, x, c)``."""
        return self.network(t, x, c)


class MeanFlowJump(FlowEuler):
    """Jumps along the flow-matching ODE with a learned average velocity (:class:`closure.paths.MeanFlow`).

    ``x_{k+1} = x_k + (t_{k+1} − t_k) u(x_k, t_k, t_{k+1}, c)``, ``t_k = k / n_steps``. With the exact average
    velocity every ``n_steps`` lands on the ODE's end point, so ONE step ``x1 = x0 + u(x0, 0, 1, c)`` is a
    sample of ``p(x1 | c)`` (unlike one :class:`FlowEuler` step, which lands on ``E[x1 | c]``).

    Parameters
    ----------
    network : nn.Module
        Average-velocity field called as ``network(r, x_r, c, t_end)``.
    n_steps : int
        Jumps (= NFE).
    """

    def __init__(self, network: nn.Module, n_steps: int = 1) -> None:
        super().__init__(network, n_steps)
        self.name = "meanflow"

    def _velocity(self, t: Tensor, t_next: Tensor, x: Tensor, c: Tensor) -> Tensor:
        """The average velocity ``u(x, t, t_next, c)`` of the jump."""
        return self.network(t, x, c, t_next)


class InterpolantEulerMaruyama(Sampler):
    """Euler–Maruyama for the stochastic-interpolant SDE ``dX = b(t, X, c) dt + ε (1 − t) dW``, ``t: 0 → 1``.

    ``X_{k+1} = X_k + Δt b(t_k, X_k, c) + ε (1 − t_k) √Δt η_k``, ``η_k ~ N(0, I)``, ``t_k = k Δt``,
    ``Δt = 1 / n_steps`` (see :class:`closure.paths.StochasticInterpolant` for why this SDE has the
    interpolant's marginals). ``x_init`` is the source: ``N(0, I)`` or the empirical (condition) source.

    Parameters
    ----------
    network : nn.Module
        Drift ``b(t, x_t, c)``.
    n_steps : int
        Steps (= NFE).
    noise_scale : float
        ``ε``; must match the interpolant used in training.
    """

    def __init__(self, network: nn.Module, n_steps: int = 10, noise_scale: float = 1.0) -> None:
        super().__init__(network, n_steps, "si-euler-maruyama", n_steps)
        if not noise_scale >= 0.0:
            raise ValueError(f"noise_scale must be >= 0, got {noise_scale}")
        self.noise_scale = float(noise_scale)
        self.register_buffer("times", torch.linspace(0.0, 1.0, n_steps + 1, dtype=torch.float64))

    def settings(self) -> Dict[str, float]:
        return {"n_steps": float(self.n_steps), "noise_scale": self.noise_scale}

    def _run(self, x_init: Tensor, c: Tensor, step_noise: Optional[Tensor], keep: bool) -> Tuple[Tensor, List[Tensor]]:
        if step_noise is not None:
            _check_noise(step_noise, self.n_steps, x_init)
        x = x_init
        states: List[Tensor] = [x] if keep else []
        batch = x.shape[0]
        times = self.times.to(x.dtype)
        for k in range(self.n_steps):
            t = times[k]
            dt = times[k + 1] - t
            if step_noise is None:
                eta = torch.randn_like(x)
            else:
                eta = step_noise[k]
            x = x + dt * self.network(t.expand(batch), x, c) + self.noise_scale * (1.0 - t) * torch.sqrt(dt) * eta
            if keep:
                states.append(x)
        return x, states


class _VESampler(Sampler):
    """Shared settings of the VE-SDE samplers: σ (> 1), the time range and the Karras exponent ρ."""

    def __init__(self, score_network: nn.Module, n_steps: int, name: str, nfe: int, sigma: float, t_max: float,
                 t_min: float, rho: float) -> None:
        super().__init__(score_network, n_steps, name, nfe)
        if not sigma > 1.0:
            raise ValueError(f"sigma must be > 1, got {sigma}")
        self.sigma = float(sigma)
        self.t_max = float(t_max)
        self.t_min = float(t_min)
        self.rho = float(rho)

    def settings(self) -> Dict[str, float]:
        return {"n_steps": float(self.n_steps), "sigma": self.sigma, "t_max": self.t_max, "t_min": self.t_min, "rho": self.rho}


class VEEulerMaruyama(_VESampler):
    """Euler–Maruyama for the reverse VE-SDE on a Karras time grid (the reference DM sampler).

    Reverse-time SDE (Song et al. 2021, eq. 6) of ``dx = g dW``, ``g(t) = σ^t``::

        dx = −g(t)² s(t, x, c) dt + g(t) dW̄,   t: t_max → 0.

    Grid: ``t_0 > … > t_{n−1}`` from :func:`karras_grid` (``t_0 = t_max``, ``t_{n−1} = t_min``, ρ = 7) and
    ``t_n = 0``. Start ``x_0 = σ_{t_max} x_init``. Step ``i = 0, …, n − 1`` with ``Δ_i = t_i − t_{i+1}``::

        m_i = x_i + g(t_i)² s(t_i, x_i, c) Δ_i
        x_{i+1} = m_i + g(t_i) √Δ_i η_i          (i < n − 1);   the last step returns m_{n−1}

    (no noise in the last step, as in the reference). ``step_noise`` has shape ``(n_steps, B, C, n, n)``
    for a uniform interface; its last slice is not used.

    Accuracy notes (σ = 30, 10 steps; checked with the exact score of a Gaussian, see the tests):

    - The start ``N(0, σ_{t_max}² I)`` is the true marginal ``p_{t_max}`` only if the data (mean and
      spread) are small next to ``σ_{t_max}`` (0.38 at ``t_max = 0.1``, 1.44 at 0.4); otherwise samples
      are pulled towards 0 — for data ``N(1, 0.5²)`` the 10-step sampler at ``t_max = 0.1`` returns
      mean 0.39. Normalise the targets accordingly, or use ``t_max = 1``.
    - With ``t_max = 1`` the first step has ``g² Δ / σ_t² = 2.7 > 2`` and overshoots (Euler–Maruyama
      is unstable there); the reverse SDE then has to contract the error in the remaining steps, and
      10 steps leave the spread ~20 % too large (50 steps: ~2 %). At ``t_max = 0.4`` the ratio is 1.08.

    Parameters
    ----------
    score_network : nn.Module
        Score ``s(t, x_t, c)`` (e.g. :class:`closure.paths.VEScoreNetwork`).
    sigma : float
        ``σ`` of the VE-SDE (30).
    n_steps : int
        Steps (= NFE), 10 in the reference.
    t_max, t_min : float
        Time range (reference: ``t_max`` 0.1 physical / 0.4 latent, ``t_min = 1e-3``).
    rho : float
        Karras exponent (7).
    """

    def __init__(
        self,
        score_network: nn.Module,
        sigma: float = 30.0,
        n_steps: int = 10,
        t_max: float = T_MAX_PHYSICAL,
        t_min: float = T_MIN,
        rho: float = 7.0,
    ) -> None:
        super().__init__(score_network, n_steps, "ve-euler-maruyama", n_steps, sigma, t_max, t_min, rho)
        grid = torch.cat([karras_grid(n_steps, t_max, t_min, rho), torch.zeros(1, dtype=torch.float64)])
        self.register_buffer("times", grid)
        self.start_std = float(ve_std(torch.tensor(t_max, dtype=torch.float64), sigma))

    def _run(self, x_init: Tensor, c: Tensor, step_noise: Optional[Tensor], keep: bool) -> Tuple[Tensor, List[Tensor]]:
        if step_noise is not None:
            _check_noise(step_noise, self.n_steps, x_init)
        x = self.start_std * x_init
        states: List[Tensor] = [x] if keep else []
        batch = x.shape[0]
        times = self.times.to(x.dtype)
        log_sigma = math.log(self.sigma)
        for i in range(self.n_steps):
            t = times[i]
            dt = t - times[i + 1]
            g = torch.exp(log_sigma * t)
            x = x + g * g * self.network(t.expand(batch), x, c) * dt
            if i < self.n_steps - 1:
                if step_noise is None:
                    eta = torch.randn_like(x)
                else:
                    eta = step_noise[i]
                x = x + g * torch.sqrt(dt) * eta
            if keep:
                states.append(x)
        return x, states


class VEHeun(_VESampler):
    """EDM deterministic Heun sampler (Karras et al. 2022, Alg. 1, ``S_churn = 0``) for the VE-SDE.

    Probability-flow ODE in noise-level space (Karras et al. eq. 3 with ``σ(t) = t``, ``s(t) = 1``)::

        dx/dσ = −σ ∇_x log p(x; σ),   σ: σ_max → 0,

    which is the VE-SDE probability flow ``dx/dt = −½ g(t)² s(t, x, c)`` after the change of variable
    ``σ = σ_t`` (``d σ_t² / dt = g(t)²``). The score network is called at the SDE time of each level,
    ``t(σ) = ln(1 + 2 ln σ_SDE · σ²) / (2 ln σ_SDE)``.

    Levels: ``σ_0 > … > σ_{N−1}`` from :func:`karras_grid` between ``σ_max = σ_{t_max}`` and
    ``σ_min = σ_{t_min}`` (eq. 5, ρ = 7), and ``σ_N = 0`` (eq. 5, the appended zero). Start
    ``x_0 = σ_max x_init``. Step ``i`` (Alg. 1 lines 4–8)::

        d_i = −σ_i s(t(σ_i), x_i, c)
        x̃ = x_i + (σ_{i+1} − σ_i) d_i
        if σ_{i+1} > 0:   d' = −σ_{i+1} s(t(σ_{i+1}), x̃, c);   x_{i+1} = x_i + (σ_{i+1} − σ_i)(d_i + d')/2
        else:             x_{i+1} = x̃

    NFE = ``2 N − 1`` (35 for ``N = 18``). Deterministic: ``step_noise`` is ignored.

    Parameters
    ----------
    score_network : nn.Module
        Score ``s(t, x_t, c)`` (SDE time ``t``).
    sigma : float
        ``σ`` of the VE-SDE (30).
    n_steps : int
        ``N`` (18 in EDM's CIFAR-10 setting).
    t_max, t_min : float
        SDE-time range mapped to ``σ_max``, ``σ_min``.
    rho : float
        Karras exponent (7).
    """

    def __init__(
        self,
        score_network: nn.Module,
        sigma: float = 30.0,
        n_steps: int = 18,
        t_max: float = T_MAX_PHYSICAL,
        t_min: float = T_MIN,
        rho: float = 7.0,
    ) -> None:
        super().__init__(score_network, n_steps, "ve-heun", 2 * n_steps - 1, sigma, t_max, t_min, rho)
        sigma_max = float(ve_std(torch.tensor(t_max, dtype=torch.float64), sigma))
        sigma_min = float(ve_std(torch.tensor(t_min, dtype=torch.float64), sigma))
        levels = torch.cat([karras_grid(n_steps, sigma_max, sigma_min, rho), torch.zeros(1, dtype=torch.float64)])
        two_log = 2.0 * math.log(sigma)
        times = torch.log1p(two_log * levels**2) / two_log
        self.register_buffer("levels", levels)
        self.register_buffer("times", times)
        self.sigma_max = sigma_max

    def _run(self, x_init: Tensor, c: Tensor, step_noise: Optional[Tensor], keep: bool) -> Tuple[Tensor, List[Tensor]]:
        x = self.sigma_max * x_init
        states: List[Tensor] = [x] if keep else []
        batch = x.shape[0]
        levels = self.levels.to(x.dtype)
        times = self.times.to(x.dtype)
        for i in range(self.n_steps):
            s_i = levels[i]
            s_next = levels[i + 1]
            d = -s_i * self.network(times[i].expand(batch), x, c)
            x_euler = x + (s_next - s_i) * d
            if i < self.n_steps - 1:
                d_next = -s_next * self.network(times[i + 1].expand(batch), x_euler, c)
                x = x + (s_next - s_i) * 0.5 * (d + d_next)
            else:
                x = x_euler
            if keep:
                states.append(x)
        return x, states
