"""The HDF5 file of a dataset build (:mod:`kolmo.dataset`): root attributes, the preallocated layout,
resuming an unfinished ``OUT.partial`` (refused when built with other arguments), writing a finished
batch at its fixed rows and marking it done, and the final statistics and fingerprint. The layout
and the reader of a finished file are :mod:`kolmo.pairs`."""

from __future__ import annotations

import datetime as _dt
import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import h5py
import numpy as np

from kolmo import __version__
from kolmo.errors import ConfigurationError, FileFormatError
from kolmo.grid import Grid
from kolmo.io import to_json
from kolmo.pairs import FINGERPRINT_DEFINITION, FORMAT, FORMAT_VERSION, SPLITS, fingerprint, split_statistics
from kolmo.presets import Config
from kolmo.targets import TARGETS, get_target, noise_floor

if TYPE_CHECKING:
    from kolmo.dataset import DatasetSpec

__all__ = ["COARSE_GRAININGS", "SPLIT_RULE", "root_attrs", "create", "open_partial", "write_batch", "done_mask",
           "finalize"]

COARSE_GRAININGS: dict[str, str] = {
    "subsample": "every (N_f/N_c)-th grid point, starting at index 0 (no filter)",
    "sharp": "sharp spectral cutoff: keep the coarse grid's modes |n_x|, |n_y| < N_c/2 (coarse Nyquist dropped)",
    "gaussian": "Gaussian filter exp(-|k|^2 D^2/24), D = L/N_c, then the sharp spectral cutoff",
}
SPLIT_RULE = "trajectory j < trajectories - test_trajectories -> train, else test (by trajectory, never by snapshot)"


def root_attrs(spec: DatasetSpec, cfg: Config, steps: np.ndarray, backend: str) -> dict[str, Any]:
    import numba
    import pyfftw

    fine_grid = Grid(spec.fine, cfg.L, cfg.dealias)
    coarse_grid = Grid(spec.coarse, cfg.L, cfg.dealias)
    return {
        "format": FORMAT, "format_version": FORMAT_VERSION, "status": "building",
        "preset": spec.preset, "target": spec.target, "target_definition": TARGETS[spec.target].definition,
        "coarse_graining": spec.filter, "coarse_graining_definition": COARSE_GRAININGS[spec.filter],
        "config": cfg.to_json(), "coarse_config": spec.coarse_config().to_json(),
        "build": to_json(spec.build_arguments()),
        "n_fine": spec.fine, "n_coarse": spec.coarse, "coarsening_factor": spec.fine // spec.coarse,
        "L": cfg.L, "dt": cfg.dt, "stepper": cfg.stepper, "nu": cfg.nu, "mu": cfg.mu,
        "fine_grid": to_json(fine_grid.describe()), "coarse_grid": to_json(coarse_grid.describe()),
        "seed": int(spec.seed),
        "seeds": to_json({"root": int(spec.seed), "trajectory_streams":
                          "trajectory j: SeedSequence([seed, j, 0]) initial condition, [seed, j, 1] noise"}),
        "burn_in": spec.burn_in, "t_end": spec.t_end, "every": spec.every,
        "snapshots_per_trajectory": len(steps), "trajectories": spec.trajectories,
        "train_trajectories": spec.train_trajectories, "test_trajectories": spec.test_trajectories,
        "members_per_batch": spec.members_per_batch, "split_rule": SPLIT_RULE,
        "recording_rule": "t = burn_in + k*every < t_end; fine step index = round(t/dt)",
        "dtype": "vorticity and closure stored as float32 (computed in float64); time float64",
        "kolmo_version": __version__, "numpy_version": np.__version__, "h5py_version": h5py.__version__,
        "numba_version": numba.__version__, "pyfftw_version": pyfftw.__version__, "fft_backend": backend,
        "fingerprint_definition": FINGERPRINT_DEFINITION,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(),
    }


def create(part: Path, spec: DatasetSpec, cfg: Config, steps: np.ndarray, backend: str) -> h5py.File:
    part.parent.mkdir(parents=True, exist_ok=True)
    h5 = h5py.File(part, "w")
    for k, v in root_attrs(spec, cfg, steps, backend).items():
        h5.attrs[k] = v
    nc, t = spec.coarse, len(steps)
    ranges = {"train": range(0, spec.train_trajectories), "test": range(spec.train_trajectories, spec.trajectories)}
    for split in SPLITS:
        ids = np.asarray(ranges[split], dtype=np.int64)
        n = len(ids) * t
        g = h5.create_group(split)
        g.attrs["trajectories"], g.attrs["pairs"] = len(ids), n
        for name, units, desc in (
                ("vorticity", "1/time", f"coarse vorticity ({spec.filter}), dims (pair, y, x)"),
                ("closure", "1/time^2", f"{spec.target} closure, a vorticity tendency, dims (pair, y, x)")):
            d = g.create_dataset(name, shape=(n, nc, nc), dtype="f4", chunks=(1, nc, nc) if n else None,
                                 fillvalue=np.float32(np.nan))
            d.attrs["units"], d.attrs["description"] = units, desc
        g.create_dataset("time", data=np.tile(steps * cfg.dt, len(ids))).attrs["units"] = "time"
        g.create_dataset("step", data=np.tile(steps, len(ids)))
        g.create_dataset("trajectory", data=np.repeat(ids, t))
        g.create_dataset("done", data=np.zeros(len(ids), dtype=np.uint8))
    h5.flush()
    return h5


def differences(stored: dict[str, Any], wanted: dict[str, Any]) -> list[str]:
    keys = sorted(set(stored) | set(wanted))
    return [f"{k}: file {stored.get(k, '(absent)')!r}, now {wanted.get(k, '(absent)')!r}"
            for k in keys if stored.get(k) != wanted.get(k)]


def open_partial(part: Path, spec: DatasetSpec) -> h5py.File:
    """Reopen an unfinished build after checking it is ours and was built with ``spec``; never modifies
    a file it refuses."""
    keep = "it was left untouched (delete it, or pass --overwrite / overwrite=True to start over)"
    try:
        with h5py.File(part, "r") as h5:
            fmt = h5.attrs.get("format")
            build = h5.attrs.get("build")
            groups_ok = all(s in h5 and "done" in h5[s] and "closure" in h5[s] for s in SPLITS)
    except OSError as exc:
        raise FileFormatError(f"cannot open the unfinished build {part} (corrupt or not HDF5: {exc}); {keep}") from None
    if fmt != FORMAT or build is None or not groups_ok:
        raise FileFormatError(f"{part} is not an unfinished kolmo dataset (format={fmt!r}); {keep}")
    try:
        stored = json.loads(build)
    except json.JSONDecodeError:
        raise FileFormatError(f"{part} has an unreadable 'build' attribute; {keep}") from None
    diffs = differences(stored, spec.build_arguments())
    if diffs:
        raise ConfigurationError(
            f"the unfinished build {part} was made with different arguments ({'; '.join(diffs)}); rerun with "
            f"the same arguments to resume it; {keep}")
    try:
        return h5py.File(part, "r+")
    except OSError as exc:
        raise FileFormatError(f"cannot reopen {part} for writing: {exc}") from None



def write_batch(h5: h5py.File, spec: DatasetSpec, start: int, vort: np.ndarray, clos: np.ndarray) -> None:
    t = vort.shape[1]
    members = vort.shape[0]
    by_split: dict[str, list[int]] = {}
    for m in range(members):
        by_split.setdefault(spec.locate(start + m)[0], []).append(m)
    for split, ms in by_split.items():  # consecutive members -> consecutive rows
        first = spec.locate(start + ms[0])[1]
        rows = slice(first * t, (first + len(ms)) * t)
        g = h5[split]
        g["vorticity"][rows] = vort[ms[0]:ms[-1] + 1].reshape(-1, *vort.shape[2:])
        g["closure"][rows] = clos[ms[0]:ms[-1] + 1].reshape(-1, *clos.shape[2:])
    h5.flush()
    for split, ms in by_split.items():  # only after the data are on disk
        first = spec.locate(start + ms[0])[1]
        h5[split]["done"][first:first + len(ms)] = 1
    h5.flush()


def done_mask(h5: h5py.File) -> np.ndarray:
    return np.concatenate([np.asarray(h5[s]["done"][()], dtype=bool) for s in SPLITS])

def finalize(h5: h5py.File, part: Path, spec: DatasetSpec, cfg: Config) -> tuple[dict[str, Any], str]:
    """Close a finished build: train statistics (with the noise floor of a noisy target), the content
    fingerprint and ``status = complete``; returns ``(stats, fingerprint)``."""
    if not done_mask(h5).all():  # pragma: no cover - defensive
        raise FileFormatError(f"{part}: some trajectories are still missing after the build")
    stats = split_statistics(h5, "train")
    if get_target(str(spec.target)).includes_noise:
        rms = math.hypot(stats["closure"]["mean"], stats["closure"]["std"])
        stats["irreducible_floor"] = noise_floor(cfg, rms)
        stats["irreducible_floor_definition"] = (
            "std of the Q-Wiener tendency sigma_W xi / rms of the train closures: the relative error left to "
            "the exact conditional mean (the noise draw is independent of omega)")
    fp = fingerprint(h5)
    h5.attrs["stats"] = to_json(stats)
    h5.attrs["fingerprint"] = fp
    h5.attrs["status"] = "complete"
    h5.attrs["finished"] = _dt.datetime.now(_dt.timezone.utc).isoformat()
    return stats, fp
