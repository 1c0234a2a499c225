"""The settings of a closure model (:class:`ModelConfig`, stored in every checkpoint and artifact) and the
names they take: families, regularizers, autoencoders, conditions, SI sources, DM samplers and default
step counts. The model they build: :mod:`closure.models`."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, Optional

import torch

from closure.errors import ConfigurationError
from closure.networks import FNOConfig
from closure.paths import ve_std
from closure.samplers import T_MAX_LATENT, T_MAX_PHYSICAL, T_MIN

__all__ = ["MODELS", "ONE_STEP_STOCHASTIC", "REGULARIZERS", "AUTOENCODERS", "CONDITIONS", "SI_SOURCES", "DM_SAMPLERS",
           "DEFAULT_STEPS", "HEUN_STEPS", "ModelConfig"]

MODELS = ("latent-fm", "latent-si", "latent-dm", "latent-mf", "latent-reflow", "fm", "si", "dm", "mf", "reflow")
ONE_STEP_STOCHASTIC = ("mf", "reflow")
"""Families whose single network evaluation draws from the conditional law (not its mean)."""
REGULARIZERS = ("none", "mp", "ga", "joint")
AUTOENCODERS = ("conv", "pca")
CONDITIONS = ("encoder", "pooled")
SI_SOURCES = ("gaussian", "empirical")
DM_SAMPLERS = ("em", "heun")
DEFAULT_STEPS = {"fm": 1, "si": 10, "dm": 10, "mf": 1, "reflow": 1}
HEUN_STEPS = 18


def _choice(name: str, value: Any, valid: tuple[str, ...]) -> None:
    if value not in valid:
        raise ConfigurationError(f"unknown {name} {value!r}; valid: {', '.join(valid)}")


@dataclass(frozen=True)
class ModelConfig:
    """Everything that fixes a closure model's architecture (stored in checkpoints and artifacts).

    Attributes
    ----------
    model : str
        One of :data:`MODELS`.
    reg : str
        Latent regularizer, one of :data:`REGULARIZERS` (``"none"`` for physical models).
    autoencoder : {"conv", "pca"}
        Target autoencoder of latent models.
    condition : {"encoder", "pooled"}
        Condition encoder of latent models.
    grid : int
        ``N`` of the ``N × N`` fields (from the dataset).
    latent_size : int, optional
        ``n`` of the ``1 × n × n`` latents; default ``N / 4`` (64² → 16², the reference).
    modes, width : int, optional
        FNO Fourier modes and width; default the reference presets (physical 6 / 40, latent 4 / 20),
        modes clipped to ``n / 2`` on small grids.
    n_layers, time_embedding_dim, projection_width : int
        FNO depth, time-embedding size, projection width (reference 4 / 64 / 128).
    ae_channels : tuple of int, optional
        Conv autoencoder channels per level; default ``(8, 16, 32, ...)``.
    steps : int, optional
        Default sampling steps (FM 1, SI 10, DM 10; Heun 18).
    si_source : {"gaussian", "empirical"}
        Source of the stochastic interpolant (empirical = the condition itself).
    si_noise : float
        ``ε`` of the stochastic interpolant.
    sigma : float
        ``σ`` of the VE-SDE.
    t_max, t_min : float, optional
        VE sampler time range; default ``t_max`` 0.1 physical / 0.4 latent, ``t_min = 1e-3``.
    dm_sampler : {"em", "heun"}
        VE-SDE sampler: reference Euler–Maruyama, or EDM Heun (``2 n − 1`` NFE).
    dm_data_std : float, optional
        Std of the VE-SDE model's state (default ``σ_{t_max} / 4``; see the module docstring).
    """

    model: str = "latent-fm"
    reg: str = "none"
    autoencoder: str = "conv"
    condition: str = "encoder"
    grid: int = 64
    latent_size: Optional[int] = None
    modes: Optional[int] = None
    width: Optional[int] = None
    n_layers: int = 4
    time_embedding_dim: int = 64
    projection_width: int = 128
    ae_channels: Optional[tuple[int, ...]] = None
    steps: Optional[int] = None
    si_source: str = "gaussian"
    si_noise: float = 1.0
    sigma: float = 30.0
    t_max: Optional[float] = None
    t_min: float = T_MIN
    dm_sampler: str = "em"
    dm_data_std: Optional[float] = None

    # ------------------------------------------------------------------ derived
    @property
    def family(self) -> str:
        """``"fm"``, ``"si"``, ``"dm"``, ``"mf"`` or ``"reflow"``."""
        return self.model.split("-")[-1]

    @property
    def latent(self) -> bool:
        return self.model.startswith("latent-")

    @property
    def state_size(self) -> int:
        """Grid size ``n`` of the generator's state (``N`` physical, latent size otherwise)."""
        return self.resolved_latent_size if self.latent else self.grid

    @property
    def resolved_latent_size(self) -> int:
        return self.latent_size if self.latent_size is not None else self.grid // 4

    @property
    def trains_autoencoders(self) -> bool:
        """Whether a separate autoencoder phase precedes the generator (two-phase training; a ``reflow``
        model takes its teacher's coders)."""
        return (self.latent and self.reg != "joint" and self.family != "reflow"
                and (self.autoencoder == "conv" or self.condition == "encoder"))

    def resolved_steps(self, sampler: Optional[str] = None) -> int:
        if self.steps is not None:
            return self.steps
        if self.family == "dm" and (sampler or self.dm_sampler) == "heun":
            return HEUN_STEPS
        return DEFAULT_STEPS[self.family]

    def fno_config(self) -> FNOConfig:
        preset = FNOConfig.latent() if self.latent else FNOConfig.physical()
        n = self.state_size
        modes = self.modes if self.modes is not None else min(preset.modes, n // 2)
        width = self.width if self.width is not None else preset.width
        return FNOConfig(channels=1, cond_channels=1, modes=modes, width=width, n_layers=self.n_layers,
                         time_embedding_dim=self.time_embedding_dim, projection_width=self.projection_width,
                         two_times=self.family == "mf")

    def resolved_ae_channels(self) -> tuple[int, ...]:
        if self.ae_channels is not None:
            return tuple(self.ae_channels)
        levels = (self.grid // self.resolved_latent_size).bit_length() - 1
        return tuple(8 * 2**i for i in range(levels + 1))

    def resolved_t_max(self) -> float:
        if self.t_max is not None:
            return self.t_max
        return T_MAX_LATENT if self.latent else T_MAX_PHYSICAL

    def state_std(self) -> float:
        """Std the generator's state is standardised to: 1, or ``dm_data_std`` (default ``σ_{t_max}/4``) for DM."""
        if self.family != "dm":
            return 1.0
        if self.dm_data_std is not None:
            return self.dm_data_std
        return 0.25 * float(ve_std(torch.tensor(self.resolved_t_max(), dtype=torch.float64), self.sigma))

    # ------------------------------------------------------------------ checks and I/O
    def validate(self) -> "ModelConfig":
        """Raise :class:`ConfigurationError` for an unknown name or an impossible combination."""
        _choice("model", self.model, MODELS)
        _choice("regularizer", self.reg, REGULARIZERS)
        _choice("autoencoder", self.autoencoder, AUTOENCODERS)
        _choice("condition", self.condition, CONDITIONS)
        _choice("SI source", self.si_source, SI_SOURCES)
        _choice("DM sampler", self.dm_sampler, DM_SAMPLERS)
        if not self.latent and self.reg != "none":
            raise ConfigurationError(f"regularizer {self.reg!r} applies to latent models only; model {self.model!r} "
                                     f"is physical: use --reg none, or --model latent-{self.family}")
        if self.latent and self.autoencoder == "pca" and self.reg != "none":
            raise ConfigurationError(
                f"regularizer {self.reg!r} needs a trainable target autoencoder, got --autoencoder pca (the PCA latent "
                "is exactly metric preserving on its subspace and has no parameters): use --reg none with pca, "
                "or --autoencoder conv")
        if self.grid < 4:
            raise ConfigurationError(f"grid {self.grid} too small; expected N >= 4")
        if self.latent:
            n = self.resolved_latent_size
            ratio = self.grid // max(n, 1)
            if n < 2 or self.grid % n or ratio & (ratio - 1):
                raise ConfigurationError(f"latent size {n} for grid {self.grid}: N / n must be a power of two")
            if self.ae_channels is not None:
                levels = ratio.bit_length()
                if len(self.ae_channels) != levels or min(self.ae_channels) < 1:
                    raise ConfigurationError(
                        f"--ae-channels {','.join(map(str, self.ae_channels))}: a conv autoencoder {self.grid}² -> {n}² "
                        f"needs {levels} positive channel counts, one per resolution level (e.g. "
                        f"{','.join(str(8 * 2**i) for i in range(levels))})")
        if self.dm_data_std is not None and not self.dm_data_std > 0:
            raise ConfigurationError(f"dm_data_std {self.dm_data_std}; expected a positive number")
        if self.steps is not None and self.steps < 1:
            raise ConfigurationError(f"steps {self.steps}; expected >= 1")
        fno = self.fno_config()
        if fno.modes < 1 or 2 * fno.modes > self.state_size:
            raise ConfigurationError(f"FNO modes {fno.modes} do not fit a {self.state_size}² state; expected "
                                     f"1 <= modes <= {self.state_size // 2}")
        return self

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        if d["ae_channels"] is not None:
            d["ae_channels"] = list(d["ae_channels"])
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ModelConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ConfigurationError(f"unknown model settings {unknown}; known: {sorted(known)}")
        d = dict(d)
        if d.get("ae_channels") is not None:
            d["ae_channels"] = tuple(d["ae_channels"])
        return cls(**d)

    def describe(self) -> str:
        """E.g. ``latent-fm (reg mp, conv autoencoder, encoder condition)``."""
        if not self.latent:
            return self.model
        return f"{self.model} (reg {self.reg}, {self.autoencoder} autoencoder, {self.condition} condition)"
