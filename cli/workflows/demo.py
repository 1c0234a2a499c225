r"""The end-to-end demo (``kolmo demo``): data → three closures → artifacts → benchmarks → online runs → report.

Stages (each skips work already on disk, so an interrupted demo resumes where it stopped):

1. **dataset** — ``kolmo dataset`` on the dong2026 preset (missing-physics target);
2. **train** — the latent flow-matching closure with the MP regularizer (``latent-fm``/``mp``,
   sampled with ONE Euler step: the conditional mean), the one-step *stochastic* closure
   ``latent-reflow`` trained on couplings drawn by that FM teacher (half its epochs), and the
   reference closure, 10-step physical VE-SDE diffusion (``dm``);
3. **export** — all three as self-checked TorchScript artifacts;
4. **a priori** — ``kolmo evaluate apriori`` of each on test pairs;
5. **bench** — ``kolmo bench closures`` (batch 1 and the ensemble size) with diffusion as the
   baseline, so the speed-up of the one-step closures is read directly;
6. **online** — the paper's protocol from the first test snapshot (reduced model, resampling every
   5 steps, jitter 5e-5) with no closure, the true closure (replayed from the dataset), and both
   learned closures, each an ensemble;
7. **report** — ``kolmo evaluate online`` of the reflow ensemble against the truth with the others
   as baselines (``report/report.md`` and figures), and ``summary.json``.

Folder layout: ``data.h5``, ``runs/<name>/``, ``closures/<name>.pt``, ``apriori/<name>.json``,
``bench/closures.{json,png}``, ``online/<name>.h5``, ``report/``, ``summary.json``.

Application code, not library: it calls one public function of each package (``kolmo.dataset``,
``closure.training``/``evaluation``/``export``, ``coupling.bench``, ``coupling.online``,
``kolmo.simulation``, ``kolmo.evaluation``); ``cli/demo.py`` only prints its progress.
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

CLOSURES = {"latent-fm-mp": {"model": "latent-fm", "reg": "mp"},
            "latent-reflow": {"model": "latent-reflow", "reg": "mp", "teacher": "latent-fm-mp"},
            "dm": {"model": "dm", "reg": "none"}}
"""Demo closures in training order (a reflow student after its teacher)."""


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


def run_stage(progress: Optional[Callable[[StageEvent], None]], stages: int, seconds: dict[str, float], i: int,
              name: str, message: str, fn: Callable[[], bool]) -> None:
    """Run stage ``i`` of ``stages`` (``fn`` returns ``True`` when its output was already on disk):
    report its start and end to ``progress`` and record its wall time in ``seconds[name]``. Shared
    by the demos (:func:`run_demo`, :func:`cli.workflows.les_demo.run_les_demo`)."""
    if progress is not None:
        progress(StageEvent(name, i, stages, False, message))
    t0 = time.perf_counter()
    skipped = fn()
    seconds[name] = time.perf_counter() - t0
    if progress is not None:
        progress(StageEvent(name, i, stages, True, message, seconds[name], bool(skipped)))


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

    if size not in SIZES:
        raise ConfigurationError(f"unknown demo size {size!r}; valid: {', '.join(SIZES)}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(max(1, threads))
    t_start = time.perf_counter()
    demo = _Demo(out, SIZES[size], threads, seed, progress, train_progress,
                 DemoResult(out=out, size=size, report=out / "report", seconds=0.0))
    sz = demo.sz
    demo.stage(1, "dataset", f"dong2026 {sz.fine}² → {sz.coarse}², {sz.trajectories} trajectories", demo.dataset)
    demo.stage(2, "train", f"latent FM (MP), its one-step reflow student and physical DM, {sz.epochs} epochs", demo.train)
    demo.stage(3, "export", "self-checked TorchScript artifacts", demo.export)
    demo.stage(4, "a priori", f"{sz.apriori_conditions} test conditions × {sz.apriori_samples} samples", demo.apriori)
    demo.stage(5, "bench", "latency per call, diffusion as the baseline", demo.bench)
    demo.stage(6, "online", f"{sz.online_time:g} time units, {sz.members} members: none / true / FM-1 / RF-1 / DM-10",
               demo.online)
    demo.stage(7, "report", "online evaluation and figures", demo.report)
    result = demo.result
    result.seconds = time.perf_counter() - t_start
    atomic.write_json(out / "summary.json", result.as_dict(), indent=1, default=str)
    return result


@dataclass
class _Demo:
    """The stages of :func:`run_demo`; each returns ``True`` when its output was already on disk."""

    out: Path
    sz: DemoSize
    threads: int
    seed: int
    progress: Optional[Callable[[StageEvent], None]]
    train_progress: Optional[Callable[[Any], None]]
    result: DemoResult

    @property
    def data(self) -> Path:
        return self.out / "data.h5"

    @property
    def artifacts(self) -> dict[str, Path]:
        return {name: self.out / "closures" / f"{name}.pt" for name in CLOSURES}

    def stage(self, i: int, name: str, message: str, fn: Callable[[], bool]) -> None:
        run_stage(self.progress, len(STAGES), self.result.stage_seconds, i, name, message, fn)

    def dataset(self) -> bool:
        from kolmo.dataset import DatasetSpec, build_dataset

        if self.data.exists():
            return True
        sz = self.sz
        spec = DatasetSpec("dong2026", fine=sz.fine, coarse=sz.coarse, trajectories=sz.trajectories,
                           test_trajectories=sz.test_trajectories, burn_in=sz.burn_in, t_end=sz.t_end,
                           members_per_batch=2 if sz.fine <= 64 else 1, seed=self.seed)
        build_dataset(spec, self.data, threads=self.threads)
        return False

    def train(self) -> bool:
        from closure.models import ModelConfig
        from closure.training import TrainConfig, train

        skipped, sz = True, self.sz
        for name, m in CLOSURES.items():
            run_dir = self.out / "runs" / name
            if (run_dir / "best.pt").exists() and (run_dir / "last.pt").exists():
                continue
            skipped = False
            teacher = str(self.out / "runs" / m["teacher"]) if "teacher" in m else None
            cfg = TrainConfig(data=str(self.data), model=ModelConfig(model=m["model"], reg=m["reg"], grid=sz.coarse),
                              epochs=max(1, sz.epochs // 2) if teacher else sz.epochs, ae_epochs=sz.ae_epochs,
                              batch=sz.batch, seed=self.seed, teacher=teacher)
            train(cfg, run_dir, resume=run_dir.exists(), progress=self.train_progress)
        return skipped

    def export(self) -> bool:
        from closure.export import export_closure

        skipped = True
        for name, path in self.artifacts.items():
            if path.exists():
                continue
            skipped = False
            path.parent.mkdir(parents=True, exist_ok=True)
            export_closure(self.out / "runs" / name, path)
        return skipped

    def apriori(self) -> bool:
        from closure.evaluation import evaluate_run

        skipped = True
        for name in CLOSURES:
            path = self.out / "apriori" / f"{name}.json"
            if path.exists():
                self.result.apriori[name] = json.loads(path.read_text())
                continue
            skipped = False
            metrics = evaluate_run(self.out / "runs" / name, self.data, samples=self.sz.apriori_samples,
                                   conditions=self.sz.apriori_conditions, seed=self.seed)
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic.write_json(path, metrics, indent=1, default=str)
            self.result.apriori[name] = metrics
        return skipped

    def bench(self) -> bool:
        from coupling.bench import bench_closures, plot_bars, write_json

        path = self.out / "bench" / "closures.json"
        if path.exists():
            self.result.bench = json.loads(path.read_text())["rows"]
            return True
        path.parent.mkdir(parents=True, exist_ok=True)
        rows = bench_closures([self.artifacts["dm"], self.artifacts["latent-fm-mp"], self.artifacts["latent-reflow"]],
                              sorted({1, self.sz.members}),
                              repeat=self.sz.bench_repeat, warmup=3)
        write_json(rows, path)
        plot_bars(rows, self.out / "bench" / "closures.png")
        self.result.bench = [r.as_dict() for r in rows]
        return False

    def _trajectory(self) -> int:
        from kolmo.pairs import open_pairs

        with open_pairs(self.data, "test") as pairs:
            return int(pairs.trajectory[0])

    def _online_files(self) -> dict[str, Path]:
        return {name: self.out / "online" / f"{name}.h5" for name in ("none", "true", *CLOSURES)}

    def online(self) -> bool:
        from coupling.online import ClosureOptions, prepare_run
        from kolmo.simulation import run_simulation

        sz, skipped = self.sz, True
        runs = {"none": "none", "true": f"replay:{self.data}:{self._trajectory()}",
                **{n: str(p) for n, p in self.artifacts.items()}}
        for name, path in self._online_files().items():
            if path.exists():
                continue
            skipped = False
            path.parent.mkdir(parents=True, exist_ok=True)
            options = ClosureOptions(every=5, jitter=5e-5, seed=self.seed, threads=self.threads)
            spec = runs[name]
            online = prepare_run("dong2026", sz.coarse, {"members": sz.members, "seed": self.seed,
                                                         "t_end": sz.online_time, "save_every": 0.1},
                                 None if spec == "none" else spec, options, protocol="paper",
                                 init=f"{self.data}:test:0")
            run_simulation(online.config, path, closure=online.closure, threads=self.threads)
        return skipped

    def report(self) -> bool:
        from kolmo.evaluation import evaluate_online

        result = self.result
        if (result.report / "metrics.json").exists():
            result.online = json.loads((result.report / "metrics.json").read_text())
            return True
        files = self._online_files()
        result.online = evaluate_online(files["latent-reflow"], f"{self.data}:test:{self._trajectory()}",
                                        [files["none"], files["true"], files["latent-fm-mp"], files["dm"]],
                                        result.report,
                                        horizons=self.sz.horizons)
        return False
