"""Settings and results of one training run: :class:`TrainConfig` (stored in every checkpoint), the
progress :class:`TrainEvent` and the :class:`TrainResult` of :func:`closure.training.train`."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Optional

from closure.errors import ConfigurationError
from closure.models import ModelConfig
from closure.regularizers import GA_SCALES, GA_WEIGHT, KL_WEIGHT, MP_WEIGHT

__all__ = ["TrainConfig", "TrainEvent", "TrainResult", "LEGACY_DEFAULTS"]

LEGACY_DEFAULTS = {"ga_scale": "reference", "standardise": True}
"""Settings absent from checkpoints written before they existed, with the behaviour those runs had."""


@dataclass(frozen=True)
class TrainConfig:
    """Settings of one training run (stored in its checkpoints).

    Attributes
    ----------
    data : str
        Dataset file (``kolmo dataset``).
    model : ModelConfig
        Architecture; ``grid`` is taken from the data.
    epochs, ae_epochs : int
        Generator (or joint) epochs and autoencoder-phase epochs.
    batch : int
        Mini-batch size.
    lr, lr_step, lr_gamma : float, int, float
        Adam learning rate, StepLR period (epochs) and factor (reference 1e-3, 100, 0.5).
    device : str
        ``"cpu"`` or ``"cuda"`` (no fallback).
    seed : int
        Seeds model initialisation, shuffling, path noise and the validation split.
    validation_fraction : float
        Share of training trajectories held out for validation.
    mp_weight, mp_k : float, int
        MP regularizer weight and neighbours.
    ga_weight, ga_knn, ga_t, ga_landmarks : float, int, int, int or None
        GA weight and PHATE settings (``None``: exact potentials).
    ga_scale : {"median", "reference"}
        GA term: median-normalised distances with a scale fit
        (:func:`~closure.regularizers.scaled_geometry_aware_loss`, default) or the published formula
        (:func:`~closure.regularizers.geometry_aware_loss`, negligible at potential distances of O(100)).
    standardise : bool
        Measure the scalar standardisation ``x1 = (z − a)/b`` of latent models on the training latents
        (default); ``False`` keeps ``a = 0, b = 1`` for the target and condition latents (the raw latents,
        as the reference code; for the latent-geometry study).
    joint_closure_weight, joint_omega_weight, joint_kl_weight : float
        Weights of ``MSE_H``, ``MSE_ω`` and ``KL_batch`` in joint training (1000, 1, 0.1).
    teacher : str, optional
        Run directory of the trained ``fm`` / ``latent-fm`` teacher of a ``reflow`` model (required there,
        refused elsewhere). The student copies its architecture, coders, standardisation and network.
    teacher_steps : int
        Euler steps of the teacher's sampler that draws the couplings ``x0 → x1*`` (default 20).
    """

    data: str
    model: ModelConfig
    epochs: int = 200
    ae_epochs: int = 100
    batch: int = 64
    lr: float = 1e-3
    lr_step: int = 100
    lr_gamma: float = 0.5
    device: str = "cpu"
    seed: int = 0
    validation_fraction: float = 0.1
    mp_weight: float = MP_WEIGHT
    mp_k: int = 5
    ga_weight: float = GA_WEIGHT
    ga_knn: int = 10
    ga_t: int = 10
    ga_landmarks: Optional[int] = 2000
    ga_scale: str = "median"
    standardise: bool = True
    joint_closure_weight: float = 1000.0
    joint_omega_weight: float = 1.0
    joint_kl_weight: float = KL_WEIGHT
    teacher: Optional[str] = None
    teacher_steps: int = 20

    def validate(self) -> "TrainConfig":
        if self.epochs < 1:
            raise ConfigurationError(f"epochs = {self.epochs}; expected >= 1")
        if self.ae_epochs < 0:
            raise ConfigurationError(f"ae_epochs = {self.ae_epochs}; expected >= 0")
        if self.batch < 2:
            raise ConfigurationError(f"batch = {self.batch}; expected >= 2")
        if self.model.reg == "mp" and self.batch <= self.mp_k:
            raise ConfigurationError(f"batch = {self.batch} with MP needs more than k = {self.mp_k} members")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ConfigurationError(f"lr = {self.lr}; expected a positive number")
        if self.model.family == "reflow" and not self.teacher:
            raise ConfigurationError(f"model {self.model.model} trains on couplings drawn by a trained flow-matching "
                                     "teacher: pass --teacher RUN_DIR (a latent-fm or fm run on the same data)")
        if self.model.family != "reflow" and self.teacher:
            raise ConfigurationError(f"--teacher applies to reflow models only; model {self.model.model} has none")
        if not (self.ga_weight >= 0 and math.isfinite(self.ga_weight)):
            raise ConfigurationError(f"ga_weight = {self.ga_weight}; expected a finite number >= 0")
        if self.ga_scale not in GA_SCALES:
            raise ConfigurationError(f"unknown ga_scale {self.ga_scale!r}; valid: {', '.join(GA_SCALES)}")
        if self.teacher_steps < 1:
            raise ConfigurationError(f"teacher_steps = {self.teacher_steps}; expected >= 1")
        if self.lr_step < 1 or not 0 < self.lr_gamma <= 1:
            raise ConfigurationError(f"StepLR({self.lr_step}, {self.lr_gamma}); expected step >= 1, 0 < gamma <= 1")
        self.model.validate()
        return self

    def to_dict(self) -> dict[str, Any]:
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        d["model"] = self.model.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TrainConfig":
        d = {**LEGACY_DEFAULTS, **d}
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ConfigurationError(f"unknown training settings {unknown}")
        d["model"] = ModelConfig.from_dict(d["model"])
        return cls(**d)

    def phases(self) -> list[tuple[str, int]]:
        """``[(phase, epochs), ...]`` in order."""
        if self.model.reg == "joint":
            return [("joint", self.epochs)]
        if self.model.trains_autoencoders and self.ae_epochs > 0:
            return [("autoencoder", self.ae_epochs), ("generator", self.epochs)]
        return [("generator", self.epochs)]


@dataclass(frozen=True)
class TrainEvent:
    """Progress report: ``kind`` is ``"phase"`` (a phase starts), ``"batch"``, ``"epoch"`` or ``"done"``; an
    epoch carries every loss term, ``components`` unweighted and ``weighted`` (times :func:`loss_weights`)."""

    kind: str
    phase: str
    epoch: int
    epochs: int
    batch: int = 0
    batches: int = 0
    loss: float = float("nan")
    components: dict[str, float] = field(default_factory=dict)
    val_loss: Optional[float] = None
    lr: float = float("nan")
    samples_per_s: float = float("nan")
    best: bool = False
    message: str = ""
    weighted: dict[str, float] = field(default_factory=dict)


@dataclass
class TrainResult:
    """Outcome of :func:`train`: where it is, its history, best validation loss, throughput (samples/s)."""

    run_dir: Path
    run_id: str
    history: list[dict[str, Any]]
    best: Optional[dict[str, Any]]
    throughput: dict[str, float]
    parameters: dict[str, int]
    seconds: float
