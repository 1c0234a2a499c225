"""Training checkpoints: the ``last.pt`` / ``best.pt`` format, atomic writes, the random-stream state,
the compatibility check of ``--resume`` and reading a trained run back (:func:`load_run`)."""

from __future__ import annotations

import os
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from closure.data import DatasetInfo, Normalisation
from closure.errors import CheckpointError, CheckpointMismatchError, ConfigurationError
from closure.models import ClosureModel, ModelConfig
from closure.train_config import LEGACY_DEFAULTS, TrainConfig
from kolmo.atomic import atomic_output, write_json

__all__ = ["CHECKPOINT_FORMAT", "CHECKPOINT_VERSION", "RESUMABLE_CHANGES", "LoadedRun", "read_checkpoint",
           "resume_config", "load_run", "save_checkpoint", "write_run_json", "numpy_rng_state",
           "set_numpy_rng_state", "check_compatible"]

CHECKPOINT_FORMAT = "kolmo-closure-checkpoint"
CHECKPOINT_VERSION = 1
RESUMABLE_CHANGES = ("epochs", "device", "data")
"""Settings a resumed run may change (the data file may move; its fingerprint must match)."""


@dataclass
class LoadedRun:
    """A trained model read back from a run directory (:func:`load_run`)."""

    model: ClosureModel
    normalisation: Normalisation
    dataset: dict[str, Any]
    config: TrainConfig
    run_id: str
    history: list[dict[str, Any]]
    checkpoint: Path
    epoch: int
    phase: str


def numpy_rng_state() -> list[Any]:
    name, keys, pos, has_gauss, cached = np.random.get_state()
    return [name, [int(k) for k in keys], int(pos), int(has_gauss), float(cached)]


def set_numpy_rng_state(s: list[Any]) -> None:
    np.random.set_state((s[0], np.asarray(s[1], dtype=np.uint32), s[2], s[3], s[4]))


def read_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Load and check a training checkpoint (:class:`CheckpointError` when missing, corrupt or foreign)."""
    p = Path(path)
    if not p.is_file():
        raise CheckpointError(f"checkpoint {p} does not exist (is this a `kolmo train` run directory?)")
    try:
        ckpt = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many types for corrupt files
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"checkpoint {p} is unreadable or corrupt ({first[:200]})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{p} is not a {CHECKPOINT_FORMAT} file")
    if ckpt.get("version") != CHECKPOINT_VERSION:
        raise CheckpointError(f"{p}: checkpoint version {ckpt.get('version')!r}; expected {CHECKPOINT_VERSION}")
    return ckpt


def save_checkpoint(obj: Any, path: Path) -> None:
    """``torch.save`` through :func:`kolmo.atomic.atomic_output` (a crash never leaves a truncated checkpoint)."""
    with atomic_output(path) as tmp:
        torch.save(obj, tmp)


def write_run_json(obj: Any, path: Path) -> None:
    write_json(path, obj, indent=1, sort_keys=True)


def _differences(saved: dict[str, Any], asked: dict[str, Any], prefix: str = "") -> list[str]:
    out = []
    for key in sorted(set(saved) | set(asked)):
        if not prefix and key in RESUMABLE_CHANGES:
            continue
        a, b = saved.get(key), asked.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            out += _differences(a, b, prefix + key + ".")
        elif a != b:
            out.append(f"{prefix}{key}: {a!r} in the checkpoint, {b!r} asked")
    return out


def check_compatible(ckpt: dict[str, Any], config: TrainConfig, info: DatasetInfo, path: Path) -> None:
    diffs = _differences({**LEGACY_DEFAULTS, **ckpt["config"]}, config.to_dict())
    saved_fp = ckpt["dataset"].get("fingerprint")
    if saved_fp != info.fingerprint:
        diffs.append(f"dataset fingerprint: {saved_fp!r} in the checkpoint, {info.fingerprint!r} of {info.path}")
    if diffs:
        saved = ModelConfig.from_dict(ckpt["config"]["model"]).describe()
        raise CheckpointMismatchError(
            f"{path} was trained as {saved} and cannot be resumed with these settings; it differs in: "
            + "; ".join(diffs) + f". Only {', '.join(RESUMABLE_CHANGES)} may change on --resume")


def resume_config(run_dir: str | os.PathLike, **overrides: Any) -> TrainConfig:
    """The configuration stored in ``run_dir/last.pt`` with ``overrides`` applied (model settings by their
    :class:`ModelConfig` names); used by ``kolmo train --resume`` for options not given again."""
    ckpt = read_checkpoint(Path(run_dir) / "last.pt")
    d = ckpt["config"]
    model_keys = {f.name for f in fields(ModelConfig)}
    model_over = {k: v for k, v in overrides.items() if k in model_keys}
    rest = {k: v for k, v in overrides.items() if k not in model_keys}
    cfg = TrainConfig.from_dict(d)
    return replace(cfg, model=replace(cfg.model, **model_over), **rest)


def load_run(run_dir: str | os.PathLike, checkpoint: str = "best") -> LoadedRun:
    """The trained model of a run directory: ``best.pt`` (falls back to ``last.pt`` if absent) or ``last.pt``."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise CheckpointError(f"run directory {run_dir} does not exist")
    if checkpoint not in ("best", "last"):
        raise ConfigurationError(f"checkpoint {checkpoint!r}; expected best or last")
    path = run_dir / f"{checkpoint}.pt"
    if checkpoint == "best" and not path.is_file():
        path = run_dir / "last.pt"
    ckpt = read_checkpoint(path)
    config = TrainConfig.from_dict(ckpt["config"])
    model = ClosureModel(config.model)
    try:
        model.load_state_dict(ckpt["model"])
    except RuntimeError as exc:
        raise CheckpointError(f"{path}: model weights do not fit {config.model.describe()} ({str(exc)[:200]})") \
            from None
    model.eval()
    return LoadedRun(model=model, normalisation=Normalisation.from_dict(ckpt["dataset"]["normalisation"]),
                     dataset=ckpt["dataset"], config=config, run_id=ckpt["run_id"], history=ckpt["history"],
                     checkpoint=path, epoch=int(ckpt["epoch"]), phase=str(ckpt["phase"]))
