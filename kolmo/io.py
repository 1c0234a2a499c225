r"""HDF5 run files: snapshots, per-step diagnostics, spectra, parameters and exact restart state.

Layout of a run file (all arrays chunked; dimension scales attached so ``xarray`` can open it)::

    /                      attrs: format="kolmo-run", format_version, status ("running",
                           "complete", "blew-up"), config (JSON), grid (JSON), equation (JSON),
                           stepper, dealias_rule, kolmo_version, numpy_version, fft_backend, created
    /x, /y  (N,)           grid coordinates (dimension scales)
    /member (B,)           member indices (first_member + i)
    /time   (T,)           snapshot times;   /step (T,) snapshot step indices
    /vorticity (T, B, N, N) float32 snapshots (dims: time, member, y, x)
    /spectra/k (K,)        shell wavenumbers;  /spectra/energy, /spectra/enstrophy (T, B, K)
    /diagnostics/step, /diagnostics/time (S,);  /diagnostics/<name> (S, B) per step
    /restart/omega_hat (B, N, N//2+1) complex128; attrs step, time, rng_states (JSON)
    /restart/closure/...   optional closure state (arrays + JSON attrs)

While a run is in progress the file is ``NAME.partial`` (clearly temporary); it is renamed to
``NAME`` when the run ends (complete, or blew-up after the last good snapshot). An existing
``NAME`` is never overwritten unless asked. The restart group is updated after every snapshot,
so an interrupted ``.partial`` file resumes bit-for-bit from its last snapshot.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from kolmo.atomic import partial_path  # noqa: F401 - re-exported (the temporary name of a run file)
from kolmo.errors import ConfigurationError, FileFormatError, OutputExistsError, ShapeError

FORMAT = "kolmo-run"
FORMAT_VERSION = 1


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating,)):
        return float(obj)
    raise TypeError(f"not JSON serialisable: {type(obj)}")


def to_json(obj: Any) -> str:
    return json.dumps(obj, default=_json_default, sort_keys=True)


class RunWriter:
    """Appends snapshots, diagnostics and restart state to a run file.

    Use :meth:`create` for a new run and :meth:`reopen` to resume; :meth:`close` finalises.
    """

    def __init__(self, h5: h5py.File, final_path: Path, overwrite: bool = False) -> None:
        self.h5, self.final_path, self.overwrite = h5, final_path, overwrite

    # ------------------------------------------------------------------ creation / reopening
    @classmethod
    def create(cls, path: str | os.PathLike, attrs: dict[str, Any], n: int, L: float,
               members: np.ndarray, spectrum_k: np.ndarray, diagnostics: tuple[str, ...],
               overwrite: bool = False) -> "RunWriter":
        """Create ``path.partial`` for a new run; refuse if ``path`` (or a partial run) exists."""
        final = Path(path)
        part = partial_path(final)
        if final.exists() and not overwrite:
            raise OutputExistsError(f"output file {final} already exists; choose another name or pass overwrite")
        if part.exists() and not overwrite:
            raise OutputExistsError(
                f"an interrupted run left {part}; resume it with --resume {final} or delete it")
        final.parent.mkdir(parents=True, exist_ok=True)
        h5 = h5py.File(part, "w")
        b = len(members)
        for k, v in attrs.items():
            h5.attrs[k] = v
        h5.attrs["format"] = FORMAT
        h5.attrs["format_version"] = FORMAT_VERSION
        h5.attrs["status"] = "running"
        h5.attrs["created"] = _dt.datetime.now(_dt.timezone.utc).isoformat()
        coords = np.arange(n) * (L / n)
        for name in ("x", "y"):
            d = h5.create_dataset(name, data=coords)
            d.attrs["units"] = "length"
            d.make_scale(name)
        dm = h5.create_dataset("member", data=np.asarray(members, dtype=np.int64))
        dm.make_scale("member")
        t = h5.create_dataset("time", shape=(0,), maxshape=(None,), dtype="f8", chunks=(256,))
        t.make_scale("time")
        h5.create_dataset("step", shape=(0,), maxshape=(None,), dtype="i8", chunks=(256,))
        vort = h5.create_dataset("vorticity", shape=(0, b, n, n), maxshape=(None, b, n, n), dtype="f4",
                                 chunks=(1, 1, n, n))
        vort.attrs["units"] = "1/time"
        vort.attrs["description"] = "vorticity snapshots (float32), dims (time, member, y, x)"
        for i, sc in enumerate(("time", "member", "y", "x")):
            vort.dims[i].attach_scale(h5[sc])
        sp = h5.create_group("spectra")
        kk = sp.create_dataset("k", data=spectrum_k)
        kk.make_scale("k")
        for name, units in (("energy", "length^3/time^2"), ("enstrophy", "length/time^2")):
            d = sp.create_dataset(name, shape=(0, b, len(spectrum_k)), maxshape=(None, b, len(spectrum_k)),
                                  dtype="f8", chunks=(1, b, len(spectrum_k)))
            d.attrs["units"] = units
            d.attrs["description"] = f"isotropic {name} spectrum, shell sums: sum over k equals the domain mean"
            d.dims[0].attach_scale(t)
            d.dims[1].attach_scale(dm)
            d.dims[2].attach_scale(kk)
        dg = h5.create_group("diagnostics")
        ds = dg.create_dataset("step", shape=(0,), maxshape=(None,), dtype="i8", chunks=(4096,))
        dt_ = dg.create_dataset("time", shape=(0,), maxshape=(None,), dtype="f8", chunks=(4096,))
        dt_.make_scale("time")
        del ds
        from kolmo.diagnostics import UNITS

        for name in diagnostics:
            d = dg.create_dataset(name, shape=(0, b), maxshape=(None, b), dtype="f8",
                                  chunks=(max(1, min(4096, 2**20 // (8 * b))), b))
            units, desc = UNITS.get(name, ("", name))
            d.attrs["units"], d.attrs["description"] = units, desc
            d.dims[0].attach_scale(dt_)
            d.dims[1].attach_scale(dm)
        h5.create_group("restart")
        h5.flush()
        return cls(h5, final, overwrite)

    @classmethod
    def reopen(cls, path: str | os.PathLike) -> "RunWriter":
        """Reopen an interrupted (``.partial``) or finished run to continue it."""
        final = Path(path)
        if final.name.endswith(".partial"):
            final = final.with_name(final.name[: -len(".partial")])
        part = partial_path(final)
        if part.exists() and final.exists():
            raise OutputExistsError(f"both {final} and {part} exist; remove the stale one")
        source = part if part.exists() else final
        if not source.exists():
            raise FileFormatError(f"no run file to resume: neither {final} nor {part} exists")
        try:  # validate before touching anything
            with h5py.File(source, "r") as h5:
                ok = h5.attrs.get("format") == FORMAT and "restart" in h5 and "omega_hat" in h5["restart"]
                per = h5.attrs.get("members_per_batch")
                members = h5["member"].shape[0] if "member" in h5 else 0
        except OSError as exc:
            raise FileFormatError(f"cannot open {source} to resume (corrupt or not HDF5): {exc}") from None
        if per is not None and int(per) < members:
            raise ConfigurationError(
                f"{source} was integrated in batches of {int(per)} of its {members} members (kolmo run "
                "--members-per-batch / --workers); a resume integrates all members as one batch and would not continue "
                "it bit-exactly, so it is refused; rerun it with the longer --time instead")
        if not ok:
            raise FileFormatError(f"{source} is not a resumable kolmo run file (no restart state)")
        if source == final:
            os.replace(final, part)
        h5 = h5py.File(part, "r+")
        h5.attrs["status"] = "running"
        return cls(h5, final)

    # ------------------------------------------------------------------ state
    def restart_state(self) -> dict[str, Any]:
        """The saved restart state: ``omega_hat``, ``step``, ``time``, ``rng_states``, ``closure``."""
        r = self.h5["restart"]
        closure = {}
        if "closure" in r:
            closure = {k: np.asarray(v) for k, v in r["closure"].items()}
            closure.update({k: json.loads(v) for k, v in r["closure"].attrs.items()})
        return {"omega_hat": np.asarray(r["omega_hat"]), "step": int(r.attrs["step"]),
                "time": float(r.attrs["time"]), "rng_states": json.loads(r.attrs["rng_states"]),
                "closure": closure}

    def truncate_after(self, step: int) -> None:
        """Drop snapshots and diagnostics recorded after ``step`` (before resuming from it)."""
        h5 = self.h5
        keep = int(np.searchsorted(np.asarray(h5["step"]), step, side="right"))
        for name in ("time", "step", "vorticity", "spectra/energy", "spectra/enstrophy"):
            h5[name].resize(keep, axis=0)
        dsteps = np.asarray(h5["diagnostics/step"])
        keep_d = int(np.searchsorted(dsteps, step, side="right"))
        for name, d in h5["diagnostics"].items():
            d.resize(keep_d, axis=0)

    # ------------------------------------------------------------------ appending
    def append_snapshot(self, step: int, time: float, omega: np.ndarray, e_spec: np.ndarray,
                        z_spec: np.ndarray) -> None:
        h5 = self.h5
        v = h5["vorticity"]
        if omega.shape != v.shape[1:]:
            raise ShapeError(f"snapshot has shape {omega.shape}, file expects {v.shape[1:]}")
        i = v.shape[0]
        for name in ("time", "step", "vorticity", "spectra/energy", "spectra/enstrophy"):
            h5[name].resize(i + 1, axis=0)
        h5["time"][i] = time
        h5["step"][i] = step
        v[i] = omega.astype(np.float32)
        h5["spectra/energy"][i] = e_spec
        h5["spectra/enstrophy"][i] = z_spec

    def append_diagnostics(self, steps: np.ndarray, times: np.ndarray, values: dict[str, np.ndarray]) -> None:
        if len(steps) == 0:
            return
        g = self.h5["diagnostics"]
        i = g["step"].shape[0]
        m = len(steps)
        g["step"].resize(i + m, axis=0)
        g["step"][i:] = steps
        g["time"].resize(i + m, axis=0)
        g["time"][i:] = times
        for name, arr in values.items():
            g[name].resize(i + m, axis=0)
            g[name][i:] = arr

    def save_restart(self, omega_hat: np.ndarray, step: int, time: float, rng_states: Any,
                     closure_state: dict[str, Any] | None = None) -> None:
        r = self.h5["restart"]
        if "omega_hat" in r and r["omega_hat"].shape == omega_hat.shape:
            r["omega_hat"][...] = omega_hat
        else:
            if "omega_hat" in r:
                del r["omega_hat"]
            r.create_dataset("omega_hat", data=omega_hat)
        r.attrs["step"] = int(step)
        r.attrs["time"] = float(time)
        r.attrs["rng_states"] = to_json(rng_states)
        if "closure" in r:
            del r["closure"]
        if closure_state:
            c = r.create_group("closure")
            for k, v in closure_state.items():
                if isinstance(v, np.ndarray):
                    c.create_dataset(k, data=v)
                else:
                    c.attrs[k] = to_json(v)
        self.h5.flush()

    def set_attrs(self, **attrs: Any) -> None:
        for k, v in attrs.items():
            self.h5.attrs[k] = v

    def close(self, status: str = "complete") -> Path:
        """Write ``status``, close, and rename ``.partial`` to the final name (replacing an existing file only
        when the run was created with ``overwrite``). Returns the final path."""
        self.h5.attrs["status"] = status
        self.h5.close()
        part = partial_path(self.final_path)
        if self.final_path.exists() and not self.overwrite:
            raise OutputExistsError(f"{self.final_path} appeared during the run; the result is kept in {part}")
        os.replace(part, self.final_path)
        return self.final_path

    def abandon(self) -> Path:
        """Close without renaming (the ``.partial`` file stays for ``--resume``)."""
        try:
            self.h5.flush()
            self.h5.close()
        except Exception:  # noqa: BLE001 - best effort on the way out of a crash
            pass
        return partial_path(self.final_path)


def open_run(path: str | os.PathLike) -> h5py.File:
    """Open a run file read-only, with a typed error for missing, corrupt or foreign files."""
    p = Path(path)
    if not p.exists():
        alt = partial_path(p)
        hint = f" (an interrupted run is in {alt})" if alt.exists() else ""
        raise FileFormatError(f"run file {p} does not exist{hint}")
    try:
        h5 = h5py.File(p, "r")
    except OSError as exc:
        raise FileFormatError(f"cannot read {p}: not an HDF5 file or corrupt ({exc})") from None
    return h5


def load_snapshot(spec: str, n: int | None = None) -> np.ndarray:
    """Vorticity ``(B, N, N)`` from ``PATH``, ``PATH:INDEX`` (run file snapshot, all members) or
    ``PATH:SPLIT:INDEX`` (dataset pair, one member). Negative indices count from the end."""
    parts = spec.split(":")
    path, rest = parts[0], parts[1:]
    with open_run(path) as h5:
        try:
            if len(rest) == 2:
                split, idx = rest[0], int(rest[1])
                if split not in h5 or "vorticity" not in h5[split]:
                    raise FileFormatError(f"{path} has no split {split!r} with vorticity pairs")
                omega = np.asarray(h5[split]["vorticity"][idx], dtype=np.float64)[None]
            else:
                idx = int(rest[0]) if rest else -1
                if "vorticity" not in h5 or h5["vorticity"].shape[0] == 0:
                    raise FileFormatError(f"{path} holds no vorticity snapshots")
                omega = np.asarray(h5["vorticity"][idx], dtype=np.float64)
        except (IndexError, ValueError) as exc:
            raise FileFormatError(f"cannot read snapshot {spec!r}: {exc}") from None
    if n is not None and omega.shape[-1] != n:
        raise ShapeError(f"snapshot {spec!r} is on a {omega.shape[-1]}² grid, the run is on {n}²")
    return omega
