"""TorchScript vs AOTInductor for the shipped closure (issue 13): compile time, self-check, cold load, latency.

The shipped ``coupling/artifacts/dong2026-default.pt`` is TorchScript only; its eager model is rebuilt
from the artifact's own ``model_config`` and weights (checked equal to the artifact on fixed noise), then
exported with ``--format aoti`` through :func:`closure.export.export_model` (dynamic batch, metadata
inside the package, self-check against eager and TorchScript). Then, for both files:

- cold load: a fresh Python process per measurement (``import torch`` not counted), the load call alone
  and load + first call at batch 1, for ``torch.jit.load``, ``torch._inductor.aoti_load_package`` (with
  its compiler probe), ``torch._C._aoti.AOTIModelPackageLoader`` (what kolmo uses) and kolmo's
  ``load_artifact`` (metadata checks and the contract probe, as a run pays it);
- latency per call at batch 1, 8 and 100, **interleaved** (each round calls every file once, in an
  order that alternates, so that the load of a shared machine falls on all alike): ``forward(omega)``
  (noise drawn, then ``sample``) of the modules :func:`coupling.artifact.load_artifact` returns, the call
  :func:`coupling.bench.bench_closures` times; median and minimum per call, and the ratio of medians;
- the rows of :func:`coupling.bench.bench_closures` once (``kolmo bench closures`` on the two files);
- with ``--profile-batch B``: a second compile with Inductor's kernel profiling
  (``cpp.enable_kernel_profile``), and the torch profiler's table of 20 calls of each at batch ``B``
  (``profile-bB.txt``): which generated kernels and ATen calls the time goes to.

Usage: ``OMP_NUM_THREADS=1 python benchmarks/aoti.py --out benchmarks/data/aoti`` (writes
``shipped.pt2`` to a temporary folder and ``aoti.json`` to ``--out``).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from closure.data import Normalisation  # noqa: E402
from closure.export import ClosureArtifact, export_model  # noqa: E402
from closure.inference import inference_form, spectral_grids  # noqa: E402
from closure.models import ClosureModel, ModelConfig  # noqa: E402
from coupling.artifact import load_artifact  # noqa: E402
from coupling.bench import bench_closures, machine_info  # noqa: E402
from kolmo import atomic  # noqa: E402

SHIPPED = ROOT / "coupling" / "artifacts" / "dong2026-default.pt"
GRID = 64
"""Grid of the shipped closure."""

LOADERS = {
    "torch.jit.load": ("", "m = torch.jit.load(PATH)", "m.sample(o, n)"),
    "aoti_load_package": ("from torch._inductor import aoti_load_package", "m = aoti_load_package(PATH)", "m(o, n)"),
    "AOTIModelPackageLoader": ("", "m = torch._C._aoti.AOTIModelPackageLoader(PATH, 'model', False, 1, -1)",
                               "m.boxed_run([o, n])[0]"),
    "kolmo load_artifact": ("from coupling.artifact import load_artifact", "m = load_artifact(PATH).module",
                            "m.sample(o, n)"),
}
"""How each host loads a file, as Python source run in a fresh process: imports (not timed), the load
(timed), the first call on ``o``, ``n`` (timed with the load)."""


def rebuild_eager(path: Path) -> tuple[ClosureModel, Normalisation, dict]:
    """The eager model of a TorchScript artifact: its ``model_config`` and weights, checked on fixed noise."""
    loaded = load_artifact(path, freeze=False)
    meta = loaded.metadata
    model = ClosureModel(ModelConfig.from_dict(meta["model_config"])).eval()
    norm = Normalisation.from_dict(meta["normalisation"])
    eager = ClosureArtifact(model, norm).eval()
    # the saved inference form holds every trained weight under its trained name, plus its DFT matrices
    missing, _ = eager.load_state_dict(loaded.module.state_dict(), strict=False)
    if missing:
        raise SystemExit(f"{path} lacks trained weights {missing[:3]}")
    g = torch.Generator().manual_seed(0)
    omega = torch.randn(4, meta["grid"], meta["grid"], generator=g)
    noise = torch.randn(eager.noise_shape(4), generator=g)
    with torch.no_grad():
        diff = float((eager.sample(omega, noise) - loaded.module.sample(omega, noise)).abs().max())
    if diff > 1e-5 * norm.closure_std:  # the export self-check bound
        raise SystemExit(f"rebuilt eager model differs from {path} by {diff:.3g}")
    return model, norm, meta


def cold_load(name: str, path: Path, grid: int, noise_shape: list[int]) -> dict[str, float]:
    """Load (and load + first batch-1 call) times of one loader in a fresh process, in ms."""
    setup, load, call = LOADERS[name]
    code = (f"import sys, time\nsys.path.insert(0, {str(ROOT)!r})\nimport torch\n{setup}\nPATH = {str(path)!r}\n"
            f"o = torch.randn(1, {grid}, {grid}); n = torch.randn({noise_shape})\n"
            f"t0 = time.perf_counter()\n{load}\nt1 = time.perf_counter()\n"
            f"with torch.inference_mode():\n    {call}\nt2 = time.perf_counter()\n"
            "print((t1 - t0) * 1e3, (t2 - t0) * 1e3)\n")
    res = subprocess.run([sys.executable, "-W", "ignore", "-c", code], capture_output=True, text=True, timeout=300,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    if res.returncode != 0:
        raise SystemExit(f"{name} failed: {res.stderr[-2000:]}")
    load_ms, first_ms = map(float, res.stdout.strip().splitlines()[-1].split())
    return {"load_ms": load_ms, "load_and_first_call_ms": first_ms}


def interleaved_latency(files: dict[str, Path], batches: list[int], repeat: int, warmup: int = 5) -> list[dict]:
    """Per batch: ``repeat`` rounds, each calling every file's ``forward`` once (order alternating per
    round); median and minimum ms per call of each, and each file's median (and minimum) over the first
    file's."""
    modules = {name: load_artifact(path).module for name, path in files.items()}
    names = list(modules)
    out = []
    for b in batches:
        omega = torch.randn(b, GRID, GRID)
        times: dict[str, list[float]] = {n: [] for n in names}
        with torch.inference_mode():
            for r in range(warmup + repeat):
                for n in (names if r % 2 == 0 else names[::-1]):
                    t0 = time.perf_counter()
                    modules[n](omega)
                    if r >= warmup:
                        times[n].append((time.perf_counter() - t0) * 1e3)
        row = {"batch": b, "repeat": repeat}
        for n in names:
            row[n] = {"median_ms": statistics.median(times[n]), "min_ms": min(times[n])}
        for n in names[1:]:
            row[f"{n}_over_{names[0]}"] = row[n]["median_ms"] / row[names[0]]["median_ms"]
            row[f"{n}_over_{names[0]}_min"] = row[n]["min_ms"] / row[names[0]]["min_ms"]
        print(row, flush=True)
        out.append(row)
    return out


def profile_tables(eager: ClosureArtifact, batch: int, work: Path) -> str:
    """Torch-profiler tables (self CPU time) of 20 calls at ``batch``: a kernel-profiling AOTI build of
    ``eager``'s inference form (static batch), and the shipped TorchScript as hosts load it (frozen)."""
    from torch._inductor import aot_compile
    from torch.export.pt2_archive._package import package_pt2
    from torch.profiler import ProfilerActivity, profile

    from closure.export import _SampleOnly

    omega, noise = torch.randn(batch, GRID, GRID), torch.randn(eager.noise_shape(batch))
    fast = inference_form(eager, spectral_grids(eager, lambda: eager.sample(omega, noise)))  # what export compiles
    with torch.no_grad():
        program = torch.export.export(_SampleOnly(fast), (omega, noise), strict=False)
        files = aot_compile(program.module(), (omega, noise),
                            options={"aot_inductor.package": True, "cpp.enable_kernel_profile": True})
    package_pt2(str(work / "profiled.pt2"), aoti_files={"model": files})
    loader = torch._C._aoti.AOTIModelPackageLoader(str(work / "profiled.pt2"), "model", False, 1, -1)
    scripted = load_artifact(SHIPPED).module  # frozen, as hosts load it
    text = []
    for name, call in (("aoti", lambda: loader.boxed_run([omega, noise])),
                       ("torchscript", lambda: scripted.sample(omega, noise))):
        with torch.inference_mode():
            for _ in range(5):
                call()
            with profile(activities=[ProfilerActivity.CPU]) as prof:
                for _ in range(20):
                    call()
        text.append(f"{name}, batch {batch}, 20 calls\n" + prof.key_averages().table(
            sort_by="self_cpu_time_total", row_limit=25, max_name_column_width=70))
    return "\n\n".join(text)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "data" / "aoti")
    ap.add_argument("--cold-repeats", type=int, default=3)
    ap.add_argument("--repeat", type=int, default=30)
    ap.add_argument("--batches", default="1,8,100")
    ap.add_argument("--profile-batch", type=int, default=None)
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    model, norm, meta = rebuild_eager(SHIPPED)
    work = Path(tempfile.mkdtemp(prefix="kolmo-aoti-"))
    dataset = {"preset": meta["preset"], "target": meta["target"], "L": meta["L"], "dt": meta["dt"],
               "fingerprint": meta["dataset_fingerprint"]}
    t0 = time.perf_counter()
    res = export_model(model, norm, dataset, work / "shipped.pt2", run_id=meta["run_id"], format="aoti")
    compile_s = time.perf_counter() - t0
    print(f"export --format aoti: {compile_s:.1f} s, checks {res.checks}", flush=True)
    pt2 = res.path
    noise1 = load_artifact(pt2).module.noise_shape(1)
    cold: dict[str, dict[str, object]] = {}
    for name, path in [("torch.jit.load", SHIPPED), ("kolmo load_artifact", SHIPPED), ("aoti_load_package", pt2),
                       ("AOTIModelPackageLoader", pt2), ("kolmo load_artifact", pt2)]:
        runs = [cold_load(name, path, meta["grid"], noise1) for _ in range(args.cold_repeats)]
        key = f"{name} ({path.suffix})"
        cold[key] = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
        cold[key]["runs"] = runs
        print(key, cold[key]["load_ms"], cold[key]["load_and_first_call_ms"], flush=True)
    batches = [int(b) for b in args.batches.split(",")]
    interleaved = interleaved_latency({"torchscript": SHIPPED, "aoti": pt2}, batches, args.repeat)
    rows = [r.as_dict() for r in bench_closures([str(SHIPPED), str(pt2)], batches, repeat=args.repeat, warmup=5)]
    atomic.write_json(args.out / "aoti.json", {
        "machine": machine_info(), "load_average": os.getloadavg(),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "artifact": str(SHIPPED.relative_to(ROOT)), "family": meta["family"],
        "flops_per_sample": meta["flops_per_sample"], "compile_seconds": compile_s,
        "pt2_bytes": pt2.stat().st_size, "pt_bytes": SHIPPED.stat().st_size,
        "self_check": {k: {"max_abs_diff": d, "bound": b} for k, (d, b) in res.checks.items()},
        "closure_std": norm.closure_std, "cold_load": cold, "latency_interleaved": interleaved,
        "bench_closures_rows": rows,
    }, indent=1)
    print(f"wrote {args.out / 'aoti.json'}")
    if args.profile_batch is not None:
        eager = ClosureArtifact(model, norm).eval()
        out = args.out / f"profile-b{args.profile_batch}.txt"
        atomic.write_text(out, profile_tables(eager, args.profile_batch, work) + "\n")
        print(f"wrote {out}")


if __name__ == "__main__":
    main()
