r"""A learned stochastic closure from an artifact file, coupled online to the solver.

:class:`ArtifactClosure` follows the paper's online protocol (Dong, Yang & Wu 2026, reference
code): every ``every`` steps it draws a fresh closure sample :math:`H \sim p(H\mid\omega)` for
**each** member, and between samples it perturbs the held sample,

.. math:: H \leftarrow H + \sigma_J\,\eta, \qquad \eta \sim N(0, I)\ \text{(each member, each point)},

with ``jitter`` :math:`\sigma_J` in solver units (1/time²; the paper: ``every = 5``,
:math:`\sigma_J = 5\times 10^{-5}`). Unlike the reference code, members are **never averaged**:
the reference averaged H over the ensemble before broadcasting it back, which removed the
spread the stochastic closure exists to provide.

The held sample lives in spectral space (``spectral = True``: the solver takes
:math:`\hat H = \mathrm{rfft2}(H)` from :meth:`ArtifactClosure.call_hat`). On a resample step the
coarse vorticity is transformed back once (``irfft2`` of the solver's ω̂ in a planned
:class:`kolmo.fft.RealFFT2`), cast into a preallocated network input, the artifact is called once
for all B members (``sample(omega, noise)`` with noise drawn here, ``noise_shape(B)``: an AOTInductor
package, which cannot draw its own, gets the same noise as a TorchScript artifact), and the
fresh sample is transformed forward once into the held spectrum. On the steps in between nothing is
transformed: the jitter is drawn directly in ``rfft2`` space with the law of the transform of the
physical white noise above (:mod:`coupling.spectral_jitter`: per mode complex Gaussian of variance
:math:`\sigma_J^2N^2`, Hermitian on the :math:`k_x = 0` and Nyquist columns, real self-conjugate
modes; equal in distribution to the physical-space jitter, not an approximation) and added in place.
The held spectrum is float64 (before: the held sample accumulated its jitter in the artifact's dtype).
No mode is left out: the solver adds the whole of Ĥ to the step's tendency (its 2/3 mask acts on the
advection only; :mod:`kolmo.stepping`), so every mode of the jitter changes the trajectory.

All randomness comes from two streams of standard normals seeded with ``seed``
(:class:`~coupling.normal_stream.NormalStream`: xoshiro256++ and the ziggurat, compiled, on the host;
about three times faster than torch's generator, and independent of the device): ``"sample noise"``
(the artifact's noise, cast to its dtype, copied to the device) and ``"jitter"``. A seed reproduces
an ensemble exactly (for a given B, device and dtype), and the held spectrum, the counters and both
streams' states are saved for a bit-exact restart. A jitter step is one compiled call
(:func:`~coupling.spectral_jitter.jitter_step_numba`: draws, addition, and the solver's injection
diagnostics of the result, ``fills_injection``), and so is each side of the network call on a resample
(:mod:`coupling.learned_kernels`). Each of these changes gave a seed other trajectories than before it
(the same law; before, one :class:`torch.Generator` drew both).
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
from coupling.learned_kernels import (cast_and_check_numba, held_spectrum_numba, network_input_numba,
                                      scale_cast_numba)
from coupling.normal_stream import NormalStream, fill_standard_normal_numba
from coupling.spectral_jitter import jitter_step_numba, noise_draw_shape
from kolmo.diagnostics import closure_injection_numba
from kolmo.errors import ConfigurationError
from kolmo.fft import RealFFT2
from kolmo.fftw_numba import numba_plans

if TYPE_CHECKING:
    from kolmo.simulation import CoarseState

__all__ = ["ArtifactClosure"]

log = logging.getLogger(__name__)


class _Buffers:
    """Preallocated buffers of one batch size: the planned transform (its ``spec`` **is** the held
    spectrum), the network input and sample noise, and the jitter draws.

    Attributes
    ----------
    fft : RealFFT2
        ``real`` ``(B, N, N)`` float64 (N²ω, then the fresh sample), ``spec`` ``(B, N, N//2+1)``.
    plans : NumbaPlans or None
        FFTW plans on ``fft``'s buffers callable from Numba (:func:`kolmo.fftw_numba.numba_plans`): each
        side of the network call is then one compiled call (:mod:`coupling.learned_kernels`); ``None``
        where there are none (the same steps are made from Python).
    x_host, x_np, x
        Network input ``(B, N, N)`` in the artifact's dtype, written through ``x_np`` (the same
        memory as a NumPy array): on the CPU ``x_host`` itself (``x`` is ``None``), on a GPU
        copied into ``x`` on the device.
    noise_host, noise_flat, noise
        The artifact's sample noise ``noise_shape(B)`` in its dtype, drawn into ``noise_flat`` (a flat
        NumPy view of ``noise_host``); on a GPU copied into ``noise`` (``None`` on the CPU).
    noise_raw, noise_rejected
        The sample-noise stream's scratch (:meth:`~coupling.normal_stream.NormalStream.kernel_args`).
    z, raw, rejected
        Jitter draws ``(B, N, N//2+1, 2)`` float64 (:func:`~coupling.spectral_jitter.noise_draw_shape`)
        and the jitter stream's scratch.
    scale
        ``1/N⁴``, the normalisation of the injection diagnostics.
    """

    def __init__(self, batch: int, n: int, device: torch.device, dtype: torch.dtype, noise_shape: list[int],
                 jitter_stream: NormalStream, noise_stream: NormalStream) -> None:
        self.batch, self.n = int(batch), int(n)
        self.fft = RealFFT2(n, batch)
        self.plans = numba_plans(self.fft)
        self.x_host = torch.empty((batch, n, n), dtype=dtype)
        self.x_np = self.x_host.numpy()  # shares memory with x_host
        self.x = None if device.type == "cpu" else torch.empty((batch, n, n), dtype=dtype, device=device)
        self.noise_host = torch.empty(noise_shape, dtype=dtype)
        self.noise_flat = self.noise_host.numpy().reshape(-1)  # shares memory with noise_host
        self.noise = None if device.type == "cpu" else torch.empty(noise_shape, dtype=dtype, device=device)
        _, self.noise_raw, self.noise_rejected = noise_stream.kernel_args(self.noise_flat.size)
        self.z = np.empty(noise_draw_shape(batch, n))
        _, self.raw, self.rejected = jitter_stream.kernel_args(self.z.size)
        self.scale = 1.0 / float(n) ** 4
        self.unused_injection = np.zeros((2, batch))  # the kernels' argument when no diagnostics are asked for
        self.finite = np.ones(batch, dtype=np.bool_)  # per member: the fresh sample is finite


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
        Seed of the closure's two streams of normals (sample noise and jitter).
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
        casts, the jitter, the transforms on resample steps and the solver's injection diagnostics
        (``kolmo bench coupled`` reports the two apart: network and coupling).
    metadata : dict
        The artifact's metadata.
    """

    resamples = True
    spectral = True  # the solver takes the held spectrum from call_hat (no transform of H between samples)
    fills_injection = True  # call_hat writes <ψH>, <ωH> into state.injection (fused into the jitter step)

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
        self.noise_stream = NormalStream(self.seed, "sample noise")
        self.jitter_stream = NormalStream(self.seed, "jitter")
        self._buffers: _Buffers | None = None
        self._held: np.ndarray | None = None  # the held spectrum: self._buffers.fft.spec while holding
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
    def tendency_hat(self, state: CoarseState) -> np.ndarray:
        """``rfft2(H)`` ``(B, N, N//2+1)``: the held spectrum, freshly sampled every ``every`` steps and
        jittered in between (:mod:`coupling.spectral_jitter`); a view of an internal buffer, valid
        until the next call. No transform of ``H`` is taken on a step without a resample."""
        return self._step_hat(state, None)

    def call_hat(self, state: CoarseState) -> np.ndarray:
        """:meth:`tendency_hat`, counted, and the injection diagnostics of the result written into
        ``state.injection`` when the solver gives one (``fills_injection``). The checks of
        :meth:`Closure.checked_hat` (shape, dtype, the non-finite policy) are made on each fresh sample
        in :meth:`_resample`, where they can fail; the held spectrum stays finite between samples
        (finite values plus finite noise), so it is not scanned again on every step."""
        h_hat = self._step_hat(state, state.injection)
        self.calls += 1
        return h_hat

    def _step_hat(self, state: CoarseState, injection: np.ndarray | None) -> np.ndarray:
        """The held spectrum of this step (resampled or jittered), and ⟨ψH⟩, ⟨ωH⟩ of it into ``injection``
        ``(2, B)`` unless ``None`` (:func:`kolmo.diagnostics.closure_injection_numba`)."""
        b = state.omega_hat.shape[0]
        held = self._held
        if (held is None or held.shape[0] != b or state.step < self._sample_step
                or state.step - self._sample_step >= self.every):
            return self._resample(state, injection)
        if self.jitter > 0:
            buf = self._buffers
            assert buf is not None
            s = self.jitter_stream
            jitter_step_numba(s.state, buf.raw, buf.rejected, buf.z, held, self.jitter,
                              state.omega_hat, state.grid.inv_k2, buf.scale,
                              buf.unused_injection if injection is None else injection, injection is not None)
            self.jitters += 1
            return held
        if injection is not None:
            closure_injection_numba(state.omega_hat, held, state.grid.inv_k2, self._buffers.scale, injection)  # type: ignore[union-attr]
        return held

    def tendency(self, state: CoarseState) -> np.ndarray:
        """``H`` ``(B, N, N)`` in physical space (a new array): ``irfft2`` of :meth:`tendency_hat`.
        Only for hosts that need the physical field (sums of closures); the solver takes the
        spectral path."""
        n = state.grid.n
        return np.fft.irfft2(self.tendency_hat(state), s=(n, n))

    def _noise_shape(self, b: int) -> list[int]:
        if b not in self._noise_shapes:
            self._noise_shapes[b] = [int(s) for s in self.module.noise_shape(b)]
        return self._noise_shapes[b]

    def _buffers_for(self, b: int, n: int) -> _Buffers:
        buf = self._buffers
        if buf is None or buf.batch != b or buf.n != n:
            buf = self._buffers = _Buffers(b, n, self.device, self.torch_dtype, self._noise_shape(b),
                                           self.jitter_stream, self.noise_stream)
        return buf

    def _resample(self, state: CoarseState, injection: np.ndarray | None) -> np.ndarray:
        """A fresh sample for every member, transformed once into the held spectrum (returned), and the
        injection diagnostics of it into ``injection`` unless ``None``.

        ω = irfft2(ω̂) in the preallocated transform buffer, scaled and cast into the preallocated
        network input in one pass; the sample noise is drawn into a preallocated buffer (one compiled
        call with the transform, :func:`~coupling.learned_kernels.network_input_numba`, where the
        transform has Numba-callable plans). The output is checked here (shape, float dtype), cast into
        the transform's real buffer with a finiteness check per member in the same pass and transformed
        forward into the held spectrum (again one compiled call,
        :func:`~coupling.learned_kernels.held_spectrum_numba`); non-finite members get the closure's
        policy, so a zeroed sample, not NaN, is what is held and jittered."""
        omega_hat = state.omega_hat
        b, n = omega_hat.shape[0], state.grid.n
        buf = self._buffers_for(b, n)
        self._held = None  # the transforms below overwrite the held spectrum
        fft, plans, ns = buf.fft, buf.plans, self.noise_stream
        if plans is not None:
            network_input_numba(omega_hat, fft.spec, fft.real, plans.execute, plans.inverse, buf.x_np, ns.state,
                                buf.noise_raw, buf.noise_rejected, buf.noise_flat)
        else:
            fft.spec[...] = omega_hat
            fft.inverse()  # real = N² ω
            scale_cast_numba(fft.real, 1.0 / (n * n), buf.x_np)  # the network input ω, rounded once
            fill_standard_normal_numba(ns.state, buf.noise_raw, buf.noise_rejected, buf.noise_flat)
        x = buf.x_host if buf.x is None else buf.x.copy_(buf.x_host)
        noise = buf.noise_host if buf.noise is None else buf.noise.copy_(buf.noise_host)
        # no inference-mode context: load_artifact turned the parameters' gradients off already
        t0 = _time.perf_counter()
        h = self.module.sample(x, noise)
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        self.model_seconds += _time.perf_counter() - t0
        h_np = self._checked_sample(h, fft.real.shape)
        with_injection = injection is not None
        out = injection if injection is not None else buf.unused_injection
        if plans is None or held_spectrum_numba(h_np, fft.real, buf.finite, plans.execute, plans.forward, fft.spec,
                                                omega_hat, state.grid.inv_k2, buf.scale, out, with_injection):
            if cast_and_check_numba(h_np, fft.real, buf.finite):
                fft.real[self.apply_nonfinite_policy(buf.finite, state)] = 0.0
            fft.forward()
            if with_injection:
                closure_injection_numba(omega_hat, fft.spec, state.grid.inv_k2, buf.scale, out)
        self._sample_step = int(state.step)
        self.samples += 1
        self._held = fft.spec
        return fft.spec

    def _checked_sample(self, h: torch.Tensor, expected: tuple[int, ...]) -> np.ndarray:
        """The fresh sample as a NumPy array (no copy on the CPU) after the checks of
        :meth:`Closure.check_layout`: a real floating dtype, shape ``(B, N, N)`` (probed at load by
        :func:`~coupling.artifact.check_contract`; checked again here because the held spectrum is
        built from it)."""
        try:  # on the CPU and without autograd (load_artifact turned it off): the tensor's own memory
            h_np = h.numpy()
        except (RuntimeError, TypeError):  # on a GPU, or a tensor that requires grad
            h_np = h.detach().cpu().numpy()
        if h_np.dtype.kind != "f" or h_np.shape != expected:  # one test on the path taken (cold after the network)
            self.check_layout(h_np, expected)
        return h_np

    # ------------------------------------------------------------------ restart and description
    def get_state(self) -> dict[str, Any]:
        state = super().get_state()
        state.update(samples=self.samples, jitters=self.jitters, sample_step=self._sample_step,
                     noise_generator=self.noise_stream.get_state(), jitter_generator=self.jitter_stream.get_state(),
                     dtype=self.dtype_name)
        if self._held is not None:
            state["held_hat"] = self._held.copy()
        return state

    def set_state(self, state: dict[str, Any]) -> None:
        """Restore :meth:`get_state`. A restart state written before the held sample was kept in
        spectral space (``held``, physical) is transformed once: the run continues from the same
        held sample, but its later jitter draws differ from those the old code would have made; so
        does one written before the noise and the jitter had their own generators (``noise_generator``,
        ``jitter_generator``; before, one torch generator, ``generator``, now ignored): they then continue
        from the streams of the seed."""
        super().set_state(state)
        stored = state.get("dtype")
        if stored is not None and stored != self.dtype_name:
            raise DtypeError(f"restart state of closure {self.name} was saved with dtype {stored}, but the "
                             f"closure now runs {self.dtype_name}; expected the same dtype for an exact restart")
        self.samples = int(state.get("samples", 0))
        self.jitters = int(state.get("jitters", 0))
        self._sample_step = int(state.get("sample_step", 0))
        if "noise_generator" in state:
            self.noise_stream.set_state(state["noise_generator"])
        if "jitter_generator" in state:
            self.jitter_stream.set_state(state["jitter_generator"])
        held = state.get("held_hat")
        if held is None and "held" in state:
            held = np.fft.rfft2(np.asarray(state["held"], dtype=np.float64))
        self._held = None
        if held is not None:
            held = np.asarray(held)
            b, n = held.shape[0], held.shape[1]
            spec = self._buffers_for(b, n).fft.spec
            spec[...] = held
            self._held = spec

    def describe(self) -> dict[str, Any]:
        out = super().describe()
        out.update(closure_artifact=str(self.path), closure_artifact_metadata=json.dumps(self.metadata, sort_keys=True),
                   closure_device=str(self.device), closure_dtype=self.dtype_name, closure_every=self.every,
                   closure_jitter=self.jitter, closure_seed=self.seed, closure_artifact_calls=self.samples,
                   closure_jitter_updates=self.jitters, closure_model_seconds=self.model_seconds,
                   closure_generator="xoshiro256++ ziggurat (coupling.normal_stream), streams 'sample noise' and 'jitter'")
        return out
