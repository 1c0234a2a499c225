"""What each command checks before it starts work: options its mode ignores, the paths it will
write, and whether the job fits in memory and on disk.

One function per command, called once at the top of the command (inside the error boundary), so
the command modules stay thin. Generic pieces live in :mod:`cli.options` (option values),
:mod:`kolmo.paths` (paths) and :mod:`kolmo.resources` (memory and disk).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

from cli.options import refuse_inapplicable
from kolmo.errors import ConfigurationError
from kolmo.paths import existing_file, existing_folder, writable_output
from kolmo.resources import (dataset_memory, dataset_output_bytes, require_disk, require_memory, run_memory,
                             run_output_bytes, train_memory)

__all__ = ["artifact_input", "dataset_input", "apriori_inputs", "closure_kind", "run_modes", "run_resources",
           "dataset_resources", "train_resources", "train_processes", "bench_solver_resources", "bench_closures_inputs",
           "bench_coupled_resources"]

DEFAULT_DEVICE = "cpu"
DEFAULT_CLOSURE_DTYPE = "float32"
DEFAULT_NONFINITE = "raise"


def closure_kind(spec: Optional[str]) -> str:
    """``none``, ``eddy-viscosity``, ``replay`` or ``artifact`` for a ``--closure`` value (``None``: none)."""
    if spec is None:
        return "none"
    low = spec.strip().lower()
    if low == "none":
        return "none"
    if low in ("smagorinsky", "leith"):
        return "eddy-viscosity"
    if low.startswith("replay:"):
        return "replay"
    return "artifact"


def run_modes(*, resume: Optional[Path], closure: Optional[str], protocol: Optional[str],
              given: dict[str, Any]) -> None:
    """Refuse ``kolmo run`` options that the chosen mode ignores.

    ``given`` maps each flag to its value (``None``, or the default for the defaulted ones, means
    not given): ``--preset --grid --time --dt --members --seed --save-every --stepper --nu --mu
    --initial --init --set --out --overwrite --closure-every --closure-jitter --closure-seed
    --closure-coef --closure-dtype --closure-nonfinite --device --workers --scheduler --members-per-batch``.
    """
    defaults = {"--closure-dtype": DEFAULT_CLOSURE_DTYPE, "--closure-nonfinite": DEFAULT_NONFINITE,
                "--device": DEFAULT_DEVICE, "--overwrite": False, "--set": []}

    def used(flag: str) -> bool:
        value = given.get(flag)
        return value is not None and value != defaults.get(flag, None) and value != []

    if resume is not None:
        fixed = ["--preset", "--grid", "--dt", "--members", "--seed", "--save-every", "--stepper", "--nu", "--mu",
                 "--initial", "--init", "--set", "--out", "--overwrite", "--protocol", "--closure-every",
                 "--closure-jitter", "--closure-seed", "--closure-coef", "--closure-dtype", "--closure-nonfinite",
                 "--workers", "--scheduler", "--members-per-batch"]
        refuse_inapplicable("with --resume (the run file fixes them; only --time, --closure, --device, --threads "
                            "and --backend apply)", {f: used(f) for f in fixed})
        return
    kind = closure_kind(closure)
    artifact_only = ["--closure-every", "--closure-jitter", "--closure-seed", "--closure-dtype", "--device"]
    if kind == "none":
        refuse_inapplicable("without --closure",
                            {f: used(f) for f in artifact_only + ["--closure-coef", "--closure-nonfinite"]})
    elif kind == "eddy-viscosity":
        refuse_inapplicable(f"to the eddy-viscosity closure {closure!r} (only artifact closures PATH.pt are "
                            "resampled, jittered, seeded or run on a device)", {f: used(f) for f in artifact_only})
    elif kind == "replay":
        refuse_inapplicable(f"to the replayed closure {closure!r} (it reads the true closure from the dataset)",
                            {f: used(f) for f in artifact_only + ["--closure-coef"]})
    else:
        refuse_inapplicable("to an artifact closure (--closure-coef sets C_S/C_L of smagorinsky/leith)",
                            {"--closure-coef": used("--closure-coef")})
        path = Path(str(closure).strip())
        if path.suffix:  # before torch loads (shipped names have no suffix)
            artifact_input(path, "--closure")


TORCHSCRIPT_KIND = ("a TorchScript archive", "a TorchScript module", "torch.jit.save")
ARTIFACT_KINDS = {".pt2": ("an AOTInductor package", "a PT2 archive", "kolmo export --format aoti")}
"""What a closure artifact file is by suffix (any other: :data:`TORCHSCRIPT_KIND`): the file, its
container, its writer."""


def artifact_input(path: Path, option: str) -> None:
    """Check, before torch loads, that ``path`` exists and is a zip archive (TorchScript ``.pt`` or
    AOTInductor ``.pt2``) that carries the artifact's ``extra/metadata.json``; the full contract is
    checked by the loader (:mod:`coupling.artifact`). Raises
    :class:`~coupling.errors.ArtifactFormatError` naming the file."""
    import zipfile

    from coupling.errors import ArtifactFormatError

    if not path.exists():
        raise ArtifactFormatError(f"closure artifact {path} does not exist (expected a TorchScript .pt file or an "
                                  "AOTInductor .pt2 package)")
    existing_file(path, option, "closure artifact")
    kind, container, writer = ARTIFACT_KINDS.get(path.suffix.lower(), TORCHSCRIPT_KIND)
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise ArtifactFormatError(f"{option} {path} is not {kind} or is corrupt ({exc}); expected a "
                                  f"closure artifact written by {writer}") from None
    if not any(name.endswith("/extra/metadata.json") for name in names):
        raise ArtifactFormatError(f"{option} {path} has no extra/metadata.json: {container}, but not a "
                                  "kolmo closure artifact")


def run_resources(config: Any, out: Path) -> None:
    """``kolmo run``: the output location is writable, the solver fits in memory, the file on disk."""
    writable_output(out, "--out")
    require_memory(run_memory(config.n, config.members, config.stepper), "kolmo run")
    snapshots = int(round(config.t_end / config.save_every)) + 1
    require_disk(run_output_bytes(config.n, config.members, snapshots), out, "kolmo run")


def dataset_resources(spec: Any, out: Path) -> None:
    """``kolmo dataset``: the output location is writable, one batch fits in memory, the file on disk."""
    writable_output(out, "--out")
    cfg = spec.fine_config()
    records = len(spec.record_steps(cfg.dt))
    require_memory(dataset_memory(spec.fine, spec.coarse, spec.members_per_batch, records,
                                  spec.train_trajectories * records, cfg.stepper), "kolmo dataset")
    require_disk(dataset_output_bytes(spec.coarse, spec.trajectories * records), out, "kolmo dataset")


def train_resources(data: Optional[Path], out: Path, *, resume: bool, batch: Optional[int], width: Optional[int],
                    reg: Optional[str], ga_landmarks: Optional[int], teacher: Optional[Path] = None) -> None:
    """``kolmo train``: the data file exists, the run folder can be written, a ``--teacher`` run folder
    exists, the training fits in memory."""
    writable_output(out, "--out", folder=True)
    if teacher is not None:
        existing_folder(teacher, "--teacher", "run directory of the flow-matching teacher")
    if data is None:
        return
    pairs, grid = dataset_input(data, "--data", ("train",))
    landmarks = 2000 if ga_landmarks is None else (ga_landmarks or None)
    batch = min(batch or 64, pairs)  # training clamps the batch to the data
    require_memory(train_memory(pairs, grid, batch, width or 40, landmarks, ga=reg == "ga"), "kolmo train")


def train_processes(nproc: int, config: Any, out: Path, resume: bool) -> None:
    """``kolmo train --nproc N``, before torchrun starts: not already inside torchrun, ``--batch`` divisible by
    ``N``, one GPU per process on CUDA, and every check of a training run (data, checkpoint, settings, run
    folder; :func:`closure.training.prepare_run`), so that a bad input is one error line, not ``N``."""
    import os

    from closure.data_parallel import TORCHRUN_VARIABLES, check_processes
    from closure.training import prepare_run

    inside = [k for k in TORCHRUN_VARIABLES if k in os.environ]
    if inside:
        raise ConfigurationError(f"--nproc {nproc} inside a torchrun process ({', '.join(inside)} set); drop --nproc "
                                 "(torchrun already chose the processes)")
    check_processes(config.batch, config.device, nproc)
    prepare_run(config, out, resume)


def dataset_input(path: Path, option: str, splits: tuple[str, ...] = ("train", "test")) -> tuple[int, int]:
    """Check (torch-free) that ``path`` is a finished ``kolmo dataset`` file holding ``splits``; returns
    the pairs and grid size of the first split. Typed errors name the option and the file."""
    from kolmo.errors import FileFormatError
    from kolmo.pairs import Pairs

    existing_file(path, option, "dataset file")
    sizes = []
    for split in splits:
        try:
            with Pairs(path, split) as pairs:
                sizes.append((len(pairs), int(pairs.n)))
        except FileFormatError as exc:
            raise FileFormatError(f"{option}: {exc}") from None
        except (OSError, KeyError, ValueError, IndexError, TypeError) as exc:
            raise FileFormatError(f"{option} {str(path)!r} is not a readable kolmo dataset file ({exc})") from None
    return sizes[0]


def apriori_inputs(run_dir: Path, data: Path) -> None:
    """``kolmo evaluate apriori``: the run folder exists and ``--data`` is a dataset with a test split."""
    existing_folder(run_dir, "RUN_DIR", "run directory of `kolmo train`")
    dataset_input(data, "--data", ("test",))


def bench_solver_resources(grids: list[int], members: list[int], json_out: Optional[Path]) -> None:
    """``kolmo bench solver``: the largest case fits in memory; the JSON file can be written."""
    if json_out is not None:
        writable_output(json_out, "--json")
    require_memory(run_memory(max(grids), max(members)), "kolmo bench solver")


def bench_closures_inputs(artifacts: list[Path], baseline: int, device: str, cuda_graph: bool,
                          json_out: Optional[Path], plot: Optional[Path]) -> None:
    """``kolmo bench closures``: every artifact is a readable closure artifact (typed errors for
    missing, corrupt or foreign files), ``--baseline`` indexes one of them, ``--cuda-graph`` has
    a GPU to run on, outputs can be written."""
    if baseline >= len(artifacts):
        raise ConfigurationError(f"--baseline {baseline}: expected an index below the {len(artifacts)} artifact(s) given")
    refuse_inapplicable("on the CPU (CUDA graphs need --device cuda)", {"--cuda-graph": cuda_graph and device == "cpu"})
    for out, flag in ((json_out, "--json"), (plot, "--plot")):
        if out is not None:
            writable_output(out, flag)
    for path in artifacts:
        artifact_input(path, "ARTIFACTS")


def bench_coupled_resources(grid: int, members: int, json_out: Optional[Path]) -> None:
    """``kolmo bench coupled``: the solver fits in memory; the JSON file can be written."""
    if json_out is not None:
        writable_output(json_out, "--json")
    require_memory(run_memory(grid, members), "kolmo bench coupled")
