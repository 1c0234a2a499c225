r"""The time loop: one :class:`Simulation` per run, and :func:`run_simulation` for the CLI.

Step order (pyqg-style, the one place it is written):

1. **invert** ω̂ → ψ̂, û, v̂ and **advect** (inside the stepper's explicit terms, every stage);
2. **forcing**: deterministic f̂ (explicit terms) and the Q-Wiener draw :math:`\sigma_W\hat\xi`
   (once per step, held over the stages);
3. **closure**: the hook is called once per step with the state at the start of the step; its
   tendency Ĥ is held over the stages, like the noise;
4. **step**: the IMEX update of :mod:`kolmo.stepping`;
5. **diagnostics** (every step), **guard** (every ``check_every`` steps and before every
   snapshot), **snapshot + restart state** (every ``save_every``).
"""

from __future__ import annotations

import time as _time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Protocol, runtime_checkable

import numpy as np

from kolmo import __version__, diagnostics
from kolmo.equation import VorticityEquation
from kolmo.errors import BlowUpError, ConfigurationError, NonFiniteError, ShapeError
from kolmo.fft import RealFFT2
from kolmo.forcing import QWienerForcing, make_forcing, member_generators
from kolmo.grid import Grid
from kolmo.initial import initial_vorticity
from kolmo.io import RunWriter, load_snapshot, to_json
from kolmo.presets import Config
from kolmo.stepping import make_stepper


class CoarseState:
    """What a closure sees once per step.

    Attributes
    ----------
    omega
        Vorticity in physical space, ``(B, N, N)`` (1/time); computed on first access (a
        closure that only needs the spectral state, or holds its last sample, costs no transform).
    omega_hat
        Its ``rfft2``, ``(B, N, N//2+1)`` (the solver's own array: read it, never modify it).
    step, time
        Step index and simulated time at the start of the step.
    grid, dt
        The solver's grid and time step.
    injection
        ``None``, or (for a hook with ``fills_injection``, see :class:`ClosureHook`) the solver's
        ``(2, B)`` array where the hook's ``call_hat`` writes ⟨ψH⟩, ⟨ωH⟩ of the Ĥ it returns.
    """

    __slots__ = ("omega_hat", "step", "time", "grid", "dt", "injection", "_omega", "_inverse")

    def __init__(self, omega_hat: np.ndarray, step: int, time: float, grid: Grid, dt: float,
                 omega: np.ndarray | None = None, inverse: Callable[[np.ndarray], np.ndarray] | None = None,
                 injection: np.ndarray | None = None) -> None:
        self.omega_hat, self.step, self.time, self.grid, self.dt = omega_hat, step, time, grid, dt
        self._omega, self._inverse = omega, inverse
        self.injection = injection

    @property
    def omega(self) -> np.ndarray:
        if self._omega is None:
            inv = self._inverse or (lambda f: np.fft.irfft2(f, s=(self.grid.n, self.grid.n)))
            self._omega = inv(self.omega_hat)
        return self._omega


@runtime_checkable
class ClosureHook(Protocol):
    """The closure interface the solver calls once per step (:class:`coupling.protocol.Closure`
    satisfies it; a plain callable is adapted by :class:`CallableHook`).

    ``hook(state)`` returns the closure term: a **finite float** vorticity tendency ``(B, N, N)``
    in physical space on the same grid (1/time²), added to the right-hand side for the step. The
    hook checks its own output (shape, dtype, finiteness, and its policy for non-finite values):
    the solver does not check it a second time. ``validate(config)`` is called when a
    :class:`Simulation` is given the hook (raise to refuse a config); ``get_state()`` /
    ``set_state(dict)`` make it restartable (numpy arrays or JSON-able values); ``describe()`` is
    written as run-file attributes at the start and the end of a run (see :func:`closure_attrs`).

    Spectral path: when ``spectral`` is true (read every step) the solver calls
    ``hook.call_hat(state)`` instead, which returns ``rfft2(H)`` ``(B, N, N//2+1)`` complex, checked
    by the hook in the same way (it saves the hook's inverse transform and the solver's forward
    one; the tendency is the same). A hook without one sets ``spectral = False``.

    Optional ``fills_injection`` (read once, default false): a spectral hook that sets it true writes
    the injection diagnostics of the Ĥ it returns, exactly :func:`kolmo.diagnostics.closure_injection`
    (e.g. with :func:`~kolmo.diagnostics.closure_injection_numba`, fused into the pass that makes Ĥ),
    into ``state.injection`` from ``call_hat``; the solver then does not compute them again.
    """

    name: str
    spectral: bool

    def __call__(self, state: CoarseState) -> np.ndarray: ...

    def call_hat(self, state: CoarseState) -> np.ndarray: ...

    def validate(self, config: Config) -> None: ...

    def get_state(self) -> dict[str, Any]: ...

    def set_state(self, state: dict[str, Any]) -> None: ...

    def describe(self) -> dict[str, Any]: ...


class CallableHook:
    """A plain callable ``f(state) -> (B, N, N)`` as a :class:`ClosureHook`: no requirements, no
    restart state, no attributes, no spectral path; it checks the output's shape and finiteness
    (typed errors)."""

    spectral = False

    def __init__(self, fn: Callable[[CoarseState], np.ndarray]) -> None:
        if not callable(fn):
            raise ConfigurationError(f"closure {fn!r} is not callable")
        self.fn = fn
        self.name = str(getattr(fn, "name", type(fn).__name__))

    def __call__(self, state: CoarseState) -> np.ndarray:
        h = np.asarray(self.fn(state), dtype=np.float64)
        expected = (state.omega_hat.shape[0], state.grid.n, state.grid.n)
        if h.shape != expected:
            raise ShapeError(f"closure {self.name} returned shape {h.shape}, expected {expected}")
        if not np.isfinite(np.sum(h)):  # NaN or inf anywhere makes the sum non-finite
            raise NonFiniteError(f"closure {self.name} returned non-finite values at step {state.step}")
        return h

    def call_hat(self, state: CoarseState) -> np.ndarray:
        """Not offered (``spectral`` is false): the solver calls the hook itself."""
        raise NotImplementedError(f"closure {self.name} has no spectral path (spectral = False)")

    def validate(self, config: Config) -> None:
        """No requirements."""

    def get_state(self) -> dict[str, Any]:
        return {}

    def set_state(self, state: dict[str, Any]) -> None:
        """No state."""

    def describe(self) -> dict[str, Any]:
        return {}


def as_hook(closure: ClosureHook | Callable[[CoarseState], np.ndarray] | None) -> ClosureHook | None:
    """``closure`` itself when it implements :class:`ClosureHook`, else a :class:`CallableHook` of it."""
    if closure is None or isinstance(closure, ClosureHook):
        return closure
    return CallableHook(closure)


DIAGNOSTICS = diagnostics.SCALARS
CLOSURE_DIAGNOSTICS = ("closure_energy", "closure_enstrophy")


class Simulation:
    """A batch of ``config.members`` flows advanced together.

    Parameters
    ----------
    config
        The run's :class:`~kolmo.presets.Config`.
    closure
        Optional :class:`ClosureHook` (a plain callable is wrapped in a :class:`CallableHook`).
    omega0
        Initial vorticity ``(B, N, N)`` or ``(1, N, N)`` (broadcast); default: ``config.initial``.
    backend, threads, planner
        FFT options.

    Attributes
    ----------
    closure_seconds : float
        Wall time of the closure hand-offs (the hook's call and, off the spectral path, the
        transform of H): the one closure timer, reported in run files, :class:`RunSummary` and
        ``kolmo bench coupled``.
    solver_seconds : float
        Wall time of whole steps (closure included).
    """

    def __init__(self, config: Config, closure: ClosureHook | Callable[[CoarseState], np.ndarray] | None = None,
                 omega0: np.ndarray | None = None,
                 backend: str = "fftw", threads: int = 1, planner: str = "measure") -> None:
        self.config = c = config
        self.grid = g = Grid(c.n, c.L, c.dealias)
        b = c.members
        self.members = np.arange(c.first_member, c.first_member + b)
        forcing = make_forcing(c.forcing, g, **c.forcing_params)
        self.equation = VorticityEquation(g, c.nu, c.mu, forcing, members=b, advection=c.advection,
                                          backend=backend, threads=threads, planner=planner)
        self.stepper = make_stepper(c.stepper, self.equation, c.dt)
        self.fft = RealFFT2(g.n, b, backend=backend, threads=threads, planner=planner)
        self.noise = None
        if c.noise_sigma > 0:
            self.noise = QWienerForcing(g, c.dt, c.noise_sigma, c.noise_alpha, c.noise_kappa,
                                        member_generators(c.seed, b, c.first_member, "noise"))
        self.closure = as_hook(closure)
        if self.closure is not None:  # the closure checks its requirements (grid, target, ...)
            self.closure.validate(c)
        self._fills_injection = bool(getattr(self.closure, "fills_injection", False))
        if omega0 is None:
            if c.initial == "file":
                omega0 = load_snapshot(str(c.initial_params["path"]), g.n)
            else:
                gens = member_generators(c.seed, b, c.first_member, "initial")
                omega0 = initial_vorticity(c.initial, g, gens, **c.initial_params)
        omega0 = np.asarray(omega0, dtype=np.float64)
        if omega0.ndim == 2:
            omega0 = omega0[None]
        if omega0.shape[-2:] != (g.n, g.n) or omega0.shape[0] not in (1, b):
            raise ShapeError(f"initial vorticity has shape {omega0.shape}, expected ({b} or 1, {g.n}, {g.n})")
        if not np.all(np.isfinite(omega0)):
            raise NonFiniteError("initial vorticity contains NaN or infinity")
        omega0 = np.broadcast_to(omega0, (b, g.n, g.n))
        self.omega_hat = self.fft.rfft2(omega0)
        self.step = 0
        self._tendency = np.zeros_like(self.omega_hat)
        self._moments = np.zeros((b, 3))
        self.closure_seconds = 0.0
        self.solver_seconds = 0.0
        self._last_closure = np.zeros((2, b))

    # ------------------------------------------------------------------ state
    @property
    def time(self) -> float:
        """Simulated time ``step · dt`` (never accumulated, so it has no drift)."""
        return self.step * self.config.dt

    @property
    def step_tendency_hat(self) -> np.ndarray:
        """Step-constant tendency of the step just taken, ``(B, N, N//2+1)``, read-only view.

        The sum held over the stages of the last :meth:`advance`: the Q-Wiener draw
        :math:`\\sigma_W\\hat\\xi` plus the closure :math:`\\hat H` (each only if present); zeros
        before the first step or without noise and closure. Valid until the next :meth:`advance`
        (used by :mod:`kolmo.dataset` to record the noise of the step that starts at a recording time).
        """
        view = self._tendency.view()
        view.flags.writeable = False
        return view

    def vorticity(self) -> np.ndarray:
        """Physical vorticity ``(B, N, N)`` (a new array)."""
        return self.fft.irfft2(self.omega_hat)

    def get_state(self) -> dict[str, Any]:
        """Everything needed to continue bit-for-bit (state, step, RNG and closure states)."""
        state: dict[str, Any] = {"omega_hat": self.omega_hat.copy(), "step": self.step,
                                 "rng_states": self.noise.get_state() if self.noise else []}
        if self.closure is not None:
            state["closure"] = self.closure.get_state()
        return state

    def set_state(self, omega_hat: np.ndarray, step: int, rng_states: list, closure: dict | None = None) -> None:
        if omega_hat.shape != self.omega_hat.shape:
            raise ShapeError(f"restart state has shape {omega_hat.shape}, expected {self.omega_hat.shape}")
        self.omega_hat[...] = omega_hat
        self.step = int(step)
        if self.noise and rng_states:
            self.noise.set_state(rng_states)
        if closure and self.closure is not None:
            self.closure.set_state(closure)

    # ------------------------------------------------------------------ one step
    def advance(self) -> None:
        """Advance every member by one time step (the step order of the module docstring)."""
        t0 = _time.perf_counter()
        tendency = None
        if self.noise is not None:
            self.noise.sample(self._tendency)
            tendency = self._tendency
        if self.closure is not None:
            tc = _time.perf_counter()
            h_hat = self._closure_tendency()
            self.closure_seconds += _time.perf_counter() - tc
            if tendency is None:
                self._tendency[...] = h_hat
                tendency = self._tendency
            else:
                tendency += h_hat
        self.stepper(self.omega_hat, tendency)
        self.step += 1
        self.solver_seconds += _time.perf_counter() - t0

    def _closure_tendency(self) -> np.ndarray:
        g = self.grid
        fused = self._fills_injection and self.closure.spectral  # type: ignore[union-attr]
        state = CoarseState(self.omega_hat, self.step, self.time, g, self.config.dt, inverse=self.fft.irfft2,
                            injection=self._last_closure if fused else None)
        # checked by the hook (ClosureHook): shape, dtype, its non-finite policy
        if self.closure.spectral:  # type: ignore[union-attr]
            # spectral path: the hook returns rfft2(H) itself (no inverse there, no forward here)
            h_hat = self.closure.call_hat(state)  # type: ignore[union-attr]
        else:
            self.fft.real[...] = self.closure(state)  # type: ignore[misc]
            self.fft.forward()
            h_hat = self.fft.spec  # valid until the next use of self.fft
        if not fused:  # energy and enstrophy injected by the closure: <ψ H> and <ω H>
            diagnostics.closure_injection(g, self.omega_hat, h_hat, self._last_closure)
        return h_hat

    def scalar_diagnostics(self) -> dict[str, np.ndarray]:
        """Per-member (B,) diagnostics of the current state (see :mod:`kolmo.diagnostics`)."""
        c = self.config
        e, z, p = diagnostics.spectral_moments(self.grid, self.omega_hat, self._moments).T
        out = {"energy": e.copy(), "enstrophy": z.copy(), "palinstrophy": p.copy(),
               "dissipation": 2 * c.nu * z + 2 * c.mu * e,
               "cfl": self.equation.speed * c.dt / self.grid.dx}
        if self.closure is not None:
            out["closure_energy"] = self._last_closure[0].copy()
            out["closure_enstrophy"] = self._last_closure[1].copy()
        return out

    def check(self) -> None:
        """Stability guard: raise :class:`BlowUpError` naming step, time and member."""
        finite = np.isfinite(self.omega_hat).all(axis=(-2, -1))
        if not finite.all():
            m = int(np.argmin(finite))
            raise BlowUpError(self.step, self.time, int(self.members[m]), "non-finite",
                              "vorticity holds NaN or infinity")
        cfl = self.equation.speed * self.config.dt / self.grid.dx
        if np.any(cfl > self.config.cfl_max):
            m = int(np.argmax(cfl))
            raise BlowUpError(self.step, self.time, int(self.members[m]), "cfl",
                              f"CFL {cfl[m]:.3g} > limit {self.config.cfl_max}")

    def snapshot(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Physical vorticity and energy/enstrophy spectra of the current state."""
        e, z = diagnostics.spectra(self.grid, self.omega_hat)
        return self.vorticity(), e, z

    # ------------------------------------------------------------------ the loop
    def run(self, writer: RunWriter | None = None,
            progress: Callable[["Simulation", dict[str, np.ndarray]], None] | None = None,
            progress_every: int = 50) -> None:
        """Advance to ``config.t_end``, recording into ``writer`` if given.

        Raises :class:`BlowUpError` after the last good snapshot has been written.
        """
        c = self.config
        nsteps, save_int = c.steps, c.save_interval
        names = list(DIAGNOSTICS) + (list(CLOSURE_DIAGNOSTICS) if self.closure is not None else [])
        cap = save_int
        buf_steps = np.zeros(cap, dtype=np.int64)
        buf = {k: np.zeros((cap, c.members)) for k in names}
        nbuf = 0

        def flush() -> None:
            nonlocal nbuf
            if writer is not None and nbuf:
                writer.append_diagnostics(buf_steps[:nbuf], buf_steps[:nbuf] * c.dt,
                                          {k: v[:nbuf] for k, v in buf.items()})
            nbuf = 0

        def save() -> None:
            if writer is None:
                return
            omega, e, z = self.snapshot()
            writer.append_snapshot(self.step, self.time, omega, e, z)
            st = self.get_state()
            writer.save_restart(st["omega_hat"], self.step, self.time, st["rng_states"], st.get("closure"))

        if self.step == 0:
            self.check()
            save()
        diag: dict[str, np.ndarray] = {}
        while self.step < nsteps:
            self.advance()
            diag = self.scalar_diagnostics()
            buf_steps[nbuf] = self.step
            for k in names:
                buf[k][nbuf] = diag[k]
            nbuf += 1
            at_save = self.step % save_int == 0 or self.step == nsteps
            try:
                if at_save or self.step % c.check_every == 0:
                    self.check()
            except BlowUpError:
                flush()
                raise
            if nbuf == cap or at_save:
                flush()
            if at_save:
                save()
            if progress is not None and (self.step % progress_every == 0 or self.step == nsteps):
                progress(self, diag)
        flush()


# ---------------------------------------------------------------------- CLI entry point
@dataclass
class RunSummary:
    """What :func:`run_simulation` reports back."""

    path: Path | None
    status: str
    steps: int
    time: float
    wall_seconds: float
    final: dict[str, np.ndarray] = field(default_factory=dict)
    error: str = ""
    closure_seconds: float = 0.0  # wall time of the closure hand-offs (Simulation.closure_seconds)

    @property
    def steps_per_second(self) -> float:
        return self.steps / self.wall_seconds if self.wall_seconds > 0 else float("nan")


def file_attrs(sim: Simulation, backend: str) -> dict[str, Any]:
    """Attributes that describe a run completely (written to every run file)."""
    c = sim.config
    return {"config": c.to_json(), "grid": to_json(sim.grid.describe()),
            "equation": to_json(sim.equation.describe()), "stepper": sim.stepper.name,
            "stepper_order": sim.stepper.order, "dealias_rule": sim.grid.describe()["dealias_rule"],
            "preset": c.preset, "seed": c.seed, "kolmo_version": __version__,
            "numpy_version": np.__version__, "fft_backend": backend,
            "closure": sim.closure.name if sim.closure is not None else "none",
            "noise": "Q-Wiener, one draw per step scaled by sqrt(kappa); mean mode unforced"
            if c.noise_sigma > 0 else "none"}


def closure_attrs(closure: ClosureHook | None) -> dict[str, Any]:
    """Run-file attributes a closure reports through ``describe() -> dict`` (strings and numbers as
    they are, anything else as JSON)."""
    if closure is None:
        return {}
    plain = (str, bool, int, float, np.integer, np.floating)
    return {str(k): v if isinstance(v, plain) else to_json(v) for k, v in closure.describe().items()}


def run_simulation(config: Config | None, out: str | Path | None = None, *, resume: str | Path | None = None,
                   t_end: float | None = None, closure: ClosureHook | Callable[[CoarseState], np.ndarray] | None = None,
                   overwrite: bool = False,
                   backend: str = "fftw", threads: int = 1, planner: str = "measure",
                   progress: Callable[[Simulation, dict[str, np.ndarray]], None] | None = None,
                   omega0: np.ndarray | None = None) -> RunSummary:
    """Run (or resume) a simulation into an HDF5 file; the CLI's ``kolmo run``.

    A crash or interrupt leaves ``OUT.partial`` (resume with ``resume=OUT``); a blow-up
    finalises the file with status ``blew-up`` and re-raises :class:`BlowUpError`.
    """
    writer: RunWriter | None = None
    if resume is not None:
        writer = RunWriter.reopen(resume)
        stored = Config.from_json(writer.h5.attrs["config"])
        config = stored.replace(t_end=t_end) if t_end is not None else stored
        writer.set_attrs(config=config.to_json())
        st = writer.restart_state()
        sim = Simulation(config, closure=closure, omega0=np.zeros((1, config.n, config.n)),
                         backend=backend, threads=threads, planner=planner)
        sim.set_state(st["omega_hat"], st["step"], st["rng_states"], st["closure"])
        writer.truncate_after(st["step"])
    else:
        if config is None:
            raise ConfigurationError("run_simulation needs a config (or resume=PATH)")
        sim = Simulation(config, closure=closure, omega0=omega0, backend=backend, threads=threads,
                         planner=planner)
        if out is not None:
            names = DIAGNOSTICS + (CLOSURE_DIAGNOSTICS if closure is not None else ())
            attrs = {**file_attrs(sim, backend), **closure_attrs(sim.closure)}
            writer = RunWriter.create(out, attrs, sim.grid.n, sim.grid.L, sim.members,
                                      diagnostics.spectrum_wavenumbers(sim.grid), names, overwrite=overwrite)
    t0 = _time.perf_counter()
    step0 = sim.step
    status, error = "complete", ""
    try:
        sim.run(writer, progress=progress)
    except BlowUpError as exc:
        status, error = "blew-up", str(exc)
        if writer is not None:
            writer.set_attrs(error=error, **closure_attrs(sim.closure))
            writer.close(status)
        raise
    except BaseException:
        if writer is not None:
            writer.abandon()
        raise
    wall = _time.perf_counter() - t0
    path = None
    if writer is not None:
        writer.set_attrs(wall_seconds=wall, solver_seconds=sim.solver_seconds,
                         closure_seconds=sim.closure_seconds, **closure_attrs(sim.closure))
        if closure is not None:  # closure_seconds is part of solver_seconds (the whole step)
            writer.set_attrs(closure_fraction=sim.closure_seconds / sim.solver_seconds
                             if sim.solver_seconds > 0 else 0.0)
        path = writer.close(status)
    return RunSummary(path=path, status=status, steps=sim.step - step0, time=sim.time, wall_seconds=wall,
                      final=sim.scalar_diagnostics(), error=error, closure_seconds=sim.closure_seconds)
