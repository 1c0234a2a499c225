"""Fixtures for the coupling tests: tiny scripted artifacts obeying the contract, and a small fake
"truth" dataset made from a fine dong2026 run (64² → 16²), in the layout of ``kolmo.pairs``."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, List

import h5py
import numpy as np
import pytest
import torch
from torch import Tensor, nn

from kolmo.coarse import subsample
from kolmo.forcing import QWienerForcing, member_generators
from kolmo.grid import Grid
from kolmo.presets import preset
from kolmo.simulation import CoarseState, Simulation

torch.set_num_threads(1)


# ---------------------------------------------------------------------- scripted test artifacts
class LinearNoise(nn.Module):
    """``H = a ω + s η``, η ~ N(0, I) of shape ``(B, 1, N, N)``: the simplest contract-abiding closure."""

    def __init__(self, n: int, a: float = -0.5, s: float = 1e-2) -> None:
        super().__init__()
        self.n = n
        self.a = nn.Parameter(torch.tensor(a))
        self.register_buffer("s", torch.tensor(s))

    def forward(self, omega: Tensor) -> Tensor:
        noise = torch.randn(self.noise_shape(omega.shape[0]), dtype=omega.dtype, device=omega.device)
        return self.sample(omega, noise)

    @torch.jit.export
    def sample(self, omega: Tensor, noise: Tensor) -> Tensor:
        return self.a * omega + self.s * noise[:, 0]

    @torch.jit.export
    def noise_shape(self, batch: int) -> List[int]:
        return [batch, 1, self.n, self.n]


class TwoStepNoise(LinearNoise):
    """Like :class:`LinearNoise` with sampler-style noise ``(2, B, 1, N, N)`` (two draws per sample)."""

    @torch.jit.export
    def sample(self, omega: Tensor, noise: Tensor) -> Tensor:
        return self.a * omega + self.s * (noise[0, :, 0] + noise[1, :, 0]) / 1.4142135623730951

    @torch.jit.export
    def noise_shape(self, batch: int) -> List[int]:
        return [2, batch, 1, self.n, self.n]


class WrongShape(LinearNoise):
    """Breaks the contract: drops the last row."""

    @torch.jit.export
    def sample(self, omega: Tensor, noise: Tensor) -> Tensor:
        return (self.a * omega + self.s * noise[:, 0])[:, :-1]


class WrongDtype(LinearNoise):
    """Breaks the contract: always returns float64."""

    @torch.jit.export
    def sample(self, omega: Tensor, noise: Tensor) -> Tensor:
        return (self.a * omega + self.s * noise[:, 0]).to(torch.float64)


class NaNFirstMember(LinearNoise):
    """Returns NaN for member 0 (a diverging generator)."""

    @torch.jit.export
    def sample(self, omega: Tensor, noise: Tensor) -> Tensor:
        h = self.a * omega + self.s * noise[:, 0]
        bad = torch.zeros_like(h)
        bad[0] = float("nan")
        return h + bad


class NoSampleMethod(nn.Module):
    """Only ``forward``: not a closure artifact."""

    def forward(self, omega: Tensor) -> Tensor:
        return omega


def metadata(**overrides: Any) -> dict[str, Any]:
    """Contract metadata of a dong2026 missing-physics closure on 16² (override any key)."""
    meta = {"preset": "dong2026", "target": "missing-physics-noisy", "grid": 16, "L": 1.0, "dt": 1e-3,
            "family": "test-linear", "regularizer": None, "nfe": 1, "dtype": "float32",
            "normalisation": {"omega": [0.0, 1.0], "H": [0.0, 1.0]}, "dataset_fingerprint": "test",
            "run_id": "test-run"}
    meta.update(overrides)
    return meta


@pytest.fixture
def make_artifact(tmp_path: Path) -> Callable[..., Path]:
    """``make_artifact(module=None, name="closure.pt", **metadata_overrides) -> path``."""
    from coupling.artifact import write_artifact

    def make(module: nn.Module | None = None, name: str = "closure.pt", **overrides: Any) -> Path:
        meta = metadata(**overrides)
        return write_artifact(module if module is not None else LinearNoise(int(meta["grid"])), tmp_path / name, meta)

    return make


def coarse_state(omega: np.ndarray, step: int = 0, L: float = 1.0, dt: float = 1e-3) -> CoarseState:
    """A :class:`CoarseState` for ``omega`` ``(B, N, N)`` at ``step``."""
    g = Grid(omega.shape[-1], L)
    return CoarseState(omega=omega, omega_hat=np.fft.rfft2(omega), step=step, time=step * dt, grid=g, dt=dt)


def reduced_config(n: int = 16, **kw: Any):
    """The dong2026 reduced model (advection off, noise off, cn-euler) on ``n``²."""
    return preset("dong2026", n, **{"advection": False, "noise_sigma": 0.0, "stepper": "cn-euler", **kw})


# ---------------------------------------------------------------------- a small fake truth dataset
TRUTH = {"fine": 64, "coarse": 16, "burn_in": 2.0, "span": 4.0, "every": 0.1, "seed": 0}


def build_truth_dataset(path: Path, fine: int = 64, coarse: int = 16, burn_in: float = 2.0, span: float = 4.0,
                        every: float = 0.1, seed: int = 0) -> Path:
    """A dong2026 fine run (advection + Q-Wiener noise) and its true missing-physics closure
    ``H = S[-P(u·∇ω) + σ_W ξ]`` (S: every ``fine/coarse``-th point; ξ the noise drawn for the step
    from the record), recorded every ``every`` time units after ``burn_in``; written as split
    ``test`` (trajectory 0) of a dataset file in ``kolmo.pairs``' layout (``train`` left empty).

    The noise is reproduced with a twin :class:`QWienerForcing` on the same member streams, drawn
    in lockstep with the run (public API only).
    """
    cfg = preset("dong2026", fine, seed=seed, t_end=burn_in + span)
    sim = Simulation(cfg, planner="estimate")
    twin = QWienerForcing(sim.grid, cfg.dt, cfg.noise_sigma, cfg.noise_alpha, cfg.noise_kappa,
                          member_generators(cfg.seed, 1, 0, "noise"))
    xi = np.zeros_like(sim.omega_hat)
    n_burn, n_span, n_every = (int(round(x / cfg.dt)) for x in (burn_in, span, every))
    omega, closure, times = [], [], []
    for _ in range(n_burn):
        twin.sample(xi)
        sim.advance()
    for i in range(n_span + 1):
        twin.sample(xi)
        if i % n_every == 0:
            h_hat = xi - sim.equation.advection_hat(sim.omega_hat)
            omega.append(subsample(sim.vorticity()[0], coarse))
            closure.append(subsample(np.fft.irfft2(h_hat[0], s=(fine, fine)), coarse))
            times.append(sim.time)
        if i < n_span:
            sim.advance()
    coarse_cfg = reduced_config(coarse)
    with h5py.File(path, "w") as h5:
        h5.attrs.update({"format": "kolmo-dataset", "format_version": 2, "status": "complete", "preset": "dong2026",
                         "target": "missing-physics-noisy", "config": cfg.to_json(), "coarse_config": coarse_cfg.to_json(),
                         "L": cfg.L, "dt": cfg.dt, "n_fine": fine, "n_coarse": coarse})
        for split, rows in (("test", len(times)), ("train", 0)):
            g = h5.create_group(split)
            g.create_dataset("vorticity", data=np.asarray(omega[:rows], dtype=np.float32).reshape(rows, coarse, coarse))
            g.create_dataset("closure", data=np.asarray(closure[:rows], dtype=np.float32).reshape(rows, coarse, coarse))
            g.create_dataset("time", data=np.asarray(times[:rows], dtype=np.float64))
            g.create_dataset("step", data=np.rint(np.asarray(times[:rows]) / cfg.dt).astype(np.int64))
            g.create_dataset("trajectory", data=np.zeros(rows, dtype=np.int64))
    return path


@pytest.fixture(scope="session")
def truth_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The fake truth (64² → 16², burn-in 2, 4 time units recorded every 0.1: 41 records)."""
    return build_truth_dataset(tmp_path_factory.mktemp("truth") / "truth.h5", **TRUTH)


def relative_error(a: np.ndarray, b: np.ndarray) -> float:
    """``‖a − b‖ / ‖b‖`` (Frobenius)."""
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))

