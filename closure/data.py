"""Torch view of a ``kolmo dataset`` file: normalised (ω, H) pairs of one split, and the validation split.

The file is read with :class:`kolmo.pairs.Pairs` (layout in :mod:`kolmo.pairs`). Fields are normalised
with the TRAIN split's statistics stored in the file (``stats``; recomputed from the train split when a
file lacks them), for every split alike::

    ω_n = (ω − μ_ω) / σ_ω,     H_n = (H − μ_H) / σ_H            (scalars over all pixels of all pairs)

The :class:`Normalisation` travels inside every checkpoint and artifact. The validation split is carved
from the TRAINING trajectories (whole trajectories, never single snapshots: consecutive snapshots of a
trajectory are correlated, so a snapshot split would leak).
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from typing import Any, Optional, Sequence

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from kolmo.errors import ConfigurationError, FileFormatError
from kolmo.pairs import Pairs, open_dataset_file, split_statistics

__all__ = ["Normalisation", "DatasetInfo", "read_info", "split_trajectories", "ClosurePairs"]


@dataclass(frozen=True)
class Normalisation:
    """Affine normalisation of vorticity (1/time) and closure (1/time²) by train-split scalars.

    Attributes
    ----------
    omega_mean, omega_std : float
        ``μ_ω``, ``σ_ω`` (1/time).
    closure_mean, closure_std : float
        ``μ_H``, ``σ_H`` (1/time²).
    """

    omega_mean: float
    omega_std: float
    closure_mean: float
    closure_std: float

    def __post_init__(self) -> None:
        for name in ("omega_std", "closure_std"):
            v = getattr(self, name)
            if not (np.isfinite(v) and v > 0):
                raise FileFormatError(f"normalisation {name} = {v!r}; expected a positive finite number "
                                      "(is the train split empty or constant?)")

    @classmethod
    def from_stats(cls, stats: dict[str, Any]) -> "Normalisation":
        """From a dataset file's ``stats`` (``{"vorticity": {"mean", "std"}, "closure": {...}}``)."""
        try:
            return cls(float(stats["vorticity"]["mean"]), float(stats["vorticity"]["std"]),
                       float(stats["closure"]["mean"]), float(stats["closure"]["std"]))
        except (KeyError, TypeError) as exc:
            raise FileFormatError(f"dataset stats {stats!r} lack {exc}; expected vorticity/closure mean and std") \
                from None

    def to_dict(self) -> dict[str, list[float]]:
        """Artifact form: ``{"omega": [mean, std], "H": [mean, std]}``."""
        return {"omega": [self.omega_mean, self.omega_std], "H": [self.closure_mean, self.closure_std]}

    @classmethod
    def from_dict(cls, d: dict[str, Sequence[float]]) -> "Normalisation":
        return cls(float(d["omega"][0]), float(d["omega"][1]), float(d["H"][0]), float(d["H"][1]))

    def omega(self, x: Tensor) -> Tensor:
        """``ω_n = (ω − μ_ω) / σ_ω``."""
        return (x - self.omega_mean) / self.omega_std

    def closure(self, x: Tensor) -> Tensor:
        """``H_n = (H − μ_H) / σ_H``."""
        return (x - self.closure_mean) / self.closure_std

    def closure_physical(self, x: Tensor) -> Tensor:
        """Inverse of :meth:`closure`: ``H = σ_H H_n + μ_H``."""
        return x * self.closure_std + self.closure_mean


@dataclass(frozen=True)
class DatasetInfo:
    """What a model needs to know about its dataset file.

    Attributes
    ----------
    path : str
        The file.
    preset, target : str
        Solver preset and closure target (``"missing-physics"`` or ``"sgs"``).
    grid : int
        Coarse grid points per side ``N``.
    L, dt : float
        Domain side and solver time step of the data.
    fingerprint : str
        Content fingerprint of the file (``kolmo.pairs.fingerprint``).
    normalisation : Normalisation
        From the train split.
    train_trajectories, test_trajectories : list of int
        Trajectory ids of each split.
    """

    path: str
    preset: str
    target: str
    grid: int
    L: float
    dt: float
    fingerprint: str
    normalisation: Normalisation
    train_trajectories: list[int]
    test_trajectories: list[int]

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["normalisation"] = self.normalisation.to_dict()
        return d


def read_info(path: str | os.PathLike) -> DatasetInfo:
    """Read the attributes and trajectory ids of a finished dataset file (typed errors otherwise)."""
    train = Pairs(path, "train")
    test = Pairs(path, "test")
    attrs = train.attrs
    stats = train.stats
    if not stats or "vorticity" not in stats:
        with open_dataset_file(path) as h5:
            stats = split_statistics(h5, "train")
    missing = [k for k in ("preset", "target", "L", "dt") if k not in attrs]
    if missing:
        raise FileFormatError(f"{path}: dataset attributes lack {missing}")
    if len(train) == 0:
        raise FileFormatError(f"{path}: the train split is empty")
    return DatasetInfo(
        path=str(path), preset=str(attrs["preset"]), target=str(attrs["target"]), grid=int(train.n),
        L=float(attrs["L"]), dt=float(attrs["dt"]), fingerprint=str(attrs.get("fingerprint", "")),
        normalisation=Normalisation.from_stats(stats),
        train_trajectories=[int(j) for j in train.trajectories],
        test_trajectories=[int(j) for j in test.trajectories])


def split_trajectories(trajectories: Sequence[int], validation_fraction: float = 0.1,
                       seed: int = 0) -> tuple[list[int], list[int]]:
    """Carve a validation split of whole TRAINING trajectories.

    ``max(1, round(f · n))`` of the ``n`` trajectories (a seeded permutation) go to validation, the rest
    stay for training; both lists are sorted.

    Raises
    ------
    ConfigurationError
        Fewer than two trajectories, or a fraction outside ``(0, 1)``.
    """
    ids = sorted(int(j) for j in trajectories)
    if not 0.0 < validation_fraction < 1.0:
        raise ConfigurationError(f"validation fraction {validation_fraction!r}; expected a number in (0, 1)")
    if len(ids) < 2:
        raise ConfigurationError(f"the train split holds {len(ids)} trajectory(ies) {ids}; at least 2 are needed "
                                 "to carve a validation split from whole trajectories")
    n_val = min(len(ids) - 1, max(1, int(round(validation_fraction * len(ids)))))
    perm = np.random.default_rng(seed).permutation(len(ids))
    val = sorted(ids[i] for i in perm[:n_val])
    return [j for j in ids if j not in val], val


class ClosurePairs(Dataset):
    """Normalised pairs ``(ω_n, H_n)``, each ``(1, N, N)``, of some trajectories of one split, in memory.

    Parameters
    ----------
    path : path-like
        A finished dataset file.
    split : {"train", "test"}
        Split to read.
    normalisation : Normalisation
        Usually :attr:`DatasetInfo.normalisation` (train statistics) — also for the test split.
    trajectories : sequence of int, optional
        Keep only these trajectory ids (default: all of the split).
    rows : sequence of int, optional
        Keep only these rows of the selection (e.g. evenly spaced test conditions).
    dtype : torch.dtype
        Tensor dtype (float32).

    Attributes
    ----------
    omega, closure : Tensor, shape (n, 1, N, N)
        Normalised fields.
    trajectory, time : ndarray, shape (n,)
        Trajectory id and recording time of each pair.
    """

    def __init__(self, path: str | os.PathLike, split: str, normalisation: Normalisation,
                 trajectories: Optional[Sequence[int]] = None, rows: Optional[Sequence[int]] = None,
                 dtype: torch.dtype = torch.float32) -> None:
        with Pairs(path, split) as pairs:
            index = np.arange(len(pairs))
            if trajectories is not None:
                wanted = np.asarray(sorted(int(j) for j in trajectories), dtype=np.int64)
                absent = sorted(set(wanted.tolist()) - set(pairs.trajectories.tolist()))
                if absent:
                    raise ConfigurationError(f"trajectories {absent} are not in the {split} split of {path} "
                                             f"(it holds {pairs.trajectories.tolist()})")
                index = index[np.isin(pairs.trajectory, wanted)]
            if rows is not None:
                index = index[np.asarray(rows, dtype=np.int64)]
            omega, closure = pairs[index] if len(index) else (np.zeros((0, pairs.n, pairs.n)),) * 2
            self.trajectory = pairs.trajectory[index]
            self.time = pairs.time[index]
        self.normalisation = normalisation
        self.omega = normalisation.omega(torch.as_tensor(np.asarray(omega), dtype=torch.float64)).to(dtype)[:, None]
        self.closure = normalisation.closure(torch.as_tensor(np.asarray(closure), dtype=torch.float64)).to(dtype)[:, None]

    def __len__(self) -> int:
        return self.omega.shape[0]

    def __getitem__(self, i: int) -> tuple[Tensor, Tensor]:
        return self.omega[i], self.closure[i]

    def __repr__(self) -> str:
        return f"ClosurePairs(pairs={len(self)}, grid={self.omega.shape[-1]}, trajectories={sorted(set(self.trajectory.tolist()))})"

