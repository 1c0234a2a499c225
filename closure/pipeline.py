r"""The end-to-end demo (``kolmo demo``): data → two closures → artifacts → benchmarks → online runs → report.

Stages (each skips work already on disk, so an interrupted demo resumes where it stopped):

1. **dataset** — ``kolmo dataset`` on the dong2026 preset (missing-physics target);
2. **train** — the one-step latent flow-matching closure with the MP regularizer
   (``latent-fm``/``mp``) and the reference closure, 10-step physical VE-SDE diffusion (``dm``);
3. **export** — both as self-checked TorchScript artifacts;
4. **a priori** — ``kolmo evaluate`` of both on test pairs;
5. **bench** — ``kolmo bench closures`` (batch 1 and the ensemble size) with diffusion as the
   baseline, so the speed-up of one-step FM is read directly;
6. **online** — the paper's protocol from the first test snapshot (reduced model, resampling every
   5 steps, jitter 5e-5) with no closure, the true closure (replayed from the dataset), and both
   learned closures, each an ensemble;
7. **report** — ``kolmo evaluate --online`` of the FM ensemble against the truth with the others
   as baselines (``report/report.md`` and figures), and ``summary.json``.

Folder layout: ``data.h5``, ``runs/<name>/``, ``closures/<name>.pt``, ``apriori/<name>.json``,
``bench/closures.{json,png}``, ``online/<name>.h5``, ``report/``, ``summary.json``.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

from kolmo import atomic
from kolmo.errors import ConfigurationError


@dataclass(frozen=True)
class DemoSize:
    """Every knob of one demo size (dong2026 physics throughout)."""

    name: str
    fine: int
    coarse: int
    trajectories: int
    test_trajectories: int
    burn_in: float
    t_end: float
    ae_epochs: int
    epochs: int
    batch: int
    online_time: float
    members: int
    horizons: tuple[float, ...]
    bench_repeat: int
    apriori_samples: int
    apriori_conditions: int
    expected: str


SIZES: dict[str, DemoSize] = {
    "ci": DemoSize("ci", fine=32, coarse=16, trajectories=4, test_trajectories=1, burn_in=1.0, t_end=3.0,
                   ae_epochs=2, epochs=2, batch=16, online_time=0.5, members=2, horizons=(0.25, 0.5),
                   bench_repeat=5, apriori_samples=8, apriori_conditions=2,
                   expected="under 2 minutes on 2 CPU cores (exercises every stage; numbers are not meaningful)"),
    "tiny": DemoSize("tiny", fine=64, coarse=16, trajectories=12, test_trajectories=2, burn_in=5.0, t_end=15.0,
                     ae_epochs=30, epochs=60, batch=64, online_time=5.0, members=8, horizons=(1.0, 2.0, 3.0, 5.0),
                     bench_repeat=30, apriori_samples=50, apriori_conditions=10,
                     expected="about 10 minutes on 2 CPU cores"),
    "small": DemoSize("small", fine=128, coarse=32, trajectories=40, test_trajectories=4, burn_in=10.0,
                      t_end=30.0, ae_epochs=100, epochs=200, batch=64, online_time=10.0, members=16,
                      horizons=(2.5, 5.0, 7.5, 10.0), bench_repeat=50, apriori_samples=100, apriori_conditions=10,
                      expected="about 2 hours on 2 CPU cores, minutes on a GPU"),
    "paper": DemoSize("paper", fine=256, coarse=64, trajectories=100, test_trajectories=10, burn_in=20.0,
                      t_end=40.0, ae_epochs=500, epochs=1000, batch=100, online_time=20.0, members=100,
                      horizons=(5.0, 10.0, 15.0, 20.0), bench_repeat=100, apriori_samples=100, apriori_conditions=10,
                      expected="about 4 hours of CPU for the data, then a GPU for training (the reference trains "
                               "500–1000 epochs)"),
}

CLOSURES = {"latent-fm-mp": {"model": "latent-fm", "reg": "mp"}, "dm": {"model": "dm", "reg": "none"}}


@dataclass
class StageEvent:
    """Progress of the demo: ``stage`` starts (``done=False``) or ends (``done=True``, with ``seconds``)."""

    stage: str
    index: int
    stages: int
    done: bool
    message: str = ""
    seconds: float = 0.0
    skipped: bool = False


@dataclass
class DemoResult:
    """What :func:`run_demo` produced."""

    out: Path
    size: str
    report: Path
    seconds: float
    stage_seconds: dict[str, float] = field(default_factory=dict)
    apriori: dict[str, dict[str, Any]] = field(default_factory=dict)
    bench: list[dict[str, Any]] = field(default_factory=list)
    online: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["out"], d["report"] = str(self.out), str(self.report)
        return d


STAGES = ("dataset", "train", "export", "a priori", "bench", "online", "report")


def run_demo(out: str | Path = "demo", size: str = "tiny", threads: int = 1, seed: int = 0,
             progress: Optional[Callable[[StageEvent], None]] = None,
             train_progress: Optional[Callable[[Any], None]] = None) -> DemoResult:
    """Run the whole pipeline of the module docstring into ``out`` (resumable)."""
    import torch

    from closure.evaluation import evaluate_run
    from closure.export import export_closure
    from closure.models import ModelConfig
    from closure.training import TrainConfig, train
    from coupling.benchmark import bench_closures, plot_bars, write_json
    from coupling.evaluation import evaluate_online
    from coupling.online import ClosureOptions, prepare_run
    from kolmo.dataset import DatasetSpec, build_dataset
    from kolmo.pairs import open_pairs
    from kolmo.simulation import run_simulation

    if size not in SIZES:
        raise ConfigurationError(f"unknown demo size {size!r}; valid: {', '.join(SIZES)}")
    sz = SIZES[size]
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(max(1, threads))
    t_start = time.perf_counter()
    result = DemoResult(out=out, size=size, report=out / "report", seconds=0.0)

    def stage(i: int, name: str, message: str, fn: Callable[[], bool]) -> None:
        if progress is not None:
            progress(StageEvent(name, i, len(STAGES), False, message))
        t0 = time.perf_counter()
        skipped = fn()
        dt = time.perf_counter() - t0
        result.stage_seconds[name] = dt
        if progress is not None:
            progress(StageEvent(name, i, len(STAGES), True, message, dt, bool(skipped)))

    data = out / "data.h5"

    def do_dataset() -> bool:
        if data.exists():
            return True
        spec = DatasetSpec("dong2026", fine=sz.fine, coarse=sz.coarse, trajectories=sz.trajectories,
                           test_trajectories=sz.test_trajectories, burn_in=sz.burn_in, t_end=sz.t_end,
                           members_per_batch=2 if sz.fine <= 64 else 1, seed=seed)
        build_dataset(spec, data, threads=threads)
        return False

    stage(1, "dataset", f"dong2026 {sz.fine}² → {sz.coarse}², {sz.trajectories} trajectories", do_dataset)

    def do_train() -> bool:
        skipped = True
        for name, m in CLOSURES.items():
            run_dir = out / "runs" / name
            if (run_dir / "best.pt").exists() and (run_dir / "last.pt").exists():
                continue
            skipped = False
            cfg = TrainConfig(data=str(data), model=ModelConfig(model=m["model"], reg=m["reg"], grid=sz.coarse),
                              epochs=sz.epochs, ae_epochs=sz.ae_epochs, batch=sz.batch, seed=seed)
            train(cfg, run_dir, resume=run_dir.exists(), progress=train_progress)
        return skipped

    stage(2, "train", f"latent FM (MP) and physical DM, {sz.epochs} epochs", do_train)

    artifacts = {name: out / "closures" / f"{name}.pt" for name in CLOSURES}

    def do_export() -> bool:
        skipped = True
        for name, path in artifacts.items():
            if path.exists():
                continue
            skipped = False
            path.parent.mkdir(parents=True, exist_ok=True)
            export_closure(out / "runs" / name, path)
        return skipped

    stage(3, "export", "self-checked TorchScript artifacts", do_export)

    def do_apriori() -> bool:
        skipped = True
        for name in CLOSURES:
            path = out / "apriori" / f"{name}.json"
            if path.exists():
                result.apriori[name] = json.loads(path.read_text())
                continue
            skipped = False
            metrics = evaluate_run(out / "runs" / name, data, samples=sz.apriori_samples,
                                   conditions=sz.apriori_conditions, seed=seed)
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic.write_json(path, metrics, indent=1, default=str)
            result.apriori[name] = metrics
        return skipped

    stage(4, "a priori", f"{sz.apriori_conditions} test conditions × {sz.apriori_samples} samples", do_apriori)

    def do_bench() -> bool:
        path = out / "bench" / "closures.json"
        if path.exists():
            result.bench = json.loads(path.read_text())["rows"]
            return True
        path.parent.mkdir(parents=True, exist_ok=True)
        rows = bench_closures([artifacts["dm"], artifacts["latent-fm-mp"]], sorted({1, sz.members}),
                              repeat=sz.bench_repeat, warmup=3)
        write_json(rows, path)
        plot_bars(rows, out / "bench" / "closures.png")
        result.bench = [r.as_dict() for r in rows]
        return False

    stage(5, "bench", "latency per call, diffusion as the baseline", do_bench)

    pairs = open_pairs(data, "test")
    trajectory = int(pairs.trajectory[0])
    init = f"{data}:test:0"
    runs = {"none": "none", "true": f"replay:{data}:{trajectory}", **{n: str(p) for n, p in artifacts.items()}}
    online_files = {name: out / "online" / f"{name}.h5" for name in runs}

    def do_online() -> bool:
        skipped = True
        for name, spec in runs.items():
            path = online_files[name]
            if path.exists():
                continue
            skipped = False
            path.parent.mkdir(parents=True, exist_ok=True)
            options = ClosureOptions(every=5, jitter=5e-5, seed=seed, threads=threads)
            online = prepare_run("dong2026", sz.coarse, {"members": sz.members, "seed": seed,
                                                         "t_end": sz.online_time, "save_every": 0.1},
                                 None if spec == "none" else spec, options, protocol="paper", init=init)
            run_simulation(online.config, path, closure=online.closure, threads=threads)
        return skipped

    stage(6, "online", f"{sz.online_time:g} time units, {sz.members} members: none / true / FM / DM", do_online)

    def do_report() -> bool:
        if (result.report / "metrics.json").exists():
            result.online = json.loads((result.report / "metrics.json").read_text())
            return True
        result.online = evaluate_online(online_files["latent-fm-mp"], f"{data}:test:{trajectory}",
                                        [online_files["none"], online_files["true"], online_files["dm"]],
                                        result.report, horizons=sz.horizons)
        return False

    stage(7, "report", "online evaluation and figures", do_report)
    result.seconds = time.perf_counter() - t_start
    atomic.write_json(out / "summary.json", result.as_dict(), indent=1, default=str)
    return result
