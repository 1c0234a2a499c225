"""Simulation configuration and the two named presets, ``dong2026`` and ``kolmogorov``.

Every parameter of a run lives in one :class:`Config`; presets are ``Config`` defaults taken
from ``shared/SCIENCE.md`` §2 and every field can be overridden (the CLI exposes them). The
whole config is written to every output file as JSON.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from typing import Any

from kolmo.errors import ConfigurationError
from kolmo.forcing import FORCINGS
from kolmo.grid import DEALIAS_RULES
from kolmo.stepping import DEFAULT_STEPPER, STEPPERS

INITIAL_CONDITIONS = ("grf", "band", "file", "zero")


@dataclass(frozen=True)
class Config:
    """Everything that defines a run.

    Units: lengths in units of the box (``L``), times in the preset's time unit.

    Attributes
    ----------
    preset
        Name of the preset the defaults came from.
    n, L, dealias
        Grid points per side, box side, dealiasing rule.
    nu, mu
        Viscosity ν and linear drag μ.
    forcing, forcing_params
        Registered deterministic forcing and its parameters (see :mod:`kolmo.forcing`).
    noise_sigma, noise_alpha, noise_kappa
        Q-Wiener stochastic forcing (σ_W = 0 disables it).
    advection
        Include ``−u·∇ω`` (``False``: dong2026 reduced model).
    dt, t_end, save_every
        Time step, final time, snapshot interval.
    stepper
        Time scheme name (see :mod:`kolmo.stepping`).
    initial, initial_params
        Initial condition kind (``grf``, ``band``, ``file``, ``zero``) and parameters.
    members, seed
        Ensemble size and root seed; member ``i`` uses streams derived from ``(seed, first_member + i)``.
    first_member
        Index of the first member (member ``i`` of a batch equals a one-member run with ``first_member = i``).
    check_every, cfl_max
        Stability guard: every ``check_every`` steps, fail if the state is non-finite or CFL > ``cfl_max``.
    """

    preset: str = "kolmogorov"
    n: int = 64
    L: float = 2 * math.pi
    dealias: str = "2/3"
    nu: float = 1e-3
    mu: float = 0.1
    forcing: str = "kolmogorov"
    forcing_params: dict[str, float] = field(default_factory=lambda: {"wavenumber": 4.0, "amplitude": 1.0})
    noise_sigma: float = 0.0
    noise_alpha: float = 0.005
    noise_kappa: int = 10
    advection: bool = True
    dt: float = 5e-3
    t_end: float = 10.0
    save_every: float = 0.5
    stepper: str = DEFAULT_STEPPER
    initial: str = "band"
    initial_params: dict[str, Any] = field(default_factory=dict)
    members: int = 1
    seed: int = 0
    first_member: int = 0
    check_every: int = 50
    cfl_max: float = 1.5

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise :class:`ConfigurationError` naming the first invalid field."""
        def bad(name: str, expected: str) -> ConfigurationError:
            return ConfigurationError(f"invalid {name} = {getattr(self, name)!r}: expected {expected}")

        if not isinstance(self.n, int) or self.n < 4 or self.n % 2:
            raise bad("n", "an even integer >= 4")
        for name in ("L", "dt", "t_end", "save_every", "cfl_max"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
                raise bad(name, "a positive finite number")
        for name in ("nu", "mu", "noise_sigma", "noise_alpha"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v >= 0):
                raise bad(name, "a finite number >= 0")
        if self.members < 1:
            raise bad("members", "an integer >= 1")
        if self.check_every < 1:
            raise bad("check_every", "an integer >= 1")
        if self.noise_kappa < 1:
            raise bad("noise_kappa", "an integer >= 1")
        if self.forcing not in FORCINGS:
            raise bad("forcing", f"one of {', '.join(sorted(FORCINGS))}")
        if self.stepper not in STEPPERS:
            raise bad("stepper", f"one of {', '.join(STEPPERS)}")
        if self.initial not in INITIAL_CONDITIONS:
            raise bad("initial", f"one of {', '.join(INITIAL_CONDITIONS)}")
        if self.dealias not in DEALIAS_RULES:
            raise bad("dealias", f"one of {', '.join(DEALIAS_RULES)}")
        if self.save_every < self.dt * (1 - 1e-9):
            raise bad("save_every", f"at least one time step (dt = {self.dt})")

    @property
    def steps(self) -> int:
        """Number of time steps to reach ``t_end``."""
        return int(round(self.t_end / self.dt))

    @property
    def save_interval(self) -> int:
        """Steps between snapshots."""
        return max(1, int(round(self.save_every / self.dt)))

    def replace(self, **changes: Any) -> "Config":
        """A copy with ``changes`` applied (``None`` values are ignored), validated."""
        changes = {k: v for k, v in changes.items() if v is not None}
        unknown = set(changes) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            raise ConfigurationError(f"unknown configuration field(s) {sorted(unknown)}")
        return dataclasses.replace(self, **changes)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "Config":
        return cls(**json.loads(text))


def kolmogorov_dt(n: int, L: float = 2 * math.pi, cfl: float = 0.5, max_velocity: float = 7.0,
                  save_every: float = 0.5) -> float:
    """Largest ``save_every / m`` (integer m) not above ``cfl · (L/n) / max_velocity``.

    jax-cfd's stable-time-step rule with u_max = 7, rounded down so that snapshots fall on
    exact steps (64²: 0.5/72 ≈ 6.94e-3; 256²: 0.5/286 ≈ 1.75e-3).
    """
    dt_max = cfl * (L / n) / max_velocity
    return save_every / math.ceil(save_every / dt_max)


def _dong2026(n: int) -> Config:
    return Config(
        preset="dong2026", n=n, L=1.0, nu=1e-3, mu=0.0, forcing="dong2026",
        forcing_params={"wavenumber": 1.0, "amplitude": 0.1},
        noise_sigma=5e-5, noise_alpha=0.005, noise_kappa=10, advection=True,
        dt=1e-3, t_end=20.0, save_every=0.1, initial="grf",
        initial_params={"alpha": 2.5, "tau": 7.0},
    )


def _kolmogorov(n: int) -> Config:
    return Config(
        preset="kolmogorov", n=n, L=2 * math.pi, nu=1e-3, mu=0.1, forcing="kolmogorov",
        forcing_params={"wavenumber": 4.0, "amplitude": 1.0}, noise_sigma=0.0, advection=True,
        dt=kolmogorov_dt(n), t_end=20.0, save_every=0.5, initial="band",
        initial_params={"k_min": 1.0, "k_max": 8.0, "rms_velocity": 1.0},
    )


PRESETS = {"dong2026": _dong2026, "kolmogorov": _kolmogorov}


def preset(name: str, n: int | None = None, **overrides: Any) -> Config:
    """Config of preset ``name`` on an ``n``² grid (default 256 for dong2026, 64 for kolmogorov),
    with ``overrides`` applied. An unknown preset lists the valid ones."""
    try:
        factory = PRESETS[name]
    except KeyError:
        raise ConfigurationError(f"unknown preset {name!r}; valid: {', '.join(PRESETS)}") from None
    if n is None:
        n = 256 if name == "dong2026" else 64
    if not isinstance(n, int) or n < 4 or n % 2:
        raise ConfigurationError(f"invalid grid size {n!r}: expected an even integer >= 4")
    return factory(n).replace(**overrides)
