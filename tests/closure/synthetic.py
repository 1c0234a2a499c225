"""Tiny synthetic dataset files in the ``kolmo dataset`` layout, with a known conditional law.

``ω`` is a random smooth periodic field (Fourier modes ``|n| <= 2``); the closure is

    H = a ω + b + s ε,      ε a random smooth field (modes |n| <= 1), independent of ω,

so ``E[H | ω] = a ω + b`` and ``H − E[H | ω]`` has pixel-wise std ``s · std(ε)``. Written with h5py
directly (no solver run), with the statistics and fingerprint of :mod:`kolmo.pairs`.
"""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np

from kolmo.pairs import fingerprint, split_statistics
from kolmo.presets import preset

A, B, S = -0.5, 0.2, 0.3


def smooth_fields(rng: np.random.Generator, count: int, n: int, max_mode: int) -> np.ndarray:
    """``count`` real periodic fields on ``n × n`` made of the modes ``|n_x|, |n_y| <= max_mode``,
    normalised to unit pixel variance on average."""
    x = np.arange(n) / n
    out = np.zeros((count, n, n))
    for kx in range(-max_mode, max_mode + 1):
        for ky in range(0, max_mode + 1):
            if ky == 0 and kx <= 0:
                continue
            amp = rng.standard_normal((count, 2))
            phase = 2 * np.pi * (kx * x[None, :] + ky * x[:, None])
            out += amp[:, 0, None, None] * np.cos(phase) + amp[:, 1, None, None] * np.sin(phase)
    return out / out.std()


def write_synthetic_dataset(path: Path, n: int = 16, train_trajectories: int = 6, test_trajectories: int = 2,
                            snapshots: int = 20, seed: int = 0, a: float = A, b: float = B, s: float = S) -> Path:
    """Write a finished dataset file at ``path`` (see the module docstring); returns ``path``."""
    rng = np.random.default_rng(seed)
    every = 0.1
    with h5py.File(path, "w") as h5:
        h5.attrs.update({"format": "kolmo-dataset", "format_version": 2, "status": "complete",
                         "preset": "dong2026", "target": "missing-physics", "L": 1.0, "dt": 1e-3,
                         "n_fine": 4 * n, "n_coarse": n, "every": every, "seed": seed,
                         "snapshots_per_trajectory": snapshots,
                         "config": preset("dong2026", 4 * n).to_json(),
                         "synthetic_law": json.dumps({"a": a, "b": b, "s": s})})
        first = 0
        for split, count in (("train", train_trajectories), ("test", test_trajectories)):
            rows = count * snapshots
            omega = smooth_fields(rng, rows, n, 2)
            closure = a * omega + b + s * smooth_fields(rng, rows, n, 1)
            g = h5.create_group(split)
            g.attrs.update({"trajectories": count, "pairs": rows})
            g["vorticity"] = omega.astype(np.float32)
            g["closure"] = closure.astype(np.float32)
            g["time"] = np.tile(2.0 + every * np.arange(snapshots), count)
            g["step"] = np.tile(2000 + 100 * np.arange(snapshots), count).astype(np.int64)
            g["trajectory"] = np.repeat(np.arange(first, first + count), snapshots).astype(np.int64)
            g["done"] = np.ones(count, dtype=np.uint8)
            first += count
        h5.attrs["stats"] = json.dumps(split_statistics(h5, "train"))
        h5.attrs["fingerprint"] = fingerprint(h5)
    return path
