"""The inference form of a trained closure: the same map, with fewer and cheaper operators at batch 1.

A closure artifact runs once per closure call of the solver, at batch 1 to 8 on a CPU, where the
latent generator's spectral convolutions cost far more in operator overhead than in arithmetic: on a
16 × 16 latent, ``rfft2``, the two corner slices and their concatenation, the zero gap and the
``irfft2`` of :class:`closure.fourier_layers.SpectralConv2d` are ten small operators around 2 × 2 m²
complex numbers per channel. :class:`MatrixSpectralConv2d` computes the same truncated transform pair
as two real matrix products,

    â = h F,    F ∈ R^{n² × 2P}   (Re and Im of the P = 2 m² kept modes of rfft2(h)),
    y = ô G,    G ∈ R^{2P × n²}   (irfft2 of the kept modes, the others zero),

around the unchanged per-mode product ``ô_p = â_p R_p``. ``F`` and ``G`` are built by applying
``torch.fft.rfft2`` / ``irfft2`` to unit vectors in float64, so they are these transforms exactly
(``irfft2`` is real-linear in (Re, Im) of its input, including how it treats the kx = 0 column), then
cast to the model's dtype. Numerically the two forms agree to round-off (max |ΔH| ≈ 1e-7 σ_H in
float32).

:func:`inference_form` replaces every spectral convolution whose matrices are small
(``n² · 2P ≤ MATRIX_DFT_MAX_ENTRIES``: the 16² latent generators with 4 modes, 16,384 entries, not the
64² physical FNO with 6 modes, 589,824 entries, where the FFT is cheaper) in a deep copy of a module.
:func:`closure.export.export_model` scripts that copy and checks it against the original eager model.
Training keeps the FFT form.

A flow-matching Euler sampler (:class:`closure.samplers.FlowEuler`: FM, reflow) evaluates its network at
the fixed times ``t_k = k / n_steps`` only, so the FNO's time path — Gaussian-Fourier features, a dense
layer, GELU and one dense shift per Fourier layer, fourteen operators on a few hundred numbers — gives
the same vectors at every call. :class:`TimeGridFlowEuler` evaluates it once, when the inference form
is built and passes the stored shifts ``A_l e(t_k)`` to the network (its ``shifts`` argument).
"""

from __future__ import annotations

import copy
from typing import Callable, Dict, List, Optional, Tuple

import torch
from torch import Tensor, nn

from closure.fourier_layers import SpectralConv2d
from closure.networks import ConditionalFNO
from closure.samplers import FlowEuler

__all__ = ["MATRIX_DFT_MAX_ENTRIES", "MatrixSpectralConv2d", "TimeGridFlowEuler", "inference_form", "spectral_grids"]

MATRIX_DFT_MAX_ENTRIES = 65_536
"""Largest ``n² · 2P`` (entries of each DFT matrix) for which :func:`inference_form` uses matrices.

At 16², 4 modes (16,384 entries) the matrix form takes the shipped one-step closure from 1.47 to
1.02 ms per call on the 2-core CPU of this project (benchmarks/RESULTS.md §5b). The products cost
``2 n² · 2P`` FLOPs per channel against ``2.5 n² log2 n²`` for a real FFT: 6× more at 16² (0.03 against
0.005 MFLOP), and 10× more at 64² with 6 modes (1.2 against 0.12 MFLOP per channel and transform: with
40 channels, eight layers and ten network calls the physical diffusion model would execute 6.8 GFLOP
more per sample, on top of its 2.6), so the threshold keeps the FFT there."""


def _forward_dft(n: int, modes: int) -> Tensor:
    """``F`` (n², 2P), float64: ``h.reshape(n²) @ F = [Re â_0, Im â_0, Re â_1, Im â_1, …]``.

    The kept modes in :class:`SpectralConv2d`'s order: rows ``ky ∈ [0, m)`` then ``ky ∈ [n − m, n)``, each
    with ``kx ∈ [0, m)``.
    """
    m = modes
    unit = torch.eye(n * n, dtype=torch.float64).reshape(n * n, n, n)
    spectrum = torch.fft.rfft2(unit)  # (n², n, n/2 + 1)
    kept = torch.cat([spectrum[:, :m, :m], spectrum[:, n - m:, :m]], dim=1).reshape(n * n, 2 * m * m)
    return torch.view_as_real(kept).reshape(n * n, 4 * m * m)


def _inverse_dft(n: int, modes: int) -> Tensor:
    """``G`` (2P, n²), float64: ``[Re ô_0, Im ô_0, Re ô_1, …] @ G`` = ``irfft2`` of the kept modes ``ô``
    (the others zero)."""
    m = modes
    p = 2 * m * m
    unit = torch.zeros(p, 2, p, dtype=torch.complex128)  # row (mode q, Re/Im) is 1 or i at mode q
    unit[:, 0] = torch.eye(p, dtype=torch.complex128)
    unit[:, 1] = 1j * torch.eye(p, dtype=torch.complex128)
    kept = unit.reshape(2 * p, 2 * m, m)
    full = torch.zeros(2 * p, n, m, dtype=torch.complex128)
    full[:, :m] = kept[:, :m]
    full[:, n - m:] = kept[:, m:]
    return torch.fft.irfft2(full, s=(n, n)).reshape(2 * p, n * n)


def dft_matrices(n: int, modes: int, device: torch.device, dtype: torch.dtype) -> Tuple[Tensor, Tensor]:
    """``(Fᵀ, G)``, shapes (2P, n²) each, built in float64 and cast to ``dtype`` on ``device``."""
    return (_forward_dft(n, modes).t().contiguous().to(device=device, dtype=dtype),
            _inverse_dft(n, modes).to(device=device, dtype=dtype))


class MatrixSpectralConv2d(nn.Module):
    """:class:`SpectralConv2d` on a fixed ``n × n`` grid with its transforms as matrix products.

    ``y = reshape( bmm( reshape(h F), [[Re R, Im R], [−Im R, Re R]] ) ) G``: the truncated ``rfft2`` as
    ``F`` (n², 2P), the per-mode complex product as one batched real product over the P kept modes (the
    block matrix precomputed), the zero-padded ``irfft2`` as ``G`` (2P, n²).

    Parameters
    ----------
    conv : SpectralConv2d
        The trained layer (its weights are copied into the block matrix, in their dtype and device).
    n : int
        Grid size of the fields this layer sees (``2 modes <= n``).
    dft : (Tensor, Tensor), optional
        ``(Fᵀ, G)`` of :func:`dft_matrices` for this ``n``, modes, device and dtype, to share between
        layers (the file then stores them once); built here if absent.

    Attributes
    ----------
    weight_real, weight_imag : Tensor, shape (P, in, out)
        The trained ``Re R``, ``Im R`` (kept under the names of :class:`SpectralConv2d`, so that the
        eager model can be rebuilt from a state dict; the forward pass reads ``block``).
    forward_dft_t : Tensor, shape (2P, n²)
        ``Fᵀ``.
    block : Tensor, shape (P, 2 in, 2 out)
    inverse_dft : Tensor, shape (2P, n²)
    """

    def __init__(self, conv: SpectralConv2d, n: int, dft: Optional[Tuple[Tensor, Tensor]] = None) -> None:
        super().__init__()
        m = conv.modes
        if 2 * m > n:
            raise ValueError(f"a spectral convolution with {m} modes needs a grid of at least {2 * m}, got {n}")
        self.n = int(n)
        self.kept = 2 * m * m
        self.in_channels = conv.in_channels
        self.out_channels = conv.out_channels
        weight = conv.weight_real.detach()
        w_re, w_im = weight, conv.weight_imag.detach()
        block = torch.cat([torch.cat([w_re, w_im], dim=2), torch.cat([-w_im, w_re], dim=2)], dim=1)
        self.register_buffer("weight_real", w_re.clone())  # the trained weights, under their trained names
        self.register_buffer("weight_imag", w_im.clone())
        if dft is None:
            dft = dft_matrices(n, m, weight.device, weight.dtype)
        self.register_buffer("forward_dft_t", dft[0])
        self.register_buffer("block", block.clone())
        self.register_buffer("inverse_dft", dft[1])

    def forward(self, h: Tensor) -> Tensor:
        """Apply to ``h`` of shape ``(B, in, n, n)``; returns ``(B, out, n, n)``."""
        batch = h.shape[0]
        if h.dim() != 4 or h.shape[1] != self.in_channels or h.shape[2] != self.n or h.shape[3] != self.n:
            raise ValueError("MatrixSpectralConv2d expects (B, " + str(self.in_channels) + ", " + str(self.n)
                             + ", " + str(self.n) + "), got " + str(list(h.shape)))
        p = self.kept
        # â (B, 2P, in), rows (mode, Re/Im): F^T (2P, n²) @ h^T (B, n², in), the transpose a view
        a = torch.matmul(self.forward_dft_t, h.reshape(batch, self.in_channels, self.n * self.n).transpose(1, 2))
        a = a.reshape(batch, p, 2 * self.in_channels).transpose(0, 1)  # (P, B, 2 in): a view at B = 1
        out = torch.bmm(a, self.block)  # (P, B, 2 out) = [Re, Im]
        out = out.transpose(0, 1).reshape(batch, 2 * p, self.out_channels)  # rows (mode, Re/Im)
        y = torch.matmul(out.transpose(1, 2), self.inverse_dft)  # (B, out, n²)
        return y.reshape(batch, self.out_channels, self.n, self.n)


def spectral_grids(module: nn.Module, run: Callable[[], object]) -> Dict[str, int]:
    """The grid size each :class:`SpectralConv2d` of ``module`` sees: qualified name → ``n``.

    Found from the inputs of one call ``run()`` (forward hooks; raises ``ValueError`` for a layer that
    sees a non-square grid or two different grids).
    """
    seen: Dict[str, List[int]] = {}
    handles = []
    for name, sub in module.named_modules():
        if isinstance(sub, SpectralConv2d):
            def hook(m: nn.Module, args: tuple, out: Tensor, name: str = name) -> None:
                shape = args[0].shape
                if shape[-1] != shape[-2]:
                    raise ValueError(f"spectral convolution {name} sees a non-square grid {tuple(shape)}")
                seen.setdefault(name, []).append(int(shape[-1]))
            handles.append(sub.register_forward_hook(hook))
    try:
        with torch.no_grad():
            run()
    finally:
        for handle in handles:
            handle.remove()
    grids = {}
    for name, sizes in seen.items():
        if len(set(sizes)) != 1:
            raise ValueError(f"spectral convolution {name} sees several grids {sorted(set(sizes))}")
        grids[name] = sizes[0]
    return grids


class TimeGridFlowEuler(FlowEuler):
    """:class:`FlowEuler` whose network's time path is evaluated once, for the sampler's fixed times.

    ``x_{k+1} = x_k + Δt v(t_k, x_k, c)``, the same scheme, with the x-branch shifts
    :meth:`ConditionalFNO.layer_shifts` of every ``t_k`` stored (``shifts``, shape (K, L, 1, width)) and
    passed to the network, which then skips its time path. The network itself is the sampler's (shared).

    Parameters
    ----------
    sampler : FlowEuler
        A flow-matching Euler sampler whose network is a one-time :class:`ConditionalFNO`.
    """

    def __init__(self, sampler: FlowEuler) -> None:
        net = sampler.network
        if not isinstance(net, ConditionalFNO) or net.two_times:
            raise ValueError("TimeGridFlowEuler takes a sampler over a one-time ConditionalFNO, got "
                             + type(net).__name__ + (" with two times" if getattr(net, "two_times", False) else ""))
        super().__init__(net, sampler.n_steps)
        self.times = sampler.times.detach().clone()
        dtype = net.lift_x.weight.dtype
        with torch.no_grad():
            shifts = torch.stack([net.layer_shifts(self.times[k:k + 1], 1, dtype) for k in range(self.n_steps)])
        self.register_buffer("shifts", shifts)

    def _run(self, x_init: Tensor, c: Tensor, step_noise: Optional[Tensor], keep: bool) -> Tuple[Tensor, List[Tensor]]:
        x = x_init
        states: List[Tensor] = [x] if keep else []
        batch = x.shape[0]
        times = self.times.to(x.dtype)
        for k in range(self.n_steps):
            dt = times[k + 1] - times[k]
            x = x + dt * self.network(times[k].expand(batch), x, c, None, self.shifts[k])
            if keep:
                states.append(x)
        return x, states


def _time_grid_sampler(module: nn.Module) -> bool:
    """Whether ``module`` is a plain :class:`FlowEuler` over a one-time :class:`ConditionalFNO`."""
    return type(module) is FlowEuler and isinstance(module.network, ConditionalFNO) and not module.network.two_times


def inference_form(module: nn.Module, grids: Dict[str, int], matrix_dft: bool = True,
                   time_grid: bool = True) -> nn.Module:
    """A deep copy of ``module`` with each small :class:`SpectralConv2d` as a :class:`MatrixSpectralConv2d`
    and each flow-matching Euler sampler over a conditional FNO as a :class:`TimeGridFlowEuler`.

    Parameters
    ----------
    module : nn.Module
        Trained module (not modified).
    grids : dict
        Grid size per spectral convolution, from :func:`spectral_grids` on ``module``.
    matrix_dft, time_grid : bool
        Whether to make each of the two replacements (both by default; one alone for ablations).

    Returns
    -------
    nn.Module
        The copy, in eval mode; layers with ``n² · 2P > MATRIX_DFT_MAX_ENTRIES`` keep the FFT; other
        samplers (interpolants, VE-SDE, MeanFlow jumps) keep their networks' time paths.
    """
    fast = copy.deepcopy(module).eval()
    shared: Dict[Tuple[int, int, torch.device, torch.dtype], Tuple[Tensor, Tensor]] = {}
    for name, n in grids.items():
        parent_name, _, child_name = name.rpartition(".")
        parent = fast.get_submodule(parent_name) if parent_name else fast
        conv = getattr(parent, child_name)
        if not isinstance(conv, SpectralConv2d):
            raise ValueError(f"{name} is not a SpectralConv2d in the copy")
        if matrix_dft and n * n * 4 * conv.modes * conv.modes <= MATRIX_DFT_MAX_ENTRIES:
            w = conv.weight_real
            key = (n, conv.modes, w.device, w.dtype)
            if key not in shared:
                shared[key] = dft_matrices(n, conv.modes, w.device, w.dtype)
            setattr(parent, child_name, MatrixSpectralConv2d(conv, n, shared[key]))
    replaced: Dict[int, TimeGridFlowEuler] = {}  # one replacement per sampler, however many attributes hold it
    for parent in list(fast.modules()):
        for child_name, child in list(parent._modules.items()):  # every name, also a second name of one child
            if time_grid and child is not None and _time_grid_sampler(child):
                if id(child) not in replaced:
                    replaced[id(child)] = TimeGridFlowEuler(child)
                setattr(parent, child_name, replaced[id(child)])
    return fast
