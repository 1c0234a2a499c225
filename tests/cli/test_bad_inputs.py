"""The project's own bad-input suite: the real ``kolmo`` entry point, as a user runs it, for every command.

Every case runs ``python -m cli.main ...`` in a subprocess (PYTHONPATH = this checkout) and must:

* exit non-zero, with the documented status (2 usage, 3 bad input, 4 runtime, 130 interrupted);
* print no traceback;
* print a message naming the problem (the flag, the path, the value);
* leave every pre-existing file byte-for-byte unchanged (inputs and the case's own folder);
* leave no new file that looks complete: only temporary names (``*.partial``) may appear.

Fast by construction: the inputs are made once per module (tiny grids, in-process), and the cases
run in parallel subprocesses (a thread pool) when the module starts; each test then checks one
case's recorded result. Command names that are expected to change live in :data:`COMMANDS`.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import h5py
import numpy as np
import pytest

from kolmo.atomic import is_temporary

ROOT = Path(__file__).resolve().parents[2]

#: Command-name specific invocations (update here when a command is renamed or split).
COMMANDS: dict[str, list[str]] = {
    "run": ["run"],
    "dataset": ["dataset"],
    "info": ["info"],
    "train": ["train"],
    "evaluate-apriori": ["evaluate", "apriori"],
    "evaluate-online": ["evaluate", "online"],
    "evaluate-les-coarse-grain": ["evaluate", "les", "coarse-grain"],
    "evaluate-les-report": ["evaluate", "les", "report"],
    "export": ["export"],
    "demo": ["demo"],
    "bench-solver": ["bench", "solver"],
    "bench-closures": ["bench", "closures"],
    "bench-coupled": ["bench", "coupled"],
}
#: Flags of the closure cadence (``kolmo run``, ``kolmo bench coupled``) and of the dataset recording
#: interval (``kolmo dataset``), as renamed by issue 14.
EVERY, JITTER, SAVE_EVERY = "--closure-every", "--closure-jitter", "--save-every"

USAGE, BAD_INPUT, RUNTIME, INTERRUPTED = 2, 3, 4, 130


# ---------------------------------------------------------------------------------------------- inputs
def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.setdefault("OMP_NUM_THREADS", "1")
    env["COLUMNS"] = "200"
    return env


def _corrupt_copies(good: Path, folder: Path) -> dict[str, Path]:
    """``missing``, ``empty``, ``truncated`` (first half) and ``random`` (bytes) variants of ``good``."""
    folder.mkdir(parents=True, exist_ok=True)
    data = good.read_bytes()
    out = {kind: folder / f"{kind}{good.suffix}" for kind in ("missing", "empty", "truncated", "random")}
    out["empty"].write_bytes(b"")
    out["truncated"].write_bytes(data[: len(data) // 2])
    out["random"].write_bytes(np.random.default_rng(0).bytes(4096))
    return out


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Every input file a case may name, made once: a run file, a dataset, a trained run folder,
    artifacts (matching, wrong grid, wrong preset), a wrong-layout HDF5 file, and corrupt variants."""
    import torch

    from closure.models import ModelConfig
    from closure.training import TrainConfig, train
    from coupling.artifact import write_artifact
    from kolmo.presets import preset
    from kolmo.simulation import run_simulation
    from tests.closure.synthetic import write_synthetic_dataset
    from tests.coupling.conftest import LinearNoise, metadata

    base = tmp_path_factory.mktemp("inputs")
    f: dict[str, Path] = {"base": base}
    f["run"] = base / "run.h5"
    run_simulation(preset("dong2026", 16, t_end=0.02, save_every=0.01), f["run"], planner="estimate")
    f["data"] = write_synthetic_dataset(base / "data.h5", n=16, train_trajectories=3, test_trajectories=1,
                                        snapshots=4)
    f["data32"] = write_synthetic_dataset(base / "data32.h5", n=32, train_trajectories=2, test_trajectories=1,
                                          snapshots=2)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        f["trained"] = base / "trained"
        train(TrainConfig(data=str(f["data"]), model=ModelConfig(model="fm", width=4, modes=2), epochs=1, batch=4),
              f["trained"])
    finally:
        torch.set_num_threads(threads)
    f["artifact"] = write_artifact(LinearNoise(16), base / "closure.pt", metadata())
    f["artifact32"] = write_artifact(LinearNoise(32), base / "closure32.pt", metadata(grid=32))
    f["artifact_kolmogorov"] = write_artifact(LinearNoise(16), base / "closure_kolmogorov.pt",
                                              metadata(preset="kolmogorov", target="sgs"))
    from kolmo.cluster.ensemble import run_ensemble

    f["batched_run"] = base / "batched.h5"
    run_ensemble(preset("dong2026", 16, t_end=0.02, save_every=0.01, members=2), f["batched_run"], members_per_batch=1,
                 planner="estimate")
    f["layout"] = base / "layout.h5"
    with h5py.File(f["layout"], "w") as h5:
        h5.attrs["format"] = "something-else"
        h5.create_dataset("foo", data=np.zeros((3, 4)))
    f["file"] = base / "regular-file"
    f["file"].write_text("a regular file, not a folder\n")
    for name, good in (("h5", f["run"]), ("pt", f["artifact"])):
        for kind, path in _corrupt_copies(good, base / f"bad-{name}").items():
            f[f"{kind}_{name}"] = path
    f["random_pt2"] = base / "bad-pt2" / "random.pt2"  # an AOTInductor package's name on random bytes
    f["random_pt2"].parent.mkdir()
    f["random_pt2"].write_bytes(f["random_pt"].read_bytes())
    # a trained run folder whose checkpoints are corrupt
    f["trained_corrupt"] = base / "trained-corrupt"
    f["trained_corrupt"].mkdir()
    for item in f["trained"].iterdir():
        (f["trained_corrupt"] / item.name).write_bytes(item.read_bytes()[: 200] if item.suffix == ".pt"
                                                         else item.read_bytes())
    f["unwritable"] = Path("/sys") if os.geteuid() == 0 else base / "readonly"
    if os.geteuid() != 0:
        f["unwritable"].mkdir()
        f["unwritable"].chmod(0o500)
    return f


# ---------------------------------------------------------------------------------------------- cases
@dataclass(frozen=True)
class Case:
    """One bad invocation: ``args`` (``{name}`` placeholders: an input of :func:`inputs`, or ``{out}``
    the case's own empty folder), the expected exit status and message fragments."""

    id: str
    command: str
    args: tuple[str, ...]
    code: int
    expect: tuple[str, ...]


def case(id: str, command: str, args: str, code: int, *expect: str) -> Case:
    return Case(id, command, tuple(args.split()), code, expect)


def _file_cases() -> list[Case]:
    """Missing, empty, truncated and random-bytes files for every file argument."""
    out: list[Case] = []
    for kind in ("missing", "empty", "truncated", "random"):
        code = BAD_INPUT
        h5, pt = f"{{{kind}_h5}}", f"{{{kind}_pt}}"
        named_h5, named_pt = (f"{kind}.h5",), (f"{kind}.pt",)  # the message names the file
        out += [
            case(f"run-init-{kind}", "run", f"--grid 16 --time 0.01 --init {h5} --out {{out}}/r.h5", code, *named_h5),
            case(f"run-resume-{kind}", "run", f"--resume {h5}", code, *named_h5),
            case(f"run-closure-{kind}", "run", f"--closure {pt} --time 0.01 --out {{out}}/r.h5", code, *named_pt),
            case(f"run-replay-{kind}", "run", f"--closure replay:{h5} --time 0.01 --out {{out}}/r.h5", code, *named_h5),
            case(f"info-h5-{kind}", "info", h5, code, *named_h5),
            case(f"info-pt-{kind}", "info", pt, code, *named_pt),
            case(f"train-data-{kind}", "train", f"--data {h5} --model fm --out {{out}}/t", code, *named_h5),
            case(f"evaluate-data-{kind}", "evaluate-apriori", f"{{trained}} --data {h5}", code, *named_h5),
            case(f"evaluate-online-run-{kind}", "evaluate-online",
                 f"{h5} --reference {{run}} --out {{out}}/rep", code, *named_h5),
            case(f"evaluate-online-reference-{kind}", "evaluate-online",
                 f"{{run}} --reference {h5} --out {{out}}/rep", code, *named_h5),
            case(f"bench-closures-{kind}", "bench-closures", f"{pt} --repeat 1 --warmup 0", code, *named_pt),
            case(f"evaluate-les-coarse-grain-{kind}", "evaluate-les-coarse-grain", f"{h5} -n 8 --out {{out}}/c.h5",
                 code, *named_h5),
            case(f"evaluate-les-report-dns-{kind}", "evaluate-les-report", f"{h5} {{run}} --out {{out}}/rep", code,
                 *named_h5),
            case(f"evaluate-les-report-run-{kind}", "evaluate-les-report", f"{{run}} les={h5} --out {{out}}/rep", code,
                 *named_h5),
        ]
    out += [
        case("evaluate-checkpoint-corrupt", "evaluate-apriori", "{trained_corrupt} --data {data}", BAD_INPUT,
             "CheckpointError"),
        case("export-checkpoint-corrupt", "export", "{trained_corrupt} --out {out}/c.pt", BAD_INPUT, "CheckpointError"),
        case("train-teacher-missing", "train", "--data {data} --model latent-reflow --teacher {out}/nothing "
             "--out {out}/t", BAD_INPUT, "--teacher", "does not exist"),
        case("export-run-missing", "export", "{out}/nothing --out {out}/c.pt", BAD_INPUT, "does not exist"),
        case("export-aoti-not-pt2", "export", "{trained} --out {out}/c.pt --format aoti", USAGE, "name it *.pt2"),
        case("info-pt2-random", "info", "{random_pt2}", BAD_INPUT, "random.pt2", "not an AOTInductor package"),
        case("run-closure-pt2-random", "run", "--closure {random_pt2} --time 0.01 --out {out}/r.h5", BAD_INPUT,
             "random.pt2", "not an AOTInductor package"),
        case("evaluate-run-is-a-file", "evaluate-apriori", "{file} --data {data}", BAD_INPUT, "regular-file"),
    ]
    return out


def _layout_cases() -> list[Case]:
    """Wrong-layout HDF5, wrong-grid and wrong-preset artifacts and datasets."""
    return [
        case("run-init-layout", "run", "--grid 16 --time 0.01 --init {layout} --out {out}/r.h5", BAD_INPUT, "layout.h5"),
        case("run-resume-layout", "run", "--resume {layout}", BAD_INPUT, "not a resumable"),
        case("run-replay-layout", "run", "--closure replay:{layout} --time 0.01 --out {out}/r.h5", BAD_INPUT, "layout.h5"),
        case("train-data-layout", "train", "--data {layout} --model fm --out {out}/t", BAD_INPUT, "layout.h5"),
        case("train-data-is-a-run", "train", "--data {run} --model fm --out {out}/t", BAD_INPUT, "run.h5"),
        case("evaluate-data-layout", "evaluate-apriori", "{trained} --data {layout}", BAD_INPUT, "layout.h5"),
        case("evaluate-data-wrong-grid", "evaluate-apriori", "{trained} --data {data32}", BAD_INPUT, "32"),
        case("evaluate-online-reference-layout", "evaluate-online", "{run} --reference {layout} --out {out}/rep",
             BAD_INPUT, "layout.h5"),
        case("run-artifact-wrong-grid", "run", "--closure {artifact32} --grid 16 --time 0.01 --out {out}/r.h5",
             BAD_INPUT, "GridMismatchError", "32²"),
        case("run-artifact-wrong-preset", "run", "--closure {artifact_kolmogorov} --preset dong2026 --time 0.01 "
             "--out {out}/r.h5", BAD_INPUT, "PresetMismatchError", "kolmogorov"),
        case("run-init-wrong-grid", "run", "--preset dong2026 --grid 32 --time 0.01 --init {run} --out {out}/r.h5",
             BAD_INPUT, "16²"),
        case("bench-closures-not-an-artifact", "bench-closures", "{run} --repeat 1", BAD_INPUT, "run.h5"),
        case("evaluate-les-report-layout", "evaluate-les-report", "{run} {layout} --out {out}/rep", BAD_INPUT,
             "layout.h5"),
        case("evaluate-les-coarse-grain-not-dividing", "evaluate-les-coarse-grain", "{run} -n 6 --out {out}/c.h5",
             USAGE, "coarse grid 6 must divide the fine grid 16"),
    ]


def _option_cases() -> list[Case]:
    """Out-of-range, NaN/inf and malformed values, and options the chosen mode ignores, for every command."""
    o = "--out {out}/x.h5"
    ds = f"--fine 32 --coarse 8 --trajectories 2 --test-trajectories 1 --burn-in 0.01 --t-end 0.03 {SAVE_EVERY} 0.01"
    return [
        case("run-time-zero", "run", f"--time 0 {o}", USAGE, "--time", "0.0"),
        case("run-time-nan", "run", f"--time nan {o}", USAGE, "--time", "nan"),
        case("run-dt-inf", "run", f"--dt inf {o}", USAGE, "--dt", "inf"),
        case("run-grid-odd", "run", f"--grid 15 {o}", USAGE, "--grid", "even"),
        case("run-members-zero", "run", f"--members 0 {o}", USAGE, "--members"),
        case("run-nu-negative", "run", f"--nu -1 {o}", USAGE, "--nu"),
        case("run-save-every-nan", "run", f"--save-every nan {o}", USAGE, "--save-every"),
        case("run-threads-zero", "run", f"--threads 0 {o}", USAGE, "--threads"),
        case("run-set-malformed", "run", f"--set dt {o}", USAGE, "--set", "KEY=VALUE"),
        case("run-set-unknown-field", "run", f"--set nope=1 {o}", USAGE, "nope"),
        case("run-backend-unknown", "run", f"--backend cufft {o}", USAGE, "--backend", "cufft"),
        case("run-every-zero-eddy", "run", f"--closure smagorinsky {EVERY} 0 {o}", USAGE, EVERY),
        case("run-every-zero-artifact", "run", f"--closure {{artifact}} {EVERY} 0 {o}", USAGE, EVERY),
        case("run-every-eddy-ignored", "run", f"--closure leith {EVERY} 5 {o}", USAGE, EVERY, "leith"),
        case("run-device-unknown", "run", f"--device tpu9 {o}", USAGE, "--device", "tpu9"),
        case("run-device-without-artifact", "run", f"--device cuda {o}", USAGE, "--device", "--closure"),
        case("run-coef-with-artifact", "run", f"--closure {{artifact}} --closure-coef 0.2 {o}", USAGE, "--closure-coef"),
        case("run-resume-with-grid", "run", "--resume {run} --grid 32", USAGE, "--grid", "--resume"),
        case("run-jitter-negative", "run", f"--closure {{artifact}} {JITTER} -1 {o}", USAGE, JITTER),
        case("run-closure-unknown", "run", f"--closure smagorinksy {o}", USAGE, "smagorinksy"),
        case("dataset-every-zero", "dataset", f"{ds} {SAVE_EVERY} 0 {o}", USAGE, SAVE_EVERY),
        case("dataset-t-end-nan", "dataset", f"{ds} --t-end nan {o}", USAGE, "--t-end", "nan"),
        case("dataset-trajectories-zero", "dataset", f"{ds} --trajectories 0 {o}", USAGE, "--trajectories"),
        case("dataset-coarse-not-dividing", "dataset", f"{ds} --coarse 12 {o}", USAGE, "12"),
        case("dataset-preset-unknown", "dataset", f"{ds} --preset nope {o}", USAGE, "nope"),
        case("train-epochs-zero", "train", "--data {data} --model fm --epochs 0 --out {out}/t", USAGE, "--epochs"),
        case("train-batch-one", "train", "--data {data} --model fm --batch 1 --out {out}/t", USAGE, "--batch"),
        case("train-ae-channels-count", "train", "--data {data} --model latent-fm --ae-channels 4,8 --out {out}/t", USAGE,
             "--ae-channels 4,8", "channel counts"),
        case("train-ae-channels-zero", "train", "--data {data} --model latent-fm --ae-channels 0,8,16 --out {out}/t", USAGE,
             "--ae-channels"),
        case("train-lr-nan", "train", "--data {data} --model fm --lr nan --out {out}/t", USAGE, "--lr", "nan"),
        case("train-device-unknown", "train", "--data {data} --model fm --device tpu9 --out {out}/t", USAGE, "--device"),
        case("train-nproc-zero", "train", "--data {data} --model fm --nproc 0 --out {out}/t", USAGE, "--nproc", "0"),
        case("train-nproc-batch-indivisible", "train", "--data {data} --model fm --batch 5 --nproc 2 --out {out}/t",
             USAGE, "--batch 5", "--nproc 2"),
        case("train-teacher-steps-zero", "train", "--data {data} --model latent-reflow --teacher {trained} "
             "--teacher-steps 0 --out {out}/t", USAGE, "--teacher-steps"),
        case("train-ga-landmarks-negative", "train", "--data {data} --model fm --ga-landmarks -1 --out {out}/t", USAGE,
             "--ga-landmarks"),
        case("train-ga-scale-unknown", "train", "--data {data} --model latent-fm --reg ga --ga-scale mean --out {out}/t",
             USAGE, "--ga-scale", "mean"),
        case("train-ga-weight-negative", "train", "--data {data} --model latent-fm --reg ga --ga-weight -0.5 "
             "--out {out}/t", USAGE, "--ga-weight", "-0.5"),
        case("train-ga-weight-nan", "train", "--data {data} --model latent-fm --reg ga --ga-weight nan --out {out}/t",
             USAGE, "--ga-weight", "nan"),
        case("train-standardise-given-a-value", "train", "--data {data} --model latent-fm --standardise=no "
             "--out {out}/t", USAGE, "--standardise"),
        case("evaluate-samples-zero", "evaluate-apriori", "{trained} --data {data} --samples 0", USAGE, "--samples"),
        case("evaluate-checkpoint-unknown", "evaluate-apriori", "{trained} --data {data} --checkpoint worst", USAGE,
             "--checkpoint", "worst"),
        case("evaluate-online-option-in-apriori", "evaluate-apriori", "{trained} --data {data} --horizons 5", USAGE,
             "--horizons"),
        case("evaluate-horizons-malformed", "evaluate-online", "{run} --reference {run} --out {out}/rep --horizons 5,,x",
             USAGE, "--horizons"),
        case("evaluate-horizons-nan", "evaluate-online", "{run} --reference {run} --out {out}/rep --horizons nan",
             USAGE, "--horizons", "nan"),
        case("export-steps-zero", "export", "{trained} --out {out}/c.pt --steps 0", USAGE, "--steps"),
        case("export-format-unknown", "export", "{trained} --out {out}/c.pt --format onnx", USAGE, "--format", "onnx"),
        case("demo-size-unknown", "demo", "--out {out}/d --size huge", USAGE, "huge"),
        case("demo-threads-zero", "demo", "--out {out}/d --threads 0", USAGE, "--threads"),
        case("demo-case-unknown", "demo", "--out {out}/d --case lse", USAGE, "--case", "lse"),
        case("demo-les-size-small", "demo", "--out {out}/d --case les --size small", USAGE, "--size", "--case les"),
        case("evaluate-les-blocks-one", "evaluate-les-report", "{run} {run} --out {out}/rep --blocks 1", USAGE,
             "--blocks"),
        case("evaluate-les-filter-unknown", "evaluate-les-report", "{run} {run} --out {out}/rep --filter box", USAGE,
             "--filter", "box"),
        case("evaluate-les-skill-horizon-nan", "evaluate-les-report", "{run} {run} --out {out}/rep --skill-horizon nan",
             USAGE, "--skill-horizon", "nan"),
        case("evaluate-les-grid-odd", "evaluate-les-coarse-grain", "{run} -n 7 --out {out}/c.h5", USAGE, "--grid"),
        case("evaluate-les-member-negative", "evaluate-les-coarse-grain", "{run} -n 8 --member -1 --out {out}/c.h5",
             USAGE, "--member"),
        case("bench-solver-grid-malformed", "bench-solver", "--grid 16,a", USAGE, "--grid", "16,a"),
        case("bench-solver-grid-empty-item", "bench-solver", "--grid 16,,32", USAGE, "--grid"),
        case("bench-solver-repeats-zero", "bench-solver", "--grid 16 --repeats 0", USAGE, "--repeats"),
        case("bench-solver-peer-unknown", "bench-solver", "--grid 16 --peer jaxcfd", USAGE, "--peer", "jaxcfd"),
        case("bench-solver-peer-without-python", "bench-solver", "--grid 16 --peer jax-cfd", USAGE, "--peer-python"),
        case("bench-solver-peer-python-missing", "bench-solver", "--grid 16 --peer jax-cfd --peer-python {out}/nope/python",
             BAD_INPUT, "--peer-python", "does not exist"),
        case("bench-solver-peer-cores-three", "bench-solver",
             f"--grid 16 --peer jax-cfd --peer-python {sys.executable} --peer-cores 3", USAGE, "core setting 3"),
        case("bench-closures-batch-zero", "bench-closures", "{artifact} --batch 0", USAGE, "--batch"),
        case("bench-closures-baseline-out-of-range", "bench-closures", "{artifact} --baseline 3", USAGE, "--baseline"),
        case("bench-coupled-every-zero", "bench-coupled", f"--closure smagorinsky {EVERY} 0", USAGE, EVERY),
        case("bench-coupled-jitter-inf", "bench-coupled", f"--closure smagorinsky {JITTER} inf", USAGE, JITTER),
        # scale-out on Dask (issue 12): refused before any cluster starts or file is written
        case("dataset-workers-and-scheduler", "dataset", f"{ds} --workers 2 --scheduler tcp://127.0.0.1:8786 {o}",
             USAGE, "--workers 2", "--scheduler tcp://127.0.0.1:8786", "exclude each other"),
        case("dataset-workers-zero", "dataset", f"{ds} --workers 0 {o}", USAGE, "--workers"),
        case("dataset-workers-with-threads", "dataset", f"{ds} --workers 2 --threads 2 {o}", USAGE, "--threads 2",
             "1 FFTW thread"),
        case("run-workers-and-scheduler", "run", f"--members 2 --workers 2 --scheduler tcp://127.0.0.1:8786 {o}",
             USAGE, "--workers 2", "--scheduler tcp://127.0.0.1:8786", "exclude each other"),
        case("run-members-per-batch-zero", "run", f"--members 2 --members-per-batch 0 {o}", USAGE,
             "--members-per-batch"),
        case("run-workers-with-threads", "run", f"--grid 16 --time 0.01 --members 2 --workers 2 --threads 2 {o}", USAGE,
             "--threads 2", "1 FFTW thread"),
        case("run-workers-with-artifact", "run", f"--closure {{artifact}} --members 2 --workers 2 {o}", USAGE,
             "--closure", "one generator"),
        case("run-resume-with-workers", "run", "--resume {run} --workers 2", USAGE, "--workers", "--resume"),
        case("run-resume-batched", "run", "--resume {batched_run} --time 0.04", USAGE, "batches of 1 of its 2 members"),
    ]


def _path_and_resource_cases() -> list[Case]:
    """Impossible output paths (unwritable folder, parent is a regular file) and jobs that cannot fit."""
    ds = f"--fine 32 --coarse 8 --trajectories 2 --test-trajectories 1 --burn-in 0.01 --t-end 0.03 {SAVE_EVERY} 0.01"
    out: list[Case] = []
    for where, path, word in (("unwritable", "{unwritable}/kolmo-out", "cannot write"),
                              ("under-a-file", "{file}/sub", "regular file")):
        out += [
            case(f"run-out-{where}", "run", f"--grid 16 --time 0.01 --out {path}/r.h5", BAD_INPUT, word),
            case(f"dataset-out-{where}", "dataset", f"{ds} --out {path}/d.h5", BAD_INPUT, word),
            case(f"train-out-{where}", "train", f"--data {{data}} --model fm --out {path}/t", BAD_INPUT, word),
            case(f"export-out-{where}", "export", f"{{trained}} --out {path}/c.pt", BAD_INPUT, word),
            case(f"evaluate-json-{where}", "evaluate-apriori", f"{{trained}} --data {{data}} --json {path}/m.json",
                 BAD_INPUT, word),
            case(f"evaluate-online-out-{where}", "evaluate-online", f"{{run}} --reference {{run}} --out {path}/rep",
                 BAD_INPUT, word),
            case(f"demo-out-{where}", "demo", f"--out {path}/demo --size ci", BAD_INPUT, word),
            case(f"bench-solver-json-{where}", "bench-solver", f"--grid 16 --repeats 1 --json {path}/b.json",
                 BAD_INPUT, word),
            case(f"evaluate-les-coarse-grain-out-{where}", "evaluate-les-coarse-grain",
                 f"{{run}} -n 8 --out {path}/c.h5", BAD_INPUT, word),
            case(f"evaluate-les-report-out-{where}", "evaluate-les-report", f"{{run}} {{run}} --out {path}/rep",
                 BAD_INPUT, word),
        ]
    out += [
        case("run-out-is-a-folder", "run", "--grid 16 --time 0.01 --out {out}", BAD_INPUT, "is a folder"),
        case("run-memory", "run", "--grid 131072 --members 64 --out {out}/r.h5", RUNTIME, "memory", "TiB"),
        case("dataset-memory", "dataset", "--fine 65536 --coarse 64 --members-per-batch 64 --out {out}/d.h5",
             RUNTIME, "memory", "TiB"),
        case("train-memory", "train", "--data {data} --model fm --width 100000000 --out {out}/t", RUNTIME, "memory"),
        case("bench-solver-memory", "bench-solver", "--grid 131072 --members 64", RUNTIME, "memory"),
        case("run-output-exists", "run", "--grid 16 --time 0.01 --out {run}", USAGE, "already exists"),
        case("evaluate-les-coarse-grain-output-exists", "evaluate-les-coarse-grain", "{run} -n 8 --out {run}", USAGE,
             "already exists"),
    ]
    return out


CASES = _file_cases() + _layout_cases() + _option_cases() + _path_and_resource_cases()


# ---------------------------------------------------------------------------------------------- running
@dataclass
class Outcome:
    returncode: int
    output: str
    changed: list[str]
    new: list[str]
    seconds: float = 0.0


def _tree(folders: list[Path]) -> dict[str, str]:
    """sha256 of every file under ``folders``."""
    out = {}
    for folder in folders:
        for p in sorted(folder.rglob("*")) if folder.is_dir() else []:
            if p.is_file():
                out[str(p)] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def _invoke(argv: list[str], cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cli.main", *argv], cwd=cwd, env=_env(), capture_output=True,
                          text=True, timeout=timeout)


def _run_case(c: Case, f: dict[str, Path], work: Path) -> Outcome:
    own = work / c.id
    own.mkdir()
    (own / "keep.txt").write_text("pre-existing\n")
    fill = {k: str(v) for k, v in f.items()}
    fill["out"] = str(own)
    argv = [*COMMANDS[c.command], *(a.format(**fill) for a in c.args)]
    before = _tree([own])
    t0 = time.perf_counter()
    proc = _invoke(argv, own)
    seconds = time.perf_counter() - t0
    after = _tree([own])
    changed = [p for p, h in before.items() if after.get(p) != h]
    new = [p for p in after if p not in before]
    return Outcome(proc.returncode, proc.stdout + proc.stderr, changed, new, seconds)


@pytest.fixture(scope="module")
def outcomes(inputs: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Outcome]:
    """Run every case once, in parallel subprocesses; check the shared inputs are untouched."""
    work = tmp_path_factory.mktemp("cases")
    shared = [inputs["base"]]
    before = _tree(shared)
    with ThreadPoolExecutor(max_workers=max(2, min(6, (os.cpu_count() or 2) * 2))) as pool:
        futures = {c.id: pool.submit(_run_case, c, inputs, work) for c in CASES}
        result = {k: fut.result() for k, fut in futures.items()}
    after = _tree(shared)
    result["__shared__"] = Outcome(0, "", [p for p, h in before.items() if after.get(p) != h],
                                   [p for p in after if p not in before])
    return result


def _assert_refused(o: Outcome, code: int, expect: tuple[str, ...]) -> None:
    assert o.returncode == code, f"exit {o.returncode}, expected {code}:\n{o.output}"
    assert "Traceback" not in o.output, o.output
    for fragment in expect:
        assert fragment in o.output, f"{fragment!r} not in:\n{o.output}"
    errors = [line for line in o.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, f"expected one error line:\n{o.output}"
    assert o.changed == [], f"pre-existing files changed: {o.changed}"
    assert all(is_temporary(p) for p in o.new), f"new files that look finished: {o.new}"


@pytest.mark.parametrize("c", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_refused_cleanly(c: Case, outcomes: dict[str, Outcome]) -> None:
    _assert_refused(outcomes[c.id], c.code, c.expect)


def test_no_input_file_was_touched_by_any_case(outcomes: dict[str, Outcome]) -> None:
    shared = outcomes["__shared__"]
    assert shared.changed == [] and shared.new == []


def test_every_command_has_bad_input_cases() -> None:
    assert {c.command for c in CASES} == set(COMMANDS)


# ---------------------------------------------------------------------------------------------- Ctrl-C
def _interrupt(argv: list[str], cwd: Path, ready: Callable[[], bool], deadline: float = 60) -> tuple[int, str]:
    """Start ``kolmo argv``, wait until ``ready()`` (work is being written), send SIGINT, return
    (status, output)."""
    proc = subprocess.Popen([sys.executable, "-m", "cli.main", *argv], cwd=cwd, env=_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    t0 = time.monotonic()
    while not ready() and proc.poll() is None and time.monotonic() - t0 < deadline:
        time.sleep(0.05)
    time.sleep(0.2)  # mid-write: a few steps after the file appeared
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=deadline)
    return proc.returncode, out


@pytest.mark.parametrize("command", ["run", "dataset"])
def test_ctrl_c_mid_write_leaves_no_complete_looking_file(command: str, tmp_path: Path) -> None:
    keep = tmp_path / "keep.txt"
    keep.write_text("pre-existing\n")
    out = tmp_path / "out.h5"
    part = out.with_name(out.name + ".partial")
    if command == "run":
        argv = [*COMMANDS["run"], "--preset", "dong2026", "--grid", "32", "--time", "1000", "--save-every", "0.01",
                "--out", str(out)]
    else:
        argv = [*COMMANDS["dataset"], "--fine", "32", "--coarse", "8", "--trajectories", "2000",
                "--test-trajectories", "1", "--burn-in", "0.01", "--t-end", "5", SAVE_EVERY, "0.01", "--out", str(out)]
    code, output = _interrupt(argv, tmp_path, part.exists)
    assert code == INTERRUPTED, output
    assert "Traceback" not in output and "interrupted" in output
    assert not out.exists()  # only the clearly unfinished OUT.partial remains (resumable)
    assert part.exists() and keep.read_text() == "pre-existing\n"
    assert all(p.name in ("keep.txt", part.name) for p in tmp_path.iterdir())
