"""Every closure model family, assembled by name from the parts in :mod:`closure`.

Names (SCIENCE.md §3; ``kolmo train --model NAME --reg REG``)
---------------------------------------------------------------
=============  =========================================================  ==============================
model          generator                                                  default sampler (NFE)
=============  =========================================================  ==============================
``fm``         flow matching on the physical N² field ``H_n``               FM Euler, 1 step (1)
``si``         stochastic interpolant on ``H_n``                            SI Euler–Maruyama, 10 steps (10)
``dm``         VE-SDE (σ = 30) score model on ``H_n``                       VE Euler–Maruyama, Karras grid,
                                                                           10 steps, t ∈ [1e-3, 0.1] (10)
``latent-fm``  flow matching on the 1×n×n latent of ``H_n``                 FM Euler, 1 step (1)
``latent-si``  stochastic interpolant on the latent                         SI Euler–Maruyama, 10 steps (10)
``latent-dm``  VE-SDE score model on the latent                             VE EM, 10 steps, t ∈ [1e-3, 0.4]
``latent-mf``  average velocity u(x_r, r, t) on the latent (MeanFlow)      MeanFlow jump, 1 step (1)
``latent-reflow`` flow matching on (noise, sample) couplings drawn from a   FM Euler, 1 step (1)
               trained ``latent-fm`` teacher (rectified flow / reflow)
``mf``, ``reflow``  the same on the physical field
=============  =========================================================  ==============================

One plain FM Euler step lands on the conditional mean ``E[x1 | c]`` (no spread; SCIENCE.md §3). The two
one-step generators that keep the conditional law are ``mf`` (trained through the MeanFlow identity,
:class:`~closure.paths.MeanFlow`) and ``reflow`` (the teacher's multi-step sampler maps each noise
``x0`` to a sample ``x1*``; FM on the coupled pairs straightens the paths, so one step lands on
``x1*``, a sample of the teacher's law). A ``reflow`` model copies the teacher's coders,
standardisation and network, then trains the network only (:mod:`closure.training`).

Physical models condition on the normalised coarse vorticity ``ω_n`` itself; latent models on a
condition latent (``condition="encoder"``: a :class:`~closure.autoencoders.ConvAutoencoder` of ``ω_n``;
``"pooled"``: the 4×4 block average, no parameters). The target latent comes from a
:class:`~closure.autoencoders.ConvAutoencoder` (``autoencoder="conv"``) or the POD/PCA latent
(``"pca"``, fitted on the training closures). Latent regularizers (``reg``): ``none``, ``mp``, ``ga``
(two-phase training) or ``joint`` (end-to-end); physical models take ``none`` only, and ``mp``/``ga``/
``joint`` need the trainable conv autoencoder (PCA is exactly metric preserving on its subspace already).

Scalar standardisation of the generator's state: the generator works on ``x1 = (z − a) / b`` and
``c = (z_ω − a_ω) / b_ω`` with scalars ``a, b`` measured on the training latents after the autoencoder
phase (a scalar map keeps the latent geometry: MP/GA distances are only rescaled), which puts the target
at unit scale for a Gaussian source. Joint models keep ``a = 0, b = 1`` for ``z`` (their batch-KL term
already pulls ``z`` to N(0, 1)); physical models use identity coders and ``a = 0, b = 1`` (``H_n`` has unit
std already), so one code path serves every family.

VE-SDE (``dm``) models divide ``b`` further by ``s_dm = dm_data_std`` (default ``σ_{t_max} / 4``), so their
state has std ``s_dm``: the reference sampler starts from ``N(0, σ_{t_max}²)`` with ``σ_{t_max}`` = 0.38
(physical, t_max = 0.1) or 1.44 (latent, t_max = 0.4), which is the marginal at ``t_max`` only for data
small next to ``σ_{t_max}`` — true of the reference code's un-normalised closures (std ≈ 0.1 here) but not
of unit-std targets, which the 10-step sampler shrinks towards zero (see
:class:`~closure.samplers.VEEulerMaruyama`; measured on the reduced dong2026 set: ensemble-mean error
0.74 for physical DM without this scaling).

Noise layout of :meth:`ClosureModel.sample` and of exported artifacts
----------------------------------------------------------------------
- deterministic samplers (FM Euler, VE Heun): ``noise`` has shape ``(B, 1, n, n)`` — the source sample;
- stochastic samplers (SI and VE Euler–Maruyama): ``(n_steps + 1, B, 1, n, n)`` — ``noise[0]`` the
  source sample, ``noise[1:]`` the per-step increments (``noise[0]`` is ignored by the empirical SI
  source, which starts at the condition; the VE sampler does not use the last increment).

``n = N`` for physical models, the latent size for latent models.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any, List, Optional

import torch
from torch import Tensor, nn

from closure.batch_shard import RandomSource
from closure.autoencoders import BlockAverageEncoder, ConvAutoencoder, PCAAutoencoder
from closure.errors import ConfigurationError
from closure.model_config import AUTOENCODERS, CONDITIONS, DEFAULT_STEPS, DM_SAMPLERS, HEUN_STEPS, MODELS, \
    ONE_STEP_STOCHASTIC, REGULARIZERS, SI_SOURCES, ModelConfig, _choice  # noqa: F401 - the settings re-exported here
from closure.networks import ConditionalFNO, count_flops, count_parameters
from closure.paths import VESDE, FlowMatching, MeanFlow, StochasticInterpolant, VEScoreNetwork
from closure.samplers import FlowEuler, InterpolantEulerMaruyama, MeanFlowJump, Sampler, VEEulerMaruyama, VEHeun
from closure.sampling import ClosureSampler, destandardise, standardise

__all__ = ["MODELS", "REGULARIZERS", "AUTOENCODERS", "CONDITIONS", "ModelConfig", "FieldIdentity",
           "ClosureModel", "build_model"]


class FieldIdentity(nn.Module):
    """The identity coder of physical models (same ``encode``/``decode`` interface as the autoencoders)."""

    @torch.jit.export
    def encode(self, x: Tensor) -> Tensor:
        return x

    @torch.jit.export
    def decode(self, z: Tensor) -> Tensor:
        return z

    def forward(self, x: Tensor) -> Tensor:
        return x


class ClosureModel(nn.Module):
    """Target coder + condition coder + conditional generator of one closure family.

    All fields here are normalised (``ω_n``, ``H_n``, see :class:`closure.data.Normalisation`),
    shaped ``(B, 1, N, N)``; the generator state and condition are ``(B, 1, n, n)``.

    Parameters
    ----------
    config : ModelConfig
        Validated architecture.

    Attributes
    ----------
    target_coder : nn.Module
        :class:`ConvAutoencoder`, :class:`PCAAutoencoder` (fit with :meth:`fit_pca`) or
        :class:`FieldIdentity`.
    condition_coder : nn.Module
        :class:`ConvAutoencoder`, :class:`BlockAverageEncoder` or :class:`FieldIdentity`.
    network : nn.Module
        :class:`ConditionalFNO` (velocity / drift), wrapped in :class:`VEScoreNetwork` for ``dm``.
    latent_shift, latent_scale, condition_shift, condition_scale : Tensor (buffers, scalars)
        The scalar latent standardisation ``x1 = (z − a) / b``.
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config.validate()
        n_field, n_lat = config.grid, config.resolved_latent_size
        if not config.latent:
            self.target_coder: nn.Module = FieldIdentity()
            self.condition_coder: nn.Module = FieldIdentity()
        else:
            channels = config.resolved_ae_channels()
            if config.autoencoder == "conv":
                self.target_coder = ConvAutoencoder(n_field, n_lat, channels)
            else:  # placeholder buffers of the right shapes; fit_pca or load_state_dict fills them
                r = n_lat * n_lat
                self.target_coder = PCAAutoencoder(torch.zeros(n_field * n_field), torch.zeros(r, n_field * n_field),
                                                   torch.ones(r), field_size=n_field, latent_size=n_lat)
            if config.condition == "encoder":
                self.condition_coder = ConvAutoencoder(n_field, n_lat, channels)
            else:
                self.condition_coder = BlockAverageEncoder(n_field // n_lat)
        fno = ConditionalFNO(config.fno_config())
        self.network: nn.Module = VEScoreNetwork(fno, config.sigma) if config.family == "dm" else fno
        for name in ("latent_shift", "condition_shift"):
            self.register_buffer(name, torch.zeros((), dtype=torch.float64))
        for name in ("latent_scale", "condition_scale"):
            self.register_buffer(name, torch.ones((), dtype=torch.float64))

    # ------------------------------------------------------------------ parts
    @property
    def fno(self) -> ConditionalFNO:
        return self.network.network if isinstance(self.network, VEScoreNetwork) else self.network

    def fit_pca(self, closure_train: Tensor) -> None:
        """Fit the PCA target latent on training closures ``(M, 1, N, N)`` (no-op for other coders)."""
        if isinstance(self.target_coder, PCAAutoencoder):
            fitted = PCAAutoencoder.fit(closure_train.to(torch.float64), self.config.resolved_latent_size)
            dtype = self.target_coder.mean.dtype
            for name in ("mean", "basis", "scale"):
                getattr(self.target_coder, name).copy_(getattr(fitted, name).to(dtype))

    def set_standardisation(self, latent: tuple[float, float], condition: tuple[float, float]) -> None:
        """Set ``(a, b)`` of the target latent and of the condition latent."""
        for (shift, scale), names in ((latent, ("latent_shift", "latent_scale")),
                                      (condition, ("condition_shift", "condition_scale"))):
            if not (math.isfinite(scale) and scale > 0 and math.isfinite(shift)):
                raise ConfigurationError(f"latent standardisation ({shift}, {scale}); expected a finite shift and "
                                         "a positive scale (did the autoencoder collapse?)")
            getattr(self, names[0]).fill_(shift)
            getattr(self, names[1]).fill_(scale)

    def trainable_coders(self) -> list[nn.Module]:
        """Coders with parameters (trained in the autoencoder phase or jointly)."""
        return [m for m in (self.target_coder, self.condition_coder) if isinstance(m, ConvAutoencoder)]

    # ------------------------------------------------------------------ maps
    def encode_condition(self, omega_n: Tensor) -> Tensor:
        """Condition ``c`` ``(B, 1, n, n)`` of the generator from ``ω_n`` ``(B, 1, N, N)``."""
        return standardise(self.condition_coder.encode(omega_n), self.condition_shift, self.condition_scale)

    def encode_target(self, closure_n: Tensor) -> Tensor:
        """Generator target ``x1`` ``(B, 1, n, n)`` from ``H_n`` ``(B, 1, N, N)``."""
        return standardise(self.target_coder.encode(closure_n), self.latent_shift, self.latent_scale)

    def decode_target(self, x1: Tensor) -> Tensor:
        """``H_n`` ``(B, 1, N, N)`` from a generator state ``x1`` ``(B, 1, n, n)``."""
        return self.target_coder.decode(destandardise(x1, self.latent_shift, self.latent_scale))

    # ------------------------------------------------------------------ generation
    def path_loss(self, x1: Tensor, c: Tensor, generator: RandomSource = None,
                  x0: Optional[Tensor] = None) -> Tensor:
        """Training loss of the generator on targets ``x1`` and conditions ``c`` (both ``(B, 1, n, n)``).

        FM: ``mean ‖v(t, x_t, c) − (x1 − x0)‖²``; reflow: the same on teacher couplings ``(x0, x1)`` (``x0``
        required); MF: the MeanFlow loss; SI: ``mean ‖b(t, x_t, c) − R_t‖²`` (``x0 = c`` for the empirical
        source); DM: ``mean ‖σ_t s(t, x_t, c) + z‖²`` (see :mod:`closure.paths`).
        """
        family = self.config.family
        if family == "fm":
            return FlowMatching().loss(self.network, x1, c, generator=generator)
        if family == "reflow":
            if x0 is None:
                raise ConfigurationError("a reflow model trains on teacher couplings: pass their source noise x0")
            return FlowMatching().loss(self.network, x1, c, x0=x0, generator=generator)
        if family == "mf":
            return MeanFlow().loss(self.network, x1, c, generator=generator)
        if family == "si":
            si = StochasticInterpolant(self.config.si_source, self.config.si_noise)
            x0 = c if self.config.si_source == "empirical" else None
            return si.loss(self.network, x1, c, x0=x0, generator=generator)
        return VESDE(self.config.sigma).loss(self.network, x1, c, generator=generator)

    def sampler_kind(self, sampler: Optional[str] = None) -> str:
        family = self.config.family
        if family == "dm":
            kind = sampler or self.config.dm_sampler
            _choice("DM sampler", kind, DM_SAMPLERS)
            return "dm-" + kind
        if sampler is not None and sampler not in ("em", "euler"):
            raise ConfigurationError(f"sampler {sampler!r} applies to dm models only; {self.config.model} uses "
                                     f"{'Euler-Maruyama' if family == 'si' else 'its own deterministic jumps'}")
        return "fm" if family == "reflow" else family

    def make_sampler(self, steps: Optional[int] = None, sampler: Optional[str] = None) -> Sampler:
        """The scriptable sampler (owning :attr:`network`) with ``steps`` steps (default per family)."""
        kind = self.sampler_kind(sampler)
        n = steps if steps is not None else self.config.resolved_steps(sampler)
        if n < 1:
            raise ConfigurationError(f"steps {n}; expected >= 1")
        cfg = self.config
        if kind == "fm":
            return FlowEuler(self.network, n)
        if kind == "mf":
            return MeanFlowJump(self.network, n)
        if kind == "si":
            return InterpolantEulerMaruyama(self.network, n, cfg.si_noise)
        if kind == "dm-em":
            return VEEulerMaruyama(self.network, cfg.sigma, n, cfg.resolved_t_max(), cfg.t_min)
        return VEHeun(self.network, cfg.sigma, n, cfg.resolved_t_max(), cfg.t_min)

    def stochastic_steps(self, sampler: Optional[str] = None) -> bool:
        """Whether the sampler draws per-step noise (SI and VE Euler–Maruyama)."""
        return self.sampler_kind(sampler) in ("si", "dm-em")

    def noise_shape(self, batch: int, steps: Optional[int] = None, sampler: Optional[str] = None) -> List[int]:
        """Shape of the packed noise for ``batch`` samples (see the module docstring)."""
        n = self.config.state_size
        base = [batch, 1, n, n]
        if self.stochastic_steps(sampler):
            k = steps if steps is not None else self.config.resolved_steps(sampler)
            return [k + 1] + base
        return base

    def closure_sampler(self, steps: Optional[int] = None, sampler: Optional[str] = None) -> ClosureSampler:
        """The :class:`~closure.sampling.ClosureSampler` of this model for ``steps`` and ``sampler`` (built once
        per setting and kept; it shares the model's coders, network and standardisation buffers)."""
        key = (steps, sampler)
        cache: dict = self.__dict__.setdefault("_closure_samplers", {})
        if key not in cache:
            cfg = self.config
            cache[key] = ClosureSampler(self.condition_coder, self.target_coder, self.make_sampler(steps, sampler),
                                        self.latent_shift, self.latent_scale, self.condition_shift,
                                        self.condition_scale, self.stochastic_steps(sampler),
                                        cfg.family == "si" and cfg.si_source == "empirical", cfg.state_size)
        return cache[key]

    def _apply(self, fn: Any, *args: Any, **kwargs: Any) -> "ClosureModel":
        # .to() / .double() may replace buffers: samplers built before would hold the old ones
        self.__dict__.pop("_closure_samplers", None)
        return super()._apply(fn, *args, **kwargs)

    def sample(self, omega_n: Tensor, noise: Tensor, steps: Optional[int] = None,
               sampler: Optional[str] = None) -> Tensor:
        """One closure sample ``H_n`` ``(B, 1, N, N)`` per condition ``ω_n`` ``(B, 1, N, N)``.

        ``noise`` is standard normal with shape :meth:`noise_shape` (explicit, so samples are
        reproducible). Runs :meth:`closure_sampler`, the module exported artifacts script.
        """
        return self.closure_sampler(steps, sampler)(omega_n, noise)

    # ------------------------------------------------------------------ cost
    def nfe(self, steps: Optional[int] = None, sampler: Optional[str] = None) -> int:
        """Network evaluations per sample."""
        return int(self.make_sampler(steps, sampler).nfe)

    def flops_per_sample(self, steps: Optional[int] = None, sampler: Optional[str] = None) -> float:
        """FLOPs of one closure sample: condition encoder + NFE × network + target decoder.

        Network: :meth:`ConditionalFNO.flops_per_sample`; conv coders: :func:`count_flops` of the encoder
        (condition) and decoder (target) stacks; PCA decoder ``2 r N²``; block average and identity 0.
        """
        cfg = self.config
        n_field, n = cfg.grid, cfg.state_size
        like = self.latent_scale  # dtype and device of the model
        total = self.nfe(steps, sampler) * self.fno.flops_per_sample(n)
        if isinstance(self.condition_coder, ConvAutoencoder):
            probe = torch.zeros(1, 1, n_field, n_field, dtype=self.condition_coder.encoder[0].weight.dtype,
                                device=like.device)
            total += count_flops(self.condition_coder.encoder, probe)
        if isinstance(self.target_coder, ConvAutoencoder):
            probe = torch.zeros(1, 1, n, n, dtype=self.target_coder.decoder[0].weight.dtype, device=like.device)
            total += count_flops(self.target_coder.decoder, probe)
        elif isinstance(self.target_coder, PCAAutoencoder):
            total += 2.0 * n * n * n_field * n_field
        return float(total)

    def parameter_counts(self) -> dict[str, int]:
        """Parameters (trained or frozen; buffers such as the PCA basis excluded) of each part and in total."""
        parts = {"target_coder": count_parameters(self.target_coder, trainable_only=False),
                 "condition_coder": count_parameters(self.condition_coder, trainable_only=False),
                 "network": count_parameters(self.network, trainable_only=False)}
        parts["total"] = sum(parts.values())
        return parts


def build_model(config: ModelConfig | dict[str, Any], **overrides: Any) -> ClosureModel:
    """A :class:`ClosureModel` from a config (or its dict), with optional field overrides."""
    if isinstance(config, dict):
        config = ModelConfig.from_dict(config)
    if overrides:
        config = replace(config, **overrides)
    return ClosureModel(config)
