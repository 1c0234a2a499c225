r"""LES runs against a DNS: statistics that need no matching trajectory (torch-free).

Given a DNS run file (``kolmo run`` output on the fine grid) and LES run files (the coarse grid
``N_c``), the DNS is coarse-grained with the dataset's filter (:mod:`kolmo.coarse`: the sharp
cutoff to the coarse grid's modes, optionally after the Gaussian filter) and each run is compared
with it on statistics over its own time window (the spin-up of each is dropped with ``t_start``):

=====================  ============================================================================
quantity               definition
=====================  ============================================================================
spectra                time- and member-mean energy / enstrophy spectra (:func:`kolmo.metrics.isotropic_spectra`)
spectrum error         :func:`kolmo.metrics.log_spectral_error` (RMS of log10 ratios, decades) over
                       shells :math:`1 \le m < N_c/3` ("band") and :math:`N_c/6 \le m < N_c/3` ("upper")
mean E, Z ± 2 SE       mean of the domain-mean energy / enstrophy; SE from block averages: each member's
                       window cut into ``blocks`` contiguous blocks, SE = std(block means)/√(#blocks)
vorticity W1           :func:`kolmo.metrics.wasserstein1` of the pooled point values (and / σ_ω of the DNS)
blow-up                :func:`kolmo.metrics.blowup_horizon`, threshold 10 × the DNS's largest enstrophy;
                       a run file with status ``blew-up`` counts as blown up at its last snapshot
spread                 :math:`\sqrt{\langle s^2\rangle}` (member variance, ddof 1), time mean, / σ_ω of the DNS
spread–skill           when the run started from a one-member coarse-grained DNS file
                       (:func:`write_coarse_grained_run`, ``--init FILE:INDEX``): that member's
                       trajectory is the truth; :math:`\sqrt{(B+1)/B}\,\sqrt{\overline{s^2}}/
                       \sqrt{\overline{(\bar X-y)^2}}` pooled over snapshots in :math:`(0, T_s]`
cost                   wall seconds per simulated time unit per member (run-file ``wall_seconds``; also
                       ``solver_seconds``: the steps alone, closure included, without I/O)
=====================  ============================================================================

Every statistic is computed from the saved snapshots (LES and DNS alike), so both sides see the
same sampling. :func:`evaluate_les` returns a JSON-able dict; :func:`write_les_report` writes it
with a markdown summary (and figures: :mod:`kolmo.evaluation.les_figures`, needs matplotlib).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from kolmo import atomic, metrics
from kolmo.coarse import coarsening_factor, gaussian_filter_hat, truncate_hat
from kolmo.errors import ConfigurationError, FileFormatError, ShapeError
from kolmo.grid import Grid

__all__ = ["FILTERS", "RunFile", "coarse_grain", "write_coarse_grained_run", "RunStatistics", "run_statistics",
           "evaluate_les", "write_les_report", "les_markdown"]

FILTERS = ("sharp", "gaussian")
BLOWUP_FACTOR = 10.0
"""A member counts as blown up once its enstrophy exceeds this factor times the DNS's largest."""


# ---------------------------------------------------------------------------------------------- run files
@dataclass
class RunFile:
    """What the evaluation reads from a ``kolmo run`` file (vorticity stays on disk until asked for)."""

    path: Path
    config: dict[str, Any]
    attrs: dict[str, Any]
    times: np.ndarray
    members: int

    @property
    def n(self) -> int:
        return int(self.config["n"])

    @property
    def L(self) -> float:
        return float(self.config["L"])

    @classmethod
    def open(cls, path: str | Path, role: str = "run") -> "RunFile":
        import h5py

        p = Path(path)
        if not p.exists():
            raise FileFormatError(f"{role} file {p} does not exist")
        try:
            with h5py.File(p, "r") as h5:
                attrs = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in h5.attrs.items()}
                if "config" not in attrs or "vorticity" not in h5 or "time" not in h5:
                    raise FileFormatError(f"{role} {p} is not a kolmo run file (expected a config attribute, "
                                          "vorticity and time)")
                times = np.asarray(h5["time"][()], dtype=np.float64)
                members = int(h5["vorticity"].shape[1])
        except OSError as exc:
            raise FileFormatError(f"cannot read {role} {p}: {exc}") from None
        if times.size == 0:
            raise FileFormatError(f"{role} {p} holds no snapshots")
        return cls(p, json.loads(attrs["config"]), attrs, times, members)

    def vorticity(self, rows: np.ndarray | slice) -> np.ndarray:
        """Snapshots ``(T, B, N, N)`` float64 of the given rows (increasing)."""
        import h5py

        with h5py.File(self.path, "r") as h5:
            return np.asarray(h5["vorticity"][rows], dtype=np.float64)

    def window(self, t_start: float) -> np.ndarray:
        """Row indices of the snapshots at ``t >= t_start``."""
        rows = np.flatnonzero(self.times >= t_start - 1e-9)
        if rows.size == 0:
            raise ConfigurationError(f"{self.path}: no snapshot at t >= {t_start:g} (last t = {self.times[-1]:g})")
        return rows


# ---------------------------------------------------------------------------------------------- coarse-graining
def coarse_grain(omega: np.ndarray, n_coarse: int, L: float, filter: str = "sharp") -> np.ndarray:
    r"""Coarse-grain vorticity ``(..., N_f, N_f)`` → ``(..., N_c, N_c)``: the sharp cutoff to the coarse
    grid's modes (:func:`kolmo.coarse.truncate_hat`), after :math:`\exp(-|k|^2\Delta^2/24)`,
    :math:`\Delta = L/N_c`, for ``filter="gaussian"`` (the dataset's filters)."""
    if filter not in FILTERS:
        raise ConfigurationError(f"unknown filter {filter!r}; valid: {', '.join(FILTERS)}")
    w = np.asarray(omega, dtype=np.float64)
    nf = w.shape[-1]
    if w.ndim < 2 or w.shape[-2] != nf:
        raise ShapeError(f"vorticity must be (..., N, N), got {w.shape}")
    coarsening_factor(nf, n_coarse)
    w_hat = np.fft.rfft2(w)
    if filter == "gaussian":
        w_hat = w_hat * gaussian_filter_hat(Grid(nf, L), n_coarse=n_coarse)
    return np.fft.irfft2(truncate_hat(w_hat, n_coarse), s=(n_coarse, n_coarse))


def write_coarse_grained_run(dns: str | Path, n_coarse: int, out: str | Path, filter: str = "sharp",
                             members: Sequence[int] | None = None, overwrite: bool = False) -> Path:
    """Write the coarse-grained snapshots of a DNS run as a run file on the ``N_c`` grid.

    The file is a regular run file (config with ``n = N_c``; snapshots, spectra; diagnostics at the
    snapshot times), so ``kolmo run --init OUT:INDEX`` starts an LES from it (one member: broadcast
    to the ensemble) and :func:`evaluate_les` takes its one-member trajectory as the truth of the
    spread–skill. ``members`` selects DNS members (default all).
    """
    from kolmo import diagnostics
    from kolmo.io import RunWriter

    src = RunFile.open(dns, "DNS")
    sel = np.arange(src.members) if members is None else np.asarray(list(members), dtype=np.int64)
    if sel.size == 0 or sel.min() < 0 or sel.max() >= src.members:
        raise ConfigurationError(f"members {list(sel)} out of range: {dns} holds {src.members}")
    coarsening_factor(src.n, n_coarse)  # before anything is written
    grid = Grid(n_coarse, src.L)
    config = dict(src.config, n=int(n_coarse), members=int(sel.size))
    import h5py

    with h5py.File(src.path, "r") as h5:
        steps = np.asarray(h5["step"][()], dtype=np.int64)
        member_ids = np.asarray(h5["member"][()], dtype=np.int64)[sel]
    attrs = {"config": json.dumps(config, sort_keys=True), "preset": str(config.get("preset", "")),
             "coarse_grained_from": str(src.path), "coarse_graining": filter, "coarse_grained_members": json.dumps(sel.tolist()),
             "closure": "none", "description": f"{filter} coarse-graining of {src.path.name} ({src.n}² → {n_coarse}²)"}
    writer = RunWriter.create(out, attrs, n_coarse, src.L, member_ids, diagnostics.spectrum_wavenumbers(grid),
                              ("energy", "enstrophy"), overwrite=overwrite)
    try:
        for i, (step, t) in enumerate(zip(steps, src.times)):
            w = coarse_grain(src.vorticity(slice(i, i + 1))[0, sel], n_coarse, src.L, filter)
            e, z = diagnostics.spectra(grid, np.fft.rfft2(w))
            writer.append_snapshot(int(step), float(t), w.astype(np.float32), e, z)
            writer.append_diagnostics(np.array([step]), np.array([t]), {"energy": e.sum(axis=1)[None],
                                                                         "enstrophy": z.sum(axis=1)[None]})
    except BaseException:
        writer.abandon().unlink(missing_ok=True)  # not resumable: leave nothing behind
        raise
    return writer.close("complete")


# ---------------------------------------------------------------------------------------------- statistics
@dataclass
class RunStatistics:
    """Statistics of one run (or the coarse-grained DNS) over its window, on the ``N_c`` grid.

    ``energy``/``enstrophy`` ``(T, B)`` domain means at the snapshots ``times`` ``(T,)``; spectra
    ``(K,)`` time and member means at wavenumbers ``k``; ``values`` the pooled vorticity points;
    ``spread`` ``(T,)`` (NaN for one member); ``omega_last`` ``(B, N, N)`` the last snapshot.
    """

    label: str
    times: np.ndarray
    k: np.ndarray
    energy_spectrum: np.ndarray
    enstrophy_spectrum: np.ndarray
    energy: np.ndarray
    enstrophy: np.ndarray
    values: np.ndarray
    spread: np.ndarray
    omega_last: np.ndarray
    extra: dict[str, Any] = field(default_factory=dict)


def run_statistics(run: RunFile, t_start: float, n_coarse: int | None = None, filter: str = "sharp",
                   label: str | None = None, chunk: int = 16) -> RunStatistics:
    """Statistics of ``run`` over ``t >= t_start``, coarse-grained to ``n_coarse`` first if given."""
    rows = run.window(t_start)
    n = run.n if n_coarse is None else int(n_coarse)
    e_spec, z_spec, e_ser, z_ser, spread, values = [], [], [], [], [], []
    last = np.zeros((run.members, n, n))
    for i in range(0, rows.size, chunk):
        w = run.vorticity(rows[i:i + chunk])
        if n != run.n:
            w = coarse_grain(w, n, run.L, filter)
        t_, b = w.shape[:2]
        k, e, z = metrics.isotropic_spectra(w.reshape(t_ * b, n, n), run.L)
        e, z = e.reshape(t_, b, -1), z.reshape(t_, b, -1)
        e_spec.append(e.sum(axis=(0, 1)))
        z_spec.append(z.sum(axis=(0, 1)))
        e_ser.append(e.sum(axis=2))
        z_ser.append(z.sum(axis=2))
        spread.append(np.sqrt(w.var(axis=1, ddof=1).mean(axis=(-2, -1))) if b > 1 else np.full(t_, np.nan))
        values.append(w.astype(np.float32).ravel())
        last = w[-1]
    count = rows.size * run.members
    return RunStatistics(label or run.path.stem, run.times[rows], k, np.sum(e_spec, axis=0) / count,
                         np.sum(z_spec, axis=0) / count, np.concatenate(e_ser), np.concatenate(z_ser),
                         np.concatenate(values), np.concatenate(spread), last)


def block_mean_se(series: np.ndarray, blocks: int) -> tuple[float, float]:
    """Mean and standard error of ``series`` ``(T, B)`` from ``blocks`` contiguous blocks per member.

    SE = std(block means, ddof 1) / √(blocks · B); the members are independent, the blocks long
    enough (choose them so) to be nearly so.
    """
    x = np.asarray(series, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < blocks or blocks < 2:
        raise ShapeError(f"block averages need (T, B) with T >= blocks >= 2; got {x.shape}, blocks {blocks}")
    m = x.shape[0] // blocks
    means = x[: m * blocks].reshape(blocks, m, x.shape[1]).mean(axis=1).ravel()
    return float(means.mean()), float(means.std(ddof=1) / math.sqrt(means.size))


def _band_errors(spec: np.ndarray, ref: np.ndarray, k: np.ndarray, n: int, L: float) -> dict[str, float]:
    """Log-spectral errors over shells 1 ≤ m < N/3 ("band") and N/6 ≤ m < N/3 ("upper")."""
    m = np.rint(k * L / (2 * np.pi)).astype(int)
    top = int(math.ceil(n / 3) - 1)
    k_max = 2 * np.pi * top / L
    lo = int(np.searchsorted(m, math.ceil(n / 6)))
    return {"band": metrics.log_spectral_error(spec, ref, k, k_max),
            "upper": metrics.log_spectral_error(spec[lo:], ref[lo:], k[lo:], k_max),
            "band_shells": [1, top], "upper_shells": [int(m[lo]), top]}


def _truth_for_skill(run: RunFile) -> tuple[RunFile, float] | None:
    """The one-member coarse-grained DNS file the run started from, and its time at the run's t = 0."""
    if run.config.get("initial") != "file":
        return None
    spec = str(run.config.get("initial_params", {}).get("path", ""))
    path, _, idx = spec.rpartition(":")
    if not path or not idx.lstrip("-").isdigit() or not Path(path).exists():
        return None
    try:
        truth = RunFile.open(path, "truth")
    except FileFormatError:
        return None
    if truth.members != 1 or truth.n != run.n or "coarse_grained_from" not in truth.attrs:
        return None
    return truth, float(truth.times[int(idx)])


def spread_skill_vs_truth(run: RunFile, horizon: float = 5.0) -> dict[str, Any] | None:
    """Pooled spread–skill of the run's ensemble over ``0 < t <= horizon`` against the truth it started from."""
    found = _truth_for_skill(run)
    if found is None or run.members < 2:
        return None
    truth, t0 = found
    rows = np.flatnonzero((run.times > 1e-9) & (run.times <= horizon + 1e-9))
    spread2, skill2, used = 0.0, 0.0, 0
    for r in rows:
        j = int(np.argmin(np.abs(truth.times - (t0 + run.times[r]))))
        if abs(truth.times[j] - (t0 + run.times[r])) > 1e-6 * max(1.0, t0):
            continue
        s = metrics.spread_skill(run.vorticity(slice(r, r + 1))[0], truth.vorticity(slice(j, j + 1))[0, 0])
        spread2 += s.spread**2
        skill2 += s.skill**2
        used += 1
    if used == 0 or skill2 == 0:
        return None
    b = run.members
    return {"ratio": math.sqrt((b + 1) / b) * math.sqrt(spread2 / skill2), "snapshots": used, "horizon": horizon,
            "truth": str(truth.path), "truth_time_at_start": t0}


def _cost(run: RunFile) -> dict[str, Any]:
    """Wall seconds per simulated time unit per member (from the run file), and the closure's share."""
    t = float(run.times[-1] - run.times[0])
    wall = run.attrs.get("wall_seconds")
    out: dict[str, Any] = {"wall_seconds": None if wall is None else float(wall), "simulated_time": t,
                           "members": run.members, "steps": int(round(t / float(run.config["dt"]))),
                           "dt": float(run.config["dt"])}
    if wall is not None and t > 0:
        out["seconds_per_time_unit_per_member"] = float(wall) / (t * run.members)
    if "solver_seconds" in run.attrs and t > 0:  # the time steps alone (closure included), without I/O
        out["solver_seconds_per_time_unit_per_member"] = float(run.attrs["solver_seconds"]) / (t * run.members)
    if "closure_seconds" in run.attrs:
        out["closure_seconds"] = float(run.attrs["closure_seconds"])
    return out


def evaluate_les(reference: str | Path, runs: Mapping[str, str | Path], *, t_start: float = 0.0,
                 run_t_start: float = 0.0, filter: str = "sharp", blocks: int = 10,
                 skill_horizon: float = 5.0, keep: bool = False) -> dict[str, Any]:
    """Compare LES run files with a DNS run file (see the module docstring).

    Parameters
    ----------
    reference
        The DNS run file (fine grid; or already on the LES grid).
    runs
        ``{label: LES run file}``, all on the same coarse grid.
    t_start, run_t_start
        Window starts (spin-up dropped) of the DNS and of the LES runs, each on its own clock.
    filter
        ``sharp`` or ``gaussian`` (the dataset's coarse-graining).
    blocks
        Blocks per member for the standard errors.
    skill_horizon
        Spread–skill window ``(0, T_s]`` (time units).
    keep
        Also return the :class:`RunStatistics` (under ``"_statistics"``; not JSON-able) for figures.
    """
    if not runs:
        raise ConfigurationError("evaluate_les needs at least one LES run file")
    les = {label: RunFile.open(p, f"LES run {label!r}") for label, p in runs.items()}
    grids = {r.n for r in les.values()}
    if len(grids) != 1:
        raise ShapeError(f"the LES runs are on different grids {sorted(grids)}; expected one coarse grid")
    n = grids.pop()
    ref_file = RunFile.open(reference, "DNS")
    ref = run_statistics(ref_file, t_start, n, filter, label="DNS")
    sigma = float(np.std(ref.values))
    threshold = BLOWUP_FACTOR * float(np.max(ref.enstrophy))
    ref_e, ref_z = block_mean_se(ref.energy, blocks), block_mean_se(ref.enstrophy, blocks)
    out: dict[str, Any] = {
        "reference": {"path": str(ref_file.path), "grid": ref_file.n, "members": ref_file.members, "t_start": t_start,
                      "window": [float(ref.times[0]), float(ref.times[-1])], "filter": filter,
                      "energy": {"mean": ref_e[0], "se": ref_e[1]}, "enstrophy": {"mean": ref_z[0], "se": ref_z[1]},
                      "vorticity_std": sigma, "cost": _cost(ref_file)},
        "grid": {"n": n, "L": ref_file.L}, "blocks": blocks, "blowup_threshold": threshold, "runs": {}}
    stats = {"DNS": ref}
    for label, run in les.items():
        s = run_statistics(run, run_t_start, None, filter, label=label)
        stats[label] = s
        e, z = block_mean_se(s.energy, blocks), block_mean_se(s.enstrophy, blocks)
        hz = metrics.blowup_horizon(s.times, s.enstrophy, threshold)
        blew = bool(hz.blew_up.any()) or run.attrs.get("status") == "blew-up"
        nominal = float(run.config.get("t_end", run.times[-1]))
        res: dict[str, Any] = {
            "path": str(run.path), "members": run.members, "status": run.attrs.get("status"),
            "closure": run.attrs.get("closure", "none"), "window": [float(s.times[0]), float(s.times[-1])],
            "energy_spectrum_error": _band_errors(s.energy_spectrum, ref.energy_spectrum, s.k, n, ref_file.L),
            "enstrophy_spectrum_error": _band_errors(s.enstrophy_spectrum, ref.enstrophy_spectrum, s.k, n, ref_file.L),
            "energy": {"mean": e[0], "se": e[1], "ratio_to_reference": e[0] / ref_e[0],
                       "within_reference_2se": abs(e[0] - ref_e[0]) <= 2 * ref_e[1]},
            "enstrophy": {"mean": z[0], "se": z[1], "ratio_to_reference": z[0] / ref_z[0],
                          "within_reference_2se": abs(z[0] - ref_z[0]) <= 2 * ref_z[1]},
            "vorticity_w1": metrics.wasserstein1(s.values, ref.values),
            "blowup": {"blew_up": blew, "horizon_min": float(hz.horizon.min()), "nominal_time": nominal,
                       "survived_all": not blew and float(run.times[-1]) >= nominal - 1e-9},
            "spread": None if run.members < 2 else float(np.nanmean(s.spread)) / sigma,
            "spread_skill": spread_skill_vs_truth(run, skill_horizon), "cost": _cost(run)}
        res["vorticity_w1_over_sigma"] = res["vorticity_w1"] / sigma
        c_ref = out["reference"]["cost"].get("seconds_per_time_unit_per_member")
        c_run = res["cost"].get("seconds_per_time_unit_per_member")
        res["cost"]["speedup_vs_reference"] = c_ref / c_run if c_ref and c_run else None
        s_ref = out["reference"]["cost"].get("solver_seconds_per_time_unit_per_member")
        s_run = res["cost"].get("solver_seconds_per_time_unit_per_member")
        res["cost"]["solver_speedup_vs_reference"] = s_ref / s_run if s_ref and s_run else None
        out["runs"][label] = res
    if keep:
        out["_statistics"] = stats
    return out


# ---------------------------------------------------------------------------------------------- output
def _f(x: Any, fmt: str = ".3g") -> str:
    return "–" if x is None or (isinstance(x, float) and not math.isfinite(x)) else format(x, fmt)


def les_markdown(result: Mapping[str, Any]) -> str:
    """The markdown summary table of :func:`evaluate_les`'s result."""
    r = result["reference"]
    lines = [f"# LES vs DNS ({r['grid']}² → {result['grid']['n']}², {r['filter']} filter)", "",
             f"Reference: `{r['path']}`, {r['members']} member(s), window t ∈ [{r['window'][0]:g}, {r['window'][1]:g}]; "
             f"E = {r['energy']['mean']:.4g} ± {2 * r['energy']['se']:.2g}, Z = {r['enstrophy']['mean']:.4g} ± "
             f"{2 * r['enstrophy']['se']:.2g} (± 2 SE, {result['blocks']} blocks per member); "
             f"cost {_f(r['cost'].get('seconds_per_time_unit_per_member'))} s per time unit per member.", "",
             "| run | E-spectrum err (band / upper) | Z-spectrum err (band / upper) | E / DNS | Z / DNS | "
             "E, Z within ±2 SE | W1(ω)/σ | blow-up | spread/σ | spread–skill | s per time unit·member | "
             "speed-up vs DNS (wall / steps only) |", "|---" * 12 + "|"]
    for label, x in result["runs"].items():
        es, zs = x["energy_spectrum_error"], x["enstrophy_spectrum_error"]
        ss = x["spread_skill"]
        b = x["blowup"]
        lines.append(
            f"| {label} | {es['band']:.3f} / {es['upper']:.3f} | {zs['band']:.3f} / {zs['upper']:.3f} | "
            f"{x['energy']['ratio_to_reference']:.3f} | {x['enstrophy']['ratio_to_reference']:.3f} | "
            f"{'yes' if x['energy']['within_reference_2se'] else 'no'}, "
            f"{'yes' if x['enstrophy']['within_reference_2se'] else 'no'} | {x['vorticity_w1_over_sigma']:.3f} | "
            f"{'at t = ' + format(b['horizon_min'], '.3g') if b['blew_up'] else 'none to t = ' + format(x['window'][1], 'g')} | "
            f"{_f(x['spread'])} | {_f(None if ss is None else ss['ratio'])} | "
            f"{_f(x['cost'].get('seconds_per_time_unit_per_member'))} | {_f(x['cost'].get('speedup_vs_reference'))} / "
            f"{_f(x['cost'].get('solver_speedup_vs_reference'))} |")
    return "\n".join(lines) + "\n"


def write_les_report(result: dict[str, Any], out_dir: str | Path, figures: bool = False) -> list[Path]:
    """Write ``les.json``, ``les.md`` (and figures, which need matplotlib) into ``out_dir``, each
    file atomically (:mod:`kolmo.atomic`)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    stats = result.pop("_statistics", None)
    files = [out / "les.json", out / "les.md"]
    atomic.write_text(files[0], json.dumps(result, indent=2, default=float) + "\n")
    atomic.write_text(files[1], les_markdown(result))
    if figures:
        from kolmo.evaluation.les_figures import write_les_figures

        if stats is None:
            raise ConfigurationError("figures need the statistics: call evaluate_les(..., keep=True)")
        files.extend(write_les_figures(result, stats, out))
    return files
