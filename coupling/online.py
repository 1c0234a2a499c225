r"""Online runs: closure specs, the equation a closure needs, and the paper's online protocol.

What ``kolmo run --closure ...`` calls (the CLI only parses and prints).

Closure specs (``--closure``)
-----------------------------
``none``                      no closure
``smagorinsky`` / ``leith``   eddy viscosity (:mod:`coupling.eddy_viscosity`; ``--closure-coef``)
``PATH.pt`` / ``PATH.pt2``     a learned artifact, TorchScript or AOTInductor (:class:`~coupling.learned.ArtifactClosure`)
``dong2026-default``          the one-step latent reflow artifact shipped in ``coupling/artifacts/``
``replay:DATA.h5[:TRAJ]``     the true closure of a dataset trajectory (:class:`~coupling.replay.ReplayClosure`)

The equation follows the closure's target (and the run says so):

* ``missing-physics`` → advection **off**, stochastic forcing drawn by the solver, stepper
  ``cn-euler``: the paper's reduced model (H holds the advection);
* ``missing-physics-noisy`` → advection **off**, stochastic forcing **off** (H holds both);
* ``sgs`` / ``sgs-resolved`` → advection **on**.

(:func:`kolmo.targets.reduced_model`.) Asking explicitly for a setting the target contradicts
raises :class:`~coupling.errors.TargetMismatchError`; an explicit stepper is kept (and reported).

Unless given explicitly, the preset and grid are taken from the closure (an artifact's
metadata, a dataset's attributes); so is Δt for a missing-physics closure. An LES closure
(``sgs``/``sgs-resolved``) is a function of the resolved state: the LES runs at the coarse grid's
own CFL time step (the preset's Δt for that grid, e.g. :func:`kolmo.presets.kolmogorov_dt`), not at
the DNS's Δt stored with the closure; the run summary says so in a note and the run file keeps the
trained Δt (``closure_trained_dt``).

The paper's online protocol (``--protocol paper``), :data:`PROTOCOLS`
--------------------------------------------------------------------
dong2026 on 64², Δt = 1e-3, 20 time units (20,000 steps), the reduced model, closure resampled
every 5 steps with jitter 5e-5 in between, starting from a test snapshot of a dataset
(``--init DATA.h5:test:INDEX``; a replayed closure defaults to its own start record); ensembles
of ``--members`` (the snapshot is broadcast to all members; each member draws its own closure
samples). Every value can still be overridden explicitly.
"""

from __future__ import annotations

import functools
import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

from coupling.errors import TargetMismatchError
from coupling.protocol import Closure, ClosureWarning
from kolmo.errors import ConfigurationError, FileFormatError
from kolmo.presets import Config
from kolmo.targets import TARGETS, coarse_model_mismatch, get_target, same_coarse_model

__all__ = ["CLOSURE_SPECS", "PROTOCOLS", "ClosureSpec", "ClosureOptions", "OnlineRun", "parse_closure_spec",
           "make_closure", "configure_for_target", "prepare_run", "closure_for_resume", "member_closure_factory"]

CLOSURE_SPECS = ("none", "smagorinsky", "leith", "dong2026-default", "PATH.pt", "PATH.pt2", "replay:DATA.h5[:TRAJ]")

#: Closures shipped inside the package, selectable by name (built by ``benchmarks/default_closure.sh``).
SHIPPED_CLOSURES: dict[str, Path] = {
    "dong2026-default": Path(__file__).resolve().parent / "artifacts" / "dong2026-default.pt",
}

PROTOCOLS: dict[str, dict[str, Any]] = {
    "paper": {"preset": "dong2026", "grid": 64, "dt": 1e-3, "t_end": 20.0, "every": 5, "jitter": 5e-5,
              "targets": ("missing-physics", "missing-physics-noisy"),
              "description": "Dong, Yang & Wu 2026 online protocol (reference code): dong2026 reduced model on 64², "
                             "dt 1e-3, 20 time units = 20,000 steps, closure resampled every 5 steps, jitter 5e-5, "
                             "from a test snapshot (--init DATA.h5:test:INDEX)"},
}


@dataclass(frozen=True)
class ClosureSpec:
    """A parsed ``--closure`` value: ``kind`` in none, smagorinsky, leith, artifact, replay."""

    text: str
    kind: str
    path: Path | None = None
    trajectory: int | None = None


@dataclass
class ClosureOptions:
    """Closure settings from the command line (``None``: the default or the protocol's value)."""

    every: int | None = None
    jitter: float | None = None
    seed: int | None = None
    device: str = "cpu"
    dtype: str = "float32"
    nonfinite: str = "raise"
    coefficient: float | None = None
    threads: int | None = None


@dataclass
class OnlineRun:
    """What :func:`prepare_run` hands to :func:`kolmo.simulation.run_simulation`."""

    config: Config
    closure: Closure | None
    notes: list[str] = field(default_factory=list)


def parse_closure_spec(text: str) -> ClosureSpec:
    """Parse ``none``, ``smagorinsky``, ``leith``, a shipped name (``dong2026-default``), ``PATH.pt``,
    ``PATH.pt2`` or ``replay:DATA.h5[:TRAJ]``."""
    t = text.strip()
    low = t.lower()
    if low in ("none", "smagorinsky", "leith"):
        return ClosureSpec(t, low)
    if low in SHIPPED_CLOSURES:
        path = SHIPPED_CLOSURES[low]
        if not path.exists():
            raise ConfigurationError(f"shipped closure {t!r} is not installed (expected {path}); "
                                     "build it with benchmarks/default_closure.sh")
        return ClosureSpec(t, "artifact", path)
    if low.startswith("replay:"):
        rest = t[len("replay:"):]
        path, traj = rest, None
        head, sep, tail = rest.rpartition(":")
        if sep and tail.lstrip("-").isdigit():
            path, traj = head, int(tail)
        if not path:
            raise ConfigurationError(f"closure {text!r}: expected replay:DATA.h5[:TRAJ]")
        return ClosureSpec(t, "replay", Path(path), traj)
    if Path(t).suffix in (".pt", ".pts", ".ts", ".pt2"):
        return ClosureSpec(t, "artifact", Path(t))
    raise ConfigurationError(f"unknown closure {text!r}; expected one of {', '.join(CLOSURE_SPECS)}")


def _dataset_init(init: str | None) -> tuple[Path, str, int] | None:
    """``(path, split, index)`` of an ``--init DATA.h5:SPLIT:INDEX`` spec, else ``None``."""
    if init is None:
        return None
    parts = init.split(":")
    if len(parts) == 3 and parts[2].lstrip("-").isdigit():
        return Path(parts[0]), parts[1], int(parts[2])
    return None


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve()
    except OSError:
        return False


def make_closure(spec: str | ClosureSpec, options: ClosureOptions | None = None,
                 init: str | None = None) -> Closure | None:
    """Build the closure of a ``--closure`` spec (``None`` for ``none``).

    A replayed closure starts at the record of ``init`` when ``init`` is ``DATA.h5:SPLIT:INDEX``
    of the same file, else at the first record of its trajectory.
    """
    s = parse_closure_spec(spec) if isinstance(spec, str) else spec
    o = options or ClosureOptions()
    closure: Closure | None
    if s.kind == "none":
        return None
    if s.kind in ("smagorinsky", "leith"):
        from coupling.eddy_viscosity import LEITH_C, SMAGORINSKY_C, Leith, Smagorinsky

        if s.kind == "smagorinsky":
            c_s = SMAGORINSKY_C if o.coefficient is None else o.coefficient
            closure = Smagorinsky(c_s, nonfinite=o.nonfinite)
        else:
            closure = Leith(LEITH_C if o.coefficient is None else o.coefficient, nonfinite=o.nonfinite)
    elif s.kind == "artifact":
        from coupling.learned import ArtifactClosure

        if s.path is None:
            raise ConfigurationError(f"closure {s.text!r}: expected PATH.pt or PATH.pt2")
        closure = ArtifactClosure(s.path, device=o.device, dtype=o.dtype, every=1 if o.every is None else o.every,
                                  jitter=0.0 if o.jitter is None else o.jitter, seed=o.seed or 0,
                                  nonfinite=o.nonfinite, threads=o.threads)
    else:
        from coupling.replay import ReplayClosure

        if s.path is None:
            raise ConfigurationError(f"closure {s.text!r}: expected replay:DATA.h5[:TRAJ]")
        start = _dataset_init(init)
        if start is not None and _same_file(start[0], s.path):
            closure = ReplayClosure(s.path, split=start[1], trajectory=s.trajectory, start_index=start[2],
                                    nonfinite=o.nonfinite)
        else:
            closure = ReplayClosure(s.path, trajectory=s.trajectory, nonfinite=o.nonfinite)
    closure.spec = s.text
    return closure


def configure_for_target(config: Config, target: str | None, explicit: Mapping[str, Any]) -> tuple[Config, list[str]]:
    """The config with the equation a closure target needs, and notes saying what was set.

    ``explicit`` holds the fields the user set; one that contradicts the target raises
    :class:`TargetMismatchError` naming both.
    """
    if target is None or target == "any":
        return config, []
    t = get_target(target)
    changes = t.coarse_model_changes()
    if "advection" in explicit and bool(explicit["advection"]) != t.advection:
        raise TargetMismatchError(
            f"the closure's target is {target!r}, which needs advection {'on' if t.advection else 'off'}, but "
            f"advection={'true' if explicit['advection'] else 'false'} was asked for explicitly; drop it, or use "
            f"a closure with target {'sgs' if explicit['advection'] else 'missing-physics'}")
    kept = {k: explicit[k] for k in changes if k in explicit and k != "advection"}
    probe = config.replace(**{k: v for k, v in changes.items() if k not in kept})
    mismatch = coarse_model_mismatch(target, probe)
    if mismatch is not None:
        raise TargetMismatchError(f"the closure has {mismatch}, asked for explicitly; drop it, or use a closure of "
                                  "another target")
    notes = [f"closure target {target}: {t.describe_coarse_model()}"]
    if kept:
        notes.append(f"kept as asked explicitly: {', '.join(f'{k}={v}' for k, v in kept.items())}")
    return probe, notes


def prepare_run(preset: str | None, grid: int | None, overrides: Mapping[str, Any], closure: str | None,
                options: ClosureOptions | None = None, protocol: str | None = None,
                init: str | None = None) -> OnlineRun:
    """Config, closure and notes for ``kolmo run``: the one place a run's configuration is built.

    Without a closure or protocol this is the preset with the overrides (and ``--init``); with
    them, the closure's preset, grid, Δt and equation (:func:`configure_for_target`) and the
    protocol's values, each unless given explicitly. Resampling options given to a closure that
    does not resample (or to no closure) are named in a note, never silently dropped.

    Parameters
    ----------
    preset, grid
        As given on the command line (``None``: protocol's, closure's, or the preset default).
    overrides
        Config fields given on the command line (``None`` values are ignored).
    closure
        A ``--closure`` spec or ``None``.
    options
        Closure settings.
    protocol
        ``None`` or a key of :data:`PROTOCOLS`.
    init
        ``--init`` spec (``RUN.h5[:INDEX]`` or ``DATA.h5:SPLIT:INDEX``).
    """
    from kolmo.presets import preset as make_preset

    o = options or ClosureOptions()
    explicit = {k: v for k, v in overrides.items() if v is not None}
    notes: list[str] = []
    cadence = [f"--closure-{k} {getattr(o, k):g}" for k in ("every", "jitter") if getattr(o, k) is not None]
    proto_targets: tuple[str, ...] | None = None
    if protocol is not None:
        preset, grid, proto_targets = _apply_protocol(protocol, preset, grid, explicit, o, notes)
    if o.seed is None:
        o.seed = int(explicit.get("seed", 0))
    c = make_closure(closure, o, init) if closure is not None else None
    if cadence and (c is None or not c.resamples):
        who = "there is no closure" if c is None else f"closure {c.name} is evaluated every step"
        notes.append(f"{' and '.join(cadence)} ignored: {who} (only artifact closures are resampled)")
    les = c is not None and c.target in TARGETS and get_target(c.target).advection
    if c is not None:
        preset = preset if preset is not None else c.preset
        grid = grid if grid is not None else c.grid_n
        if c.dt is not None and "dt" not in explicit and (preset is None or preset == c.preset) and not les:
            explicit["dt"] = c.dt  # missing physics: the reduced model runs at the closure's own dt
    if c is not None and init is None and getattr(c, "start_row", None) is not None:
        init = f"{c.path}:{c.split}:{c.start_row}"  # type: ignore[attr-defined]
        notes.append(f"initial condition: the replayed trajectory's start record ({init})")
    if protocol is not None and init is None:
        raise ConfigurationError(f"protocol {protocol} starts from a dataset test snapshot: pass --init DATA.h5:test:INDEX")
    if init is not None:
        explicit["initial"] = "file"
        explicit["initial_params"] = {"path": init}
    config = make_preset(preset or "kolmogorov", grid, **explicit)
    if les and c is not None and c.dt is not None and not math.isclose(c.dt, config.dt, rel_tol=1e-9):
        notes.append(_les_dt_note(c.dt, config, "dt" in explicit))
    target = c.target if c is not None and c.target != "any" else (proto_targets[0] if proto_targets else None)
    if proto_targets is not None and target not in proto_targets:
        raise TargetMismatchError(f"protocol {protocol} is for targets {list(proto_targets)}, but the closure's target "
                                  f"is {target!r}")
    _check_init_target(init, target)
    config, tnotes = configure_for_target(config, target, explicit)
    notes.extend(tnotes)
    if c is not None:  # fail before the run starts; the Simulation validates again (and warns)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ClosureWarning)
            c.validate(config)
    if c is not None and c.resamples:
        notes.append(f"closure {c.name}: device {c.device}, dtype {c.dtype_name}, every {c.every} steps, "  # type: ignore[attr-defined]
                     f"jitter {c.jitter:g}, seed {c.seed}, {config.members} member(s) per call")  # type: ignore[attr-defined]
    return OnlineRun(config, c, notes)


def _apply_protocol(protocol: str, preset: str | None, grid: int | None, explicit: dict[str, Any],
                    o: ClosureOptions, notes: list[str]) -> tuple[str, int | None, tuple[str, ...]]:
    """Fill ``explicit`` and ``o`` with the protocol's values where not given and note it; returns its
    ``(preset, grid, targets)`` (:class:`ConfigurationError` for an unknown protocol or another preset)."""
    if protocol not in PROTOCOLS:
        raise ConfigurationError(f"unknown protocol {protocol!r}; valid: {', '.join(PROTOCOLS)}")
    p = PROTOCOLS[protocol]
    if preset is not None and preset != p["preset"]:
        raise ConfigurationError(f"protocol {protocol} runs preset {p['preset']!r}, but preset {preset!r} was asked for")
    grid = grid if grid is not None else p["grid"]
    explicit.setdefault("dt", p["dt"])
    explicit.setdefault("t_end", p["t_end"])
    o.every = o.every if o.every is not None else p["every"]
    o.jitter = o.jitter if o.jitter is not None else p["jitter"]
    notes.append(f"protocol {protocol}: {p['description']}")
    return p["preset"], grid, p["targets"]


def _les_dt_note(trained_dt: float, config: Config, explicit_dt: bool) -> str:
    """The run-summary note of an LES closure trained at another Δt than the run's."""
    how = "as asked explicitly" if explicit_dt else f"the coarse grid's own CFL time step (preset {config.preset}, {config.n}²)"
    return (f"LES time step dt = {config.dt:.6g} ({how}); the closure was trained at dt = {trained_dt:.6g} (its DNS's). "
            "An sgs closure is a function of the resolved state, so it is called at the LES step; the trained dt "
            "stays in the run file (closure_trained_dt)")


def _check_init_target(init: str | None, target: str | None) -> None:
    """Refuse a dataset snapshot of another target than the closure's (its coarse model differs)."""
    start = _dataset_init(init)
    if start is None or target is None or target == "any":
        return
    from kolmo.pairs import open_pairs

    stored = open_pairs(start[0], start[1]).attrs.get("target")
    if stored is not None and stored != target and not same_coarse_model(stored, target):
        raise TargetMismatchError(f"--init {init} is a snapshot of a {stored!r} dataset, but the closure's target is "
                                  f"{target!r}: its coarse model differs; start from a {target!r} dataset")


def closure_for_resume(run_path: str | Path, closure: str | None = None, device: str | None = None,
                       threads: int | None = None) -> Closure | None:
    """Rebuild the closure a run file was made with (from its ``closure_*`` attributes) to resume it.

    ``closure``, if given, must equal the stored spec; ``device`` may differ from the stored one
    (then the restart is exact only if the arithmetic is the same on both devices).
    """
    import h5py

    from kolmo.io import partial_path

    final = Path(run_path)
    if final.name.endswith(".partial"):
        final = final.with_name(final.name[: -len(".partial")])
    source = partial_path(final) if partial_path(final).exists() else final
    if not source.exists():
        raise FileFormatError(f"no run file to resume: neither {final} nor {partial_path(final)} exists")
    try:
        with h5py.File(source, "r") as h5:
            attrs = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in h5.attrs.items()}
    except OSError as exc:
        raise FileFormatError(f"cannot read {source} ({exc})") from None
    stored = attrs.get("closure_spec")
    if stored is None:
        if attrs.get("closure", "none") not in ("none", None) and closure is None:
            raise ConfigurationError(f"{source} was run with closure {attrs['closure']!r} built outside the CLI; "
                                     "resume it with run_simulation(closure=...)")
        if closure is not None:
            raise ConfigurationError(f"{source} was run without a closure; cannot resume it with --closure {closure}")
        return None
    if closure is not None and closure.strip() != stored:
        raise ConfigurationError(f"{source} was run with --closure {stored}, not {closure}; resume with the same closure")
    o = ClosureOptions(every=int(attrs.get("closure_every", 1)), jitter=float(attrs.get("closure_jitter", 0.0)),
                       seed=int(attrs.get("closure_seed", 0)), device=device or str(attrs.get("closure_device", "cpu")),
                       dtype=str(attrs.get("closure_dtype", "float32")),
                       nonfinite=str(attrs.get("closure_nonfinite_policy", "raise")),
                       coefficient=float(attrs["closure_coefficient"]) if "closure_coefficient" in attrs else None,
                       threads=threads)
    spec = parse_closure_spec(stored)
    init = None
    if spec.kind == "replay" and "closure_start_index" in attrs:
        init = f"{spec.path}:{attrs.get('closure_split', 'test')}:{int(attrs['closure_start_index'])}"
    return make_closure(spec, o, init)


def member_closure_factory(closure: str | None, options: ClosureOptions | None, init: str | None,
                           built: Closure | None) -> Callable[[], Closure | None] | None:
    """A picklable factory that rebuilds, in each process running a batch of members (a Dask worker of
    ``kolmo run --workers``, :mod:`kolmo.cluster.ensemble`), the closure :func:`prepare_run` built here
    as ``built`` from the same spec, options and ``init``; ``None`` without a closure.

    Only closures that treat every member on its own are accepted: eddy viscosity and the replayed
    true closure. An artifact closure draws the samples of all members from one generator in one
    batched network call, so a member's samples (and the network's batched arithmetic) depend on
    the batch it is in: split into batches it would not equal the serial run, and it is refused
    (:class:`~kolmo.errors.ConfigurationError`).
    """
    if built is None or closure is None:
        return None
    if parse_closure_spec(closure).kind == "artifact":
        raise ConfigurationError(
            f"--closure {closure} cannot be split into batches of members (--workers, --scheduler, "
            "--members-per-batch): the artifact draws the samples of all members from one generator in one batched "
            "call, so a batch's members would get other samples than in the serial run; run it without them")
    return functools.partial(make_closure, closure, options, init)
