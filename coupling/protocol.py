r"""The closure protocol: what the solver calls once per step, and how closures compose.

After pyqg's ``Parameterization``: a closure is an object called with the coarse state that
returns the closure term on the same grid. Here that term is always a **vorticity tendency**
:math:`H` in physical space, shape ``(B, N, N)``, float64, units 1/time², added to the
right-hand side of

.. math:: \partial_t\omega = \dots + H(\omega)

for the whole time step (held over the stages of the IMEX scheme, like the stochastic forcing;
see :mod:`kolmo.simulation`). It is called **once per step** with
:class:`kolmo.simulation.CoarseState` (``omega`` ``(B, N, N)``, ``omega_hat``, ``step``,
``time``, ``grid``, ``dt``).

Subclasses implement :meth:`Closure.tendency`; :meth:`Closure.__call__` wraps it with what every
closure needs, written once here: the output check (float dtype, shape ``(B, N, N)``), the
non-finite policy (``"raise"``, or ``"zero"``: zero the affected members' fields and count them —
never silent; :meth:`Closure.apply_nonfinite_policy`, also used by closures that hold a sample) and
a call counter. Optional spectral path: a closure with ``spectral = True`` implements
:meth:`Closure.tendency_hat` (``rfft2`` of :math:`H`, ``(B, N, N//2+1)`` complex) and the solver
calls :meth:`Closure.call_hat` instead, with the same checks, policy and counter (no transform of
:math:`H` on either side). The solver does not check the output again, and times the whole
hand-off itself (:attr:`kolmo.simulation.Simulation.closure_seconds`). :class:`Closure` satisfies
:class:`kolmo.simulation.ClosureHook`, the solver's (torch-free) typing protocol.

Requirements (class or instance attributes; ``None`` means "any"): ``grid_n``, ``grid_L``,
``preset``, ``dt`` and ``target``:

a name of :data:`kolmo.targets.TARGETS` — ``"missing-physics"`` (the dong2026 reduced model:
advection **off**, the solver draws the noise), ``"missing-physics-noisy"`` (advection and noise
**off**: the closure holds both), ``"sgs"`` / ``"sgs-resolved"`` (LES: the equation keeps its own
advection) — or ``"any"``: no requirement (e.g. :class:`NoClosure`).

:meth:`Closure.validate` checks them against a :class:`kolmo.presets.Config`;
:class:`kolmo.simulation.Simulation` calls it when it is given the closure, so a mismatch
fails before the first step, with a typed error naming both values.

Composition: ``a + b`` is a :class:`SumClosure`, ``c * a`` a :class:`ScaledClosure`
(``-a`` and ``a - b`` too; ``sum([a, b])`` works). Requirements combine; conflicting ones raise.

Optional methods used by ``kolmo``: ``get_state() -> dict`` / ``set_state(dict)`` (saved in the
run file's restart group: values are numpy arrays or JSON-able) and ``describe() -> dict``
(written as run-file attributes at the start and the end of a run).
"""

from __future__ import annotations

import math
import numbers
import warnings
from typing import TYPE_CHECKING, Any

import numpy as np

from coupling.errors import (ClosureShapeError, DtypeError, GridMismatchError, NonFiniteClosureError,
                             PresetMismatchError, TargetMismatchError)
from kolmo.errors import ConfigurationError
from kolmo.targets import TARGETS as KOLMO_TARGETS
from kolmo.targets import coarse_model_mismatch, get_target, same_coarse_model

if TYPE_CHECKING:
    from kolmo.presets import Config
    from kolmo.simulation import CoarseState

__all__ = ["TARGETS", "NONFINITE_POLICIES", "ClosureWarning", "Closure", "NoClosure", "SumClosure",
           "ScaledClosure", "combine_targets"]

TARGETS = (*KOLMO_TARGETS, "any")
"""Closure targets: what the closure term stands for (see the module docstring)."""

NONFINITE_POLICIES = ("raise", "zero")
"""What to do when a closure returns NaN/inf: raise :class:`NonFiniteClosureError`, or zero the
affected members' fields and count the event (``describe()`` reports the counts)."""

class ClosureWarning(UserWarning):
    """Something about a closure the user should know that is not an error (e.g. a Δt different
    from the one it was trained at)."""


def combine_targets(targets: list[str]) -> str:
    """The target of a combination: ``"any"`` unless some term has a specific target; targets
    whose coarse models differ (:func:`kolmo.targets.same_coarse_model`) raise
    :class:`TargetMismatchError`."""
    specific = sorted({t for t in targets if t != "any"})
    for t in specific[1:]:
        if not same_coarse_model(specific[0], t):
            raise TargetMismatchError(
                f"cannot combine closures with targets {specific}: {get_target(specific[0]).describe_coarse_model()}"
                f" for {specific[0]!r}, but {get_target(t).describe_coarse_model()} for {t!r}")
    return specific[0] if specific else "any"


def _combine_requirement(name: str, values: list[Any]) -> Any:
    given = [v for v in values if v is not None]
    for v in given[1:]:
        same = math.isclose(v, given[0], rel_tol=1e-12) if isinstance(v, float) else v == given[0]
        if not same:
            err = GridMismatchError if name in ("grid_n", "grid_L") else PresetMismatchError
            raise err(f"cannot combine closures with different {name}: {given[0]!r} and {v!r}")
    return given[0] if given else None


class Closure:
    """Base class of every closure (see the module docstring).

    Parameters
    ----------
    nonfinite
        ``"raise"`` (default) or ``"zero"`` (``"zero-and-count"`` is accepted as a synonym).

    Attributes
    ----------
    name : str
        Short name (recorded in the run file).
    target : str
        ``"missing-physics"``, ``"sgs"`` or ``"any"``.
    grid_n, grid_L, preset, dt
        Requirements on the solver (``None``: any).
    spectral : bool
        Whether the solver takes ``rfft2(H)`` from :meth:`call_hat` (:meth:`tendency_hat`
        implemented) instead of ``H`` from :meth:`__call__`.
    resamples : bool
        Whether the closure draws a new sample only every ``every`` steps and holds (or jitters)
        it in between (``--closure-every``, ``--closure-jitter``); ``False``: evaluated every step.
    calls : int
        Number of calls so far (restored on restart).
    nonfinite_events, nonfinite_members : int
        Calls that returned any NaN/inf, and member fields zeroed under the ``"zero"`` policy.
    """

    name: str = "closure"
    target: str = "any"
    grid_n: int | None = None
    grid_L: float | None = None
    preset: str | None = None
    dt: float | None = None
    spec: str | None = None  # the command-line spec it was built from (kept for --resume)
    resamples: bool = False  # True: draws a sample only every ``every`` steps (``--closure-every``)

    def __init__(self, nonfinite: str = "raise") -> None:
        if nonfinite == "zero-and-count":
            nonfinite = "zero"
        if nonfinite not in NONFINITE_POLICIES:
            raise ConfigurationError(
                f"unknown non-finite policy {nonfinite!r}; valid: {', '.join(NONFINITE_POLICIES)}")
        self.nonfinite = nonfinite
        self.calls = 0
        self.nonfinite_events = 0
        self.nonfinite_members = 0

    # ------------------------------------------------------------------ to implement
    def tendency(self, state: CoarseState) -> np.ndarray:
        """The closure term for ``state``: ``(B, N, N)`` vorticity tendency in physical space."""
        raise NotImplementedError

    #: Whether :meth:`tendency_hat` is implemented; the solver then calls :meth:`call_hat` (spectral
    #: tendency, no transform of H on either side) instead of :meth:`__call__`.
    spectral: bool = False

    #: Whether :meth:`call_hat` also writes the injection diagnostics ⟨ψH⟩, ⟨ωH⟩ of the Ĥ it returns into
    #: ``state.injection`` when the solver gives one (:class:`kolmo.simulation.ClosureHook`); the solver
    #: then does not compute them again.
    fills_injection: bool = False

    def tendency_hat(self, state: CoarseState) -> np.ndarray:
        """``rfft2`` of :meth:`tendency`, ``(B, N, N//2+1)`` complex (optional; see :attr:`spectral`)."""
        raise NotImplementedError

    # ------------------------------------------------------------------ the call
    def __call__(self, state: CoarseState) -> np.ndarray:
        """Evaluate :meth:`tendency`, check shape and dtype, apply the non-finite policy, count."""
        h = self.checked(self.tendency(state), state)
        self.calls += 1
        return h

    def call_hat(self, state: CoarseState) -> np.ndarray:
        """The spectral twin of :meth:`__call__` (what the solver calls when :attr:`spectral`):
        evaluate :meth:`tendency_hat`, check shape and dtype, apply the non-finite policy, count."""
        h = self.checked_hat(self.tendency_hat(state), state)
        self.calls += 1
        return h

    def apply_nonfinite_policy(self, finite: np.ndarray, state: CoarseState) -> np.ndarray:
        """Members to zero, given which members ``finite`` ``(B,)`` are finite: none when all are;
        else count the event and raise :class:`NonFiniteClosureError` (policy ``"raise"``) or
        return the bad members' indices and count them (policy ``"zero"``)."""
        bad = np.flatnonzero(~np.asarray(finite, dtype=bool))
        if bad.size == 0:
            return bad
        self.nonfinite_events += 1
        if self.nonfinite == "raise":
            raise NonFiniteClosureError(
                f"closure {self.name} returned NaN/inf at step {state.step} (t = {state.time:.6g}) for "
                f"member(s) {bad.tolist()}; expected finite values (use nonfinite='zero' to zero and count)")
        self.nonfinite_members += int(bad.size)
        return bad

    def check_layout(self, h: np.ndarray, expected: tuple[int, ...]) -> np.ndarray:
        """``h`` itself after checking a real floating dtype (:class:`DtypeError`) and the shape
        ``expected`` = ``(B, N, N)`` of the vorticity (:class:`ClosureShapeError`)."""
        if h.dtype.kind != "f":
            raise DtypeError(f"closure {self.name} returned dtype {h.dtype}, expected a real floating "
                             "dtype (float64 vorticity tendency)")
        if h.shape != expected:
            raise ClosureShapeError(f"closure {self.name} returned shape {h.shape}, expected {expected} "
                                    "(members, N, N) like the vorticity")
        return h

    def checked(self, h: Any, state: CoarseState) -> np.ndarray:
        """``h`` as float64 ``(B, N, N)`` after the shape/dtype check and the non-finite policy."""
        h = self.check_layout(np.asarray(h), tuple(np.shape(state.omega)))
        h = h.astype(np.float64, copy=False)
        bad = self.apply_nonfinite_policy(np.isfinite(h).all(axis=(-2, -1)), state)
        if bad.size:
            h = np.array(h, dtype=np.float64, copy=True)
            h[bad] = 0.0
        return h

    def checked_hat(self, h: Any, state: CoarseState) -> np.ndarray:
        """``h`` as complex ``(B, N, N//2+1)`` (``rfft2`` of the tendency) after the shape/dtype check
        and the non-finite policy (:meth:`apply_nonfinite_policy`, as in :meth:`checked`)."""
        h = np.asarray(h)
        b, n = np.shape(state.omega_hat)[0], state.grid.n
        expected = (b, n, n // 2 + 1)
        if h.shape != expected or h.dtype.kind != "c":
            raise ClosureShapeError(f"closure {self.name} returned spectral {h.dtype} {h.shape}, expected complex "
                                    f"{expected} (rfft2 of the (members, N, N) tendency)")
        bad = self.apply_nonfinite_policy(np.isfinite(h).all(axis=(-2, -1)), state)
        if bad.size:
            h = np.array(h, copy=True)
            h[bad] = 0.0
        return h

    # ------------------------------------------------------------------ requirements
    def validate(self, config: Config) -> None:
        """Check grid, domain, preset and target against a solver :class:`~kolmo.presets.Config`.

        Raises :class:`GridMismatchError`, :class:`PresetMismatchError` or
        :class:`TargetMismatchError`, each naming both values; a different Δt only warns
        (:class:`ClosureWarning`): a tendency does not depend on Δt, but a closure trained with
        Δt-scaled stochastic forcing inside its target does. LES targets (``sgs``, ``sgs-resolved``)
        do not warn: their closure is a function of the resolved state and the LES runs at its own
        CFL step by design (:func:`coupling.online.prepare_run` notes it).
        """
        if self.grid_n is not None and int(self.grid_n) != int(config.n):
            raise GridMismatchError(f"closure {self.name} is for a {self.grid_n}² grid, but the solver runs "
                                    f"{config.n}²; expected the same N")
        if self.grid_L is not None and not math.isclose(float(self.grid_L), float(config.L), rel_tol=1e-9):
            raise GridMismatchError(f"closure {self.name} is for a domain of side L = {self.grid_L:g}, but the "
                                    f"solver's L = {config.L:g}; expected the same L")
        if self.preset is not None and self.preset != config.preset:
            raise PresetMismatchError(f"closure {self.name} was made for preset {self.preset!r}, but the "
                                      f"solver runs preset {config.preset!r}; expected the same preset")
        mismatch = None if self.target == "any" else coarse_model_mismatch(self.target, config)
        if mismatch is not None:
            raise TargetMismatchError(f"closure {self.name} has {mismatch}")
        les = self.target in KOLMO_TARGETS and get_target(self.target).advection  # noted by the run, not warned
        if self.dt is not None and not les and not math.isclose(float(self.dt), float(config.dt), rel_tol=1e-9):
            warnings.warn(f"closure {self.name} was trained at dt = {self.dt:g}, the solver runs dt = "
                          f"{config.dt:g}", ClosureWarning, stacklevel=2)

    # ------------------------------------------------------------------ restart and description
    def get_state(self) -> dict[str, Any]:
        """Counters (subclasses add their own state): numpy arrays or JSON-able values."""
        return {"calls": self.calls, "nonfinite_events": self.nonfinite_events,
                "nonfinite_members": self.nonfinite_members}

    def set_state(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`get_state` returned."""
        self.calls = int(state.get("calls", 0))
        self.nonfinite_events = int(state.get("nonfinite_events", 0))
        self.nonfinite_members = int(state.get("nonfinite_members", 0))

    def describe(self) -> dict[str, Any]:
        """Run-file attributes (``closure_*``): name, target, counters, settings."""
        out = {"closure_name": self.name, "closure_target": self.target, "closure_calls": self.calls,
               "closure_nonfinite_policy": self.nonfinite,
               "closure_nonfinite_events": self.nonfinite_events,
               "closure_nonfinite_members": self.nonfinite_members}
        if self.spec is not None:
            out["closure_spec"] = self.spec
        if self.dt is not None:
            out["closure_trained_dt"] = float(self.dt)
        return out

    # ------------------------------------------------------------------ composition
    def __add__(self, other: Any) -> "Closure":
        if isinstance(other, numbers.Number) and other == 0:
            return self
        if not isinstance(other, Closure):
            return NotImplemented
        return SumClosure(self, other)

    def __radd__(self, other: Any) -> "Closure":
        return self.__add__(other)

    def __mul__(self, factor: Any) -> "Closure":
        if not isinstance(factor, numbers.Real):
            return NotImplemented
        return ScaledClosure(float(factor), self)

    __rmul__ = __mul__

    def __neg__(self) -> "Closure":
        return ScaledClosure(-1.0, self)

    def __sub__(self, other: Any) -> "Closure":
        if not isinstance(other, Closure):
            return NotImplemented
        return SumClosure(self, ScaledClosure(-1.0, other))

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r} target={self.target}>"


class NoClosure(Closure):
    """The zero closure, ``H = 0`` (target ``"any"``); the neutral element of ``+``."""

    name = "none"

    def tendency(self, state: CoarseState) -> np.ndarray:
        return np.zeros(np.shape(state.omega))


class _Composite(Closure):
    """Shared restart/description plumbing of closures made of other closures."""

    terms: tuple[Closure, ...] = ()

    def _adopt_requirements(self) -> None:
        self.target = combine_targets([t.target for t in self.terms])
        for attr in ("grid_n", "grid_L", "preset", "dt"):
            setattr(self, attr, _combine_requirement(attr, [getattr(t, attr) for t in self.terms]))

    def validate(self, config: Config) -> None:
        for t in self.terms:  # the combined requirements are those of the terms
            t.validate(config)

    def get_state(self) -> dict[str, Any]:
        state = super().get_state()
        for i, t in enumerate(self.terms):
            for k, v in t.get_state().items():
                state[f"{i}.{k}"] = v
        return state

    def set_state(self, state: dict[str, Any]) -> None:
        super().set_state({k: v for k, v in state.items() if "." not in k})
        for i, t in enumerate(self.terms):
            prefix = f"{i}."
            t.set_state({k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)})

    def describe(self) -> dict[str, Any]:
        out = super().describe()
        out["closure_terms"] = [t.describe() for t in self.terms]
        return out


class SumClosure(_Composite):
    """``H = Σ_i H_i``: the sum of closures (nested sums are flattened).

    The requirements of the terms must agree (one specific target at most).
    """

    def __init__(self, *terms: Closure, nonfinite: str = "raise") -> None:
        super().__init__(nonfinite=nonfinite)
        flat: list[Closure] = []
        for t in terms:
            if not isinstance(t, Closure):
                raise ConfigurationError(f"SumClosure takes closures, got {t!r}")
            flat.extend(t.terms if isinstance(t, SumClosure) else (t,))
        if not flat:
            raise ConfigurationError("SumClosure needs at least one closure")
        self.terms = tuple(flat)
        self.name = " + ".join(t.name for t in self.terms)
        self._adopt_requirements()

    def tendency(self, state: CoarseState) -> np.ndarray:
        total = np.array(self.terms[0](state), dtype=np.float64, copy=True)
        for t in self.terms[1:]:
            total += t(state)
        return total


class ScaledClosure(_Composite):
    """``H = c · H_a``: a closure scaled by a constant factor ``c``."""

    def __init__(self, factor: float, closure: Closure, nonfinite: str = "raise") -> None:
        super().__init__(nonfinite=nonfinite)
        if not isinstance(closure, Closure):
            raise ConfigurationError(f"ScaledClosure takes a closure, got {closure!r}")
        if not math.isfinite(factor):
            raise ConfigurationError(f"closure scale factor must be finite, got {factor!r}")
        self.factor = float(factor)
        self.terms = (closure,)
        self.name = f"{self.factor:g}*({closure.name})"
        self._adopt_requirements()

    def tendency(self, state: CoarseState) -> np.ndarray:
        return self.factor * self.terms[0](state)

    def describe(self) -> dict[str, Any]:
        out = super().describe()
        out["closure_factor"] = self.factor
        return out
