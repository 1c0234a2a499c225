"""The sampling path of every closure model, in one scriptable module.

::

    ω_n (B, 1, N, N) → condition coder → c = (z_ω − a_ω) / b_ω                       (B, 1, n, n)
    noise → source x0 (+ per-step noise; the condition itself for the empirical SI source)
    sampler(x0, c, step_noise) → x1 → z = b x1 + a → target decoder → H_n (B, 1, N, N)

:class:`ClosureSampler` is what :meth:`closure.models.ClosureModel.sample` runs eagerly and what
:class:`closure.export.ClosureArtifact` scripts (the artifact only adds the physical normalisation of
ω and H around it), so the export self-check compares this module with its own scripted copy.

The scalar standardisation ``(a, b)`` of the target latent and ``(a_ω, b_ω)`` of the condition latent
are the model's buffers, shared (not copied): training sets them in place
(:meth:`closure.models.ClosureModel.set_standardisation`), and every sampler built from the model sees
the new values.

Noise layout (:meth:`ClosureSampler.noise_shape`): ``(B, 1, n, n)`` — the source sample — for the
deterministic samplers (FM Euler, MeanFlow jumps, VE Heun); ``(n_steps + 1, B, 1, n, n)`` for those
with per-step noise (SI and VE Euler–Maruyama): ``noise[0]`` the source, ``noise[1:]`` the increments.
"""

from __future__ import annotations

from typing import List, Optional

import torch
from torch import Tensor, nn

__all__ = ["ClosureSampler", "standardise", "destandardise"]


def standardise(z: Tensor, shift: Tensor, scale: Tensor) -> Tensor:
    """``(z − a) / b`` with scalar tensors ``a, b`` cast to ``z``'s dtype."""
    return (z - shift.to(z.dtype)) / scale.to(z.dtype)


def destandardise(x: Tensor, shift: Tensor, scale: Tensor) -> Tensor:
    """``b x + a``, the inverse of :func:`standardise`."""
    return x * scale.to(x.dtype) + shift.to(x.dtype)


class ClosureSampler(nn.Module):
    """Normalised coarse vorticity + explicit noise → one normalised closure sample per member.

    Parameters
    ----------
    condition_coder, target_coder : nn.Module
        Coders with ``encode`` / ``decode`` (shared with the model, not copied).
    sampler : nn.Module
        A :class:`closure.samplers.Sampler` owning the network.
    latent_shift, latent_scale, condition_shift, condition_scale : Tensor
        Scalar standardisation buffers of the model (shared).
    stochastic : bool
        Whether the sampler takes per-step noise.
    empirical : bool
        Whether the source is the condition itself (empirical stochastic interpolant).
    state_size : int
        ``n`` of the generator's ``(B, 1, n, n)`` state.
    """

    def __init__(self, condition_coder: nn.Module, target_coder: nn.Module, sampler: nn.Module,
                 latent_shift: Tensor, latent_scale: Tensor, condition_shift: Tensor, condition_scale: Tensor,
                 stochastic: bool, empirical: bool, state_size: int) -> None:
        super().__init__()
        self.condition_coder = condition_coder
        self.target_coder = target_coder
        self.sampler = sampler
        self.register_buffer("latent_shift", latent_shift)
        self.register_buffer("latent_scale", latent_scale)
        self.register_buffer("condition_shift", condition_shift)
        self.register_buffer("condition_scale", condition_scale)
        self.stochastic = bool(stochastic)
        self.empirical = bool(empirical)
        self.state_size = int(state_size)
        self.n_steps = int(sampler.n_steps)

    @torch.jit.export
    def noise_shape(self, batch: int) -> List[int]:
        """``[B, 1, n, n]``, or ``[n_steps + 1, B, 1, n, n]`` for samplers with per-step noise."""
        if self.stochastic:
            return [self.n_steps + 1, batch, 1, self.state_size, self.state_size]
        return [batch, 1, self.state_size, self.state_size]

    def forward(self, omega_n: Tensor, noise: Tensor) -> Tensor:
        """``H_n`` ``(B, 1, N, N)`` for ``ω_n`` ``(B, 1, N, N)`` and standard-normal ``noise`` of :meth:`noise_shape`."""
        c = standardise(self.condition_coder.encode(omega_n), self.condition_shift, self.condition_scale)
        x_init = noise
        step_noise: Optional[Tensor] = None
        if self.stochastic:
            x_init = noise[0]
            step_noise = noise[1:]
        if self.empirical:
            x_init = c
        x1 = self.sampler(x_init, c, step_noise)
        return self.target_coder.decode(destandardise(x1, self.latent_shift, self.latent_scale))
