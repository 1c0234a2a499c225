r"""A learned stochastic closure from an artifact file, coupled online to the solver.

:class:`ArtifactClosure` follows the paper's online protocol (Dong, Yang & Wu 2026, reference
code): every ``every`` steps it draws a fresh closure sample :math:`H \sim p(H\mid\omega)` for
**each** member, and between samples it perturbs the held sample,

.. math:: H \leftarrow H + \sigma_J\,\eta, \qquad \eta \sim N(0, I)\ \text{(each member, each point)},

with ``jitter`` :math:`\sigma_J` in solver units (1/time²; the paper: ``every = 5``,
:math:`\sigma_J = 5\times 10^{-5}`). Unlike the reference code, members are **never averaged**:
the reference averaged H over the ensemble before broadcasting it back, which removed the
spread the stochastic closure exists to provide.

Per step it converts the coarse vorticity ``(B, N, N)`` once to a torch tensor on the chosen
device and dtype, calls the artifact once for all B members (``sample(omega, noise)`` with
noise drawn here, ``noise_shape(B)``: an AOTInductor package, which cannot draw its own, gets the
same noise as a TorchScript artifact), and returns float64 numpy. All randomness (sample noise
and jitter) comes from one :class:`torch.Generator` on the device seeded with ``seed``, so a
seed reproduces an ensemble exactly (for a given B, device and dtype), and the held sample, the
counters and the generator state are saved for a bit-exact restart.
"""

from __future__ import annotations

import json
import logging
import math
import time as _time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from coupling.artifact import load_artifact
from coupling.errors import DtypeError
from coupling.protocol import Closure
from kolmo.errors import ConfigurationError

if TYPE_CHECKING:
    from kolmo.simulation import CoarseState

__all__ = ["ArtifactClosure"]

log = logging.getLogger(__name__)


class ArtifactClosure(Closure):
    """The closure of an artifact, TorchScript ``.pt`` or AOTInductor ``.pt2`` (see :mod:`coupling.artifact`
    for the contract; both are read by :func:`~coupling.artifact.load_artifact` and called the same way).

    Parameters
    ----------
    path
        Artifact file.
    device
        ``"cpu"``, ``"cuda"`` or ``"cuda:K"`` (:class:`~coupling.errors.DeviceError` if absent).
    dtype
        ``"float32"`` (default) or ``"float64"``: the dtype the artifact runs in.
    every
        Resample every ``every`` steps (counted from the step of the last sample).
    jitter
        Standard deviation of the per-step perturbation of the held sample between resamples
        (solver units); 0 holds the sample unchanged.
    seed
        Seed of the closure's generator.
    nonfinite
        ``"raise"`` or ``"zero"`` (zero the affected members' samples and count them).
    probe
        Probe the contract once at load (default ``True``).
    threads
        If given, ``torch.set_num_threads(threads)`` (process-wide) for CPU inference; torch's
        default (all cores) is slow when the cores are shared with the solver or other jobs.

    Attributes
    ----------
    samples, jitters : int
        Artifact calls (resamples) and jitter updates so far (restored on restart).
    model_seconds : float
        Wall time inside the network calls (this process): the inference share of the solver's
        closure time (:attr:`kolmo.simulation.Simulation.closure_seconds`), which also holds the
        transfers, the jitter and the transforms of H.
    metadata : dict
        The artifact's metadata.
    """

    resamples = True

    def __init__(self, path: str | Path, device: str = "cpu", dtype: str = "float32", every: int = 1,
                 jitter: float = 0.0, seed: int = 0, nonfinite: str = "raise", probe: bool = True,
                 threads: int | None = None) -> None:
        super().__init__(nonfinite=nonfinite)
        if threads is not None:
            if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
                raise ConfigurationError(f"closure threads = {threads!r}, expected an integer >= 1")
            torch.set_num_threads(threads)
        if isinstance(every, bool) or not isinstance(every, (int, np.integer)) or every < 1:
            raise ConfigurationError(f"closure resampling interval every = {every!r}, expected an integer >= 1")
        if not (isinstance(jitter, (int, float)) and math.isfinite(jitter) and jitter >= 0):
            raise ConfigurationError(f"closure jitter = {jitter!r}, expected a finite number >= 0")
        self.artifact = load_artifact(path, device, dtype, probe=probe)
        meta = self.metadata = self.artifact.metadata
        self.module = self.artifact.module
        self.device, self.torch_dtype = self.artifact.device, self.artifact.dtype
        self.path = Path(path)
        self.name = f"artifact:{self.path.name}"
        self.target = str(meta["target"])
        self.grid_n = int(meta["grid"])
        self.grid_L = float(meta["L"])
        self.preset = str(meta["preset"])
        self.dt = float(meta["dt"])
        self.every, self.jitter, self.seed = int(every), float(jitter), int(seed)
        self.generator = torch.Generator(device=self.device)
        self.generator.manual_seed(self.seed)
        self._held: torch.Tensor | None = None
        self._sample_step = 0
        self._noise_shapes: dict[int, list[int]] = {}
        self.samples = 0
        self.jitters = 0
        self.model_seconds = 0.0
        log.info("closure %s: device %s, dtype %s, every %d, jitter %g, seed %d", self.name, self.device,
                 self.torch_dtype, self.every, self.jitter, self.seed)

    @property
    def dtype_name(self) -> str:
        return str(self.torch_dtype).replace("torch.", "")

    # ------------------------------------------------------------------ the step
    def tendency(self, state: CoarseState) -> np.ndarray:
        omega = np.asarray(state.omega)
        b = omega.shape[0]
        with torch.inference_mode():
            held = self._held
            if (held is None or held.shape[0] != b or state.step < self._sample_step
                    or state.step - self._sample_step >= self.every):
                self._held = self._resample(omega, state)
            elif self.jitter > 0:
                eta = torch.randn(held.shape, generator=self.generator, device=self.device, dtype=self.torch_dtype)
                self._held = held + self.jitter * eta
                self.jitters += 1
            return self._held.to(device="cpu", dtype=torch.float64, copy=True).numpy()

    def _noise_shape(self, b: int) -> list[int]:
        if b not in self._noise_shapes:
            self._noise_shapes[b] = [int(s) for s in self.module.noise_shape(b)]
        return self._noise_shapes[b]

    def _resample(self, omega: np.ndarray, state: CoarseState) -> torch.Tensor:
        """A fresh sample for every member; non-finite members get the closure's policy here, so a
        zeroed sample (not NaN) is what is held and jittered. Its shape and dtype were probed at
        load (:func:`~coupling.artifact.check_contract`) and are checked on every call by
        :meth:`Closure.checked`."""
        b = omega.shape[0]
        x = torch.from_numpy(np.ascontiguousarray(omega)).to(device=self.device, dtype=self.torch_dtype)
        noise = torch.randn(self._noise_shape(b), generator=self.generator, device=self.device,
                            dtype=self.torch_dtype)
        t0 = _time.perf_counter()
        h = self.module.sample(x, noise)
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        self.model_seconds += _time.perf_counter() - t0
        finite = torch.isfinite(h).flatten(1).all(dim=1)
        if self.apply_nonfinite_policy(finite.cpu().numpy(), state).size:
            h = torch.where(finite[:, None, None], h, torch.zeros((), dtype=h.dtype, device=h.device))
        self._sample_step = int(state.step)
        self.samples += 1
        return h

    # ------------------------------------------------------------------ restart and description
    def get_state(self) -> dict[str, Any]:
        state = super().get_state()
        state.update(samples=self.samples, jitters=self.jitters, sample_step=self._sample_step,
                     generator=self.generator.get_state().cpu().numpy().copy(), dtype=self.dtype_name)
        if self._held is not None:
            state["held"] = self._held.detach().cpu().numpy().copy()
        return state

    def set_state(self, state: dict[str, Any]) -> None:
        super().set_state(state)
        stored = state.get("dtype")
        if stored is not None and stored != self.dtype_name:
            raise DtypeError(f"restart state of closure {self.name} was saved with dtype {stored}, but the "
                             f"closure now runs {self.dtype_name}; expected the same dtype for an exact restart")
        self.samples = int(state.get("samples", 0))
        self.jitters = int(state.get("jitters", 0))
        self._sample_step = int(state.get("sample_step", 0))
        if "generator" in state:
            self.generator.set_state(torch.from_numpy(np.asarray(state["generator"], dtype=np.uint8).copy()))
        if "held" in state:
            self._held = torch.from_numpy(np.asarray(state["held"]).copy()).to(self.device, self.torch_dtype)
        else:
            self._held = None

    def describe(self) -> dict[str, Any]:
        out = super().describe()
        out.update(closure_artifact=str(self.path), closure_artifact_metadata=json.dumps(self.metadata, sort_keys=True),
                   closure_device=str(self.device), closure_dtype=self.dtype_name, closure_every=self.every,
                   closure_jitter=self.jitter, closure_seed=self.seed, closure_artifact_calls=self.samples,
                   closure_jitter_updates=self.jitters, closure_model_seconds=self.model_seconds)
        return out
