r"""``kolmo demo --case les``: a learned LES closure against none / Smagorinsky / Leith and a DNS.

Stages (each skips work already on disk, so an interrupted demo resumes where it stopped):

1. **dataset** — ``kolmogorov`` fine → coarse pairs of the preset's default LES target
   (:data:`kolmo.targets.DEFAULT_TARGETS`);
2. **train** — the one-step latent flow-matching closure (conv latent, MP, pooled condition);
3. **export** — a self-checked TorchScript artifact;
4. **dns** — a fine DNS of a seed the dataset never used, and its member 0 coarse-grained to the
   LES grid (:func:`kolmo.evaluation.les.write_coarse_grained_run`);
5. **les** — ensembles on the coarse grid from that state at the end of the spin-up, at the coarse
   grid's own time step: no closure, Smagorinsky and Leith (the constants tuned on the 128² → 32²
   scan, :data:`TUNED`) and the learned closure (called every ``every`` steps);
6. **report** — :func:`kolmo.evaluation.les.evaluate_les` (JSON, markdown, figures when matplotlib
   is installed) and ``summary.json``.

Folder layout: ``data.h5``, ``run/``, ``les.pt``, ``dns.h5``, ``dns-coarse.h5``, ``les/<name>.h5``,
``report/``, ``summary.json``.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

from kolmo import atomic
from kolmo.errors import ConfigurationError

__all__ = ["LesDemoSize", "LES_SIZES", "TUNED", "LES_STAGES", "LesDemoResult", "run_les_demo"]

TUNED = {"smagorinsky": 0.14, "leith": 0.25}
"""Eddy-viscosity constants of the 32² LES of the 128² kolmogorov DNS (smallest energy-spectrum error over
1 <= k < N/3 in the scan of benchmarks/les_closure.sh, recorded in benchmarks/RESULTS.md)."""


@dataclass(frozen=True)
class LesDemoSize:
    """Every knob of one LES demo size (kolmogorov physics throughout)."""

    name: str
    fine: int
    coarse: int
    trajectories: int
    burn_in: float
    t_end: float
    every: float
    ae_epochs: int
    epochs: int
    batch: int
    dns_members: int
    les_time: float
    members: int
    closure_every: int
    save_every: float
    blocks: int
    expected: str


LES_SIZES: dict[str, LesDemoSize] = {
    "ci": LesDemoSize("ci", fine=32, coarse=16, trajectories=4, burn_in=1.0, t_end=2.0, every=0.125, ae_epochs=1,
                      epochs=1, batch=16, dns_members=2, les_time=1.0, members=2, closure_every=2, save_every=0.25,
                      blocks=2, expected="well under 30 s (exercises every stage; numbers are not meaningful)"),
    "tiny": LesDemoSize("tiny", fine=128, coarse=32, trajectories=8, burn_in=10.0, t_end=30.0, every=0.5,
                        ae_epochs=10, epochs=20, batch=64, dns_members=2, les_time=30.0, members=4, closure_every=10,
                        save_every=0.5, blocks=5, expected="about 2-3 minutes on 2 CPU cores (118 s measured, heavily loaded)"),
}

LES_STAGES = ("dataset", "train", "export", "dns", "les", "report")
DNS_SEED = 1000
"""Seed of the DNS (the dataset's trajectories use seed 0): the LES statistics are on unseen flows."""


@dataclass
class LesDemoResult:
    """What :func:`run_les_demo` produced."""

    out: Path
    size: str
    report: Path
    seconds: float
    stage_seconds: dict[str, float] = field(default_factory=dict)
    results: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["out"], d["report"] = str(self.out), str(self.report)
        return d


def run_les_demo(out: str | Path = "demo-les", size: str = "tiny", threads: int = 1, seed: int = 0,
                 progress: Optional[Callable[[Any], None]] = None,
                 train_progress: Optional[Callable[[Any], None]] = None) -> LesDemoResult:
    """Run the stages of the module docstring into ``out`` (resumable).

    ``progress`` receives :class:`cli.workflows.demo.StageEvent` objects (``stage``, ``index``,
    ``stages``, ``done``, ``message``, ``seconds``, ``skipped``), like :func:`cli.workflows.demo.run_demo`'s.
    """
    import torch

    from cli.workflows.demo import run_stage

    if size not in LES_SIZES:
        raise ConfigurationError(f"unknown LES demo size {size!r}; valid: {', '.join(LES_SIZES)}")
    sz = LES_SIZES[size]
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(max(1, threads))
    t_start = time.perf_counter()
    result = LesDemoResult(out=out, size=size, report=out / "report", seconds=0.0)

    def stage(i: int, name: str, message: str, fn: Callable[[], bool]) -> None:
        run_stage(progress, len(LES_STAGES), result.stage_seconds, i, name, message, fn)

    data, run_dir, artifact = out / "data.h5", out / "run", out / "les.pt"
    dns, dns_coarse = out / "dns.h5", out / "dns-coarse.h5"
    stage(1, "dataset", f"kolmogorov {sz.fine}² → {sz.coarse}², {sz.trajectories} trajectories",
          lambda: _stage_dataset(data, sz, seed, threads))
    stage(2, "train", f"one-step latent FM (MP), {sz.ae_epochs} + {sz.epochs} epochs",
          lambda: _stage_train(data, run_dir, sz, seed, train_progress))
    stage(3, "export", "self-checked TorchScript artifact", lambda: _stage_export(run_dir, artifact))
    stage(4, "dns", f"{sz.fine}² DNS, {sz.dns_members} members, seed {DNS_SEED}",
          lambda: _stage_dns(dns, dns_coarse, sz, threads))
    init = f"{dns_coarse}:{int(round(sz.burn_in / sz.save_every))}"
    specs = {"none": (None, None), f"smagorinsky-{TUNED['smagorinsky']:g}": ("smagorinsky", TUNED["smagorinsky"]),
             f"leith-{TUNED['leith']:g}": ("leith", TUNED["leith"]), f"learned-every{sz.closure_every}": (str(artifact), None)}
    les_files = {name: out / "les" / f"{name}.h5" for name in specs}
    stage(5, "les", f"{sz.coarse}² LES, {sz.members} members, {sz.les_time:g} time units: none / Smagorinsky / "
                    f"Leith / learned (every {sz.closure_every})",
          lambda: _stage_les(specs, les_files, str(artifact), init, sz, seed, threads))
    stage(6, "report", "LES statistics vs the coarse-grained DNS", lambda: _stage_report(result, dns, les_files, sz))
    result.seconds = time.perf_counter() - t_start
    atomic.write_json(out / "summary.json", result.as_dict(), indent=1, default=str)
    return result


def _stage_dataset(data: Path, sz: LesDemoSize, seed: int, threads: int) -> bool:
    """Stage 1 (``True``: already on disk)."""
    from kolmo.dataset import DatasetSpec, build_dataset

    if data.exists():
        return True
    build_dataset(DatasetSpec("kolmogorov", fine=sz.fine, coarse=sz.coarse, trajectories=sz.trajectories,
                              test_trajectories=1, burn_in=sz.burn_in, t_end=sz.t_end, every=sz.every, seed=seed),
                  data, threads=threads)
    return False


def _stage_train(data: Path, run_dir: Path, sz: LesDemoSize, seed: int,
                 train_progress: Optional[Callable[[Any], None]]) -> bool:
    """Stage 2 (``True``: already trained)."""
    from closure.models import ModelConfig
    from closure.training import TrainConfig, train

    if (run_dir / "best.pt").exists() and (run_dir / "last.pt").exists():
        return True
    model = ModelConfig(model="latent-fm", reg="mp", autoencoder="conv", condition="pooled", grid=sz.coarse)
    cfg = TrainConfig(data=str(data), model=model, epochs=sz.epochs, ae_epochs=sz.ae_epochs, batch=sz.batch,
                      seed=seed)
    train(cfg, run_dir, resume=run_dir.exists(), progress=train_progress)
    return False


def _stage_export(run_dir: Path, artifact: Path) -> bool:
    """Stage 3 (``True``: already exported)."""
    from closure.export import export_closure

    if artifact.exists():
        return True
    export_closure(run_dir, artifact)
    return False


def _stage_dns(dns: Path, dns_coarse: Path, sz: LesDemoSize, threads: int) -> bool:
    """Stage 4 (``True``: both files already on disk)."""
    from kolmo.evaluation.les import write_coarse_grained_run
    from kolmo.presets import preset
    from kolmo.simulation import run_simulation

    skipped = dns.exists() and dns_coarse.exists()
    if not dns.exists():
        cfg = preset("kolmogorov", sz.fine, members=sz.dns_members, seed=DNS_SEED,
                     t_end=sz.burn_in + sz.les_time, save_every=sz.save_every)
        run_simulation(cfg, dns, threads=threads)
    if not dns_coarse.exists():
        write_coarse_grained_run(dns, sz.coarse, dns_coarse, members=[0])
    return skipped


def _stage_les(specs: dict[str, tuple[Optional[str], Optional[float]]], les_files: dict[str, Path], artifact: str,
               init: str, sz: LesDemoSize, seed: int, threads: int) -> bool:
    """Stage 5 (``True``: every ensemble already on disk)."""
    from coupling.online import ClosureOptions, prepare_run
    from kolmo.simulation import run_simulation

    skipped = True
    for name, (closure, coef) in specs.items():
        if les_files[name].exists():
            continue
        skipped = False
        les_files[name].parent.mkdir(parents=True, exist_ok=True)
        options = ClosureOptions(every=sz.closure_every if closure == artifact else None, seed=seed,
                                 coefficient=coef, threads=threads)
        overrides = {"members": sz.members, "t_end": sz.les_time, "save_every": sz.save_every}
        online = prepare_run("kolmogorov", sz.coarse, overrides, closure, options, init=init)
        run_simulation(online.config, les_files[name], closure=online.closure, threads=threads)
    return skipped


def _stage_report(result: LesDemoResult, dns: Path, les_files: dict[str, Path], sz: LesDemoSize) -> bool:
    """Stage 6 (``True``: the report already exists; its results are read back into ``result``)."""
    import importlib.util

    from kolmo.evaluation.les import evaluate_les, write_les_report

    path = result.report / "les.json"
    if path.exists():
        result.results = json.loads(path.read_text())
        return True
    figures = importlib.util.find_spec("matplotlib") is not None  # optional: JSON + markdown without it
    r = evaluate_les(dns, {k: str(v) for k, v in les_files.items()}, t_start=sz.burn_in, blocks=sz.blocks,
                     keep=figures)
    write_les_report(r, result.report, figures=figures)
    result.results = r
    return False
