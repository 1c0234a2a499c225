"""Conditional vector-field networks: velocity (FM, SI drift) or score (VE-SDE) models.

Every network here has one interface, the one every path and sampler in :mod:`closure` expects::

    forward(t: Tensor (B,), x_t: Tensor (B, C, n, n), c: Tensor (B, Cc, m, m)) -> Tensor (B, C, n, n)

``t`` is the path time (dimensionless, in [0, 1]), ``x_t`` the state on the path (the closure target H, or
its latent), ``c`` the condition (coarse vorticity ω, or its latent). The output has the units of
``x_t`` per unit path time (a velocity) or of 1 / ``x_t`` (a score): which one is fixed by the path, not the
network (see :mod:`closure.paths`).

Networks
--------
- :class:`ConditionalFNO` — the reference two-branch conditional Fourier neural operator (SCIENCE.md §3):
  an x-branch (``x_t`` lifted by a 1×1 conv, a Gaussian-Fourier embedding of ``t`` added before every
  Fourier layer) and a c-branch (``c`` lifted), each with 4 Fourier layers, fused by 1×1 convs and
  projected to ``C`` channels. Presets :meth:`FNOConfig.physical` (modes 6, width 40, 64² fields) and
  :meth:`FNOConfig.latent` (modes 4, width 20, 16² latents). Its Fourier building blocks live in
  :mod:`closure.fourier_layers`.
- :class:`ConditionalMLP` — a small fully connected field on flattened tensors for low-dimensional
  problems (tests, toy models), with the same interface.

Cost accounting
---------------
:func:`count_parameters` counts trainable parameters; :func:`count_flops` counts floating-point operations
per forward call from the shapes a forward pass produces (2 × multiply-adds of every ``Conv2d`` and
``Linear``; spectral multiplies and FFTs of every :class:`SpectralConv2d`, an FFT of ``N`` complex points
counted as ``5 N log2 N`` and a real-input / real-output transform as half of that).
:meth:`ConditionalFNO.flops_per_sample` gives the same number in closed form.
"""

import math
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from closure.fourier_layers import FourierLayer, GaussianFourierEmbedding, SpectralConv2d, TimeShiftedFourierLayer, \
    fft_flops

__all__ = [
    "FNOConfig",
    "GaussianFourierEmbedding",
    "SpectralConv2d",
    "ConditionalFNO",
    "ConditionalMLP",
    "count_parameters",
    "count_flops",
    "fft_flops",
]


@dataclass(frozen=True)
class FNOConfig:
    """Hyper-parameters of :class:`ConditionalFNO`.

    Attributes
    ----------
    channels : int
        Channels ``C`` of the state ``x_t`` (and of the output).
    cond_channels : int
        Channels ``Cc`` of the condition ``c``.
    modes : int
        Fourier modes kept per dimension in every spectral convolution.
    width : int
        Channels of the hidden fields of both branches.
    n_layers : int
        Fourier layers per branch (4 in the reference).
    time_embedding_dim : int
        Dimension of the Gaussian-Fourier time embedding.
    time_scale : float
        Standard deviation of the embedding frequencies (30 in the reference).
    projection_width : int
        Hidden channels of the final 1×1 projection (128 in the reference FNO).
    two_times : bool
        Whether the network also takes the end time ``t_end`` of a jump (average-velocity models,
        :class:`closure.paths.MeanFlow`): the time embedding becomes ``e(t) + e'(t_end − t)``.
    """

    channels: int = 1
    cond_channels: int = 1
    modes: int = 6
    width: int = 40
    n_layers: int = 4
    time_embedding_dim: int = 64
    time_scale: float = 30.0
    projection_width: int = 128
    two_times: bool = False

    @classmethod
    def physical(cls, channels: int = 1, cond_channels: int = 1) -> "FNOConfig":
        """Reference preset on physical 64² fields: modes 6, width 40 *(code)*."""
        return cls(channels=channels, cond_channels=cond_channels, modes=6, width=40)

    @classmethod
    def latent(cls, channels: int = 1, cond_channels: int = 1) -> "FNOConfig":
        """Reference preset on 1×16×16 latents: modes 4, width 20 *(code)*."""
        return cls(channels=channels, cond_channels=cond_channels, modes=4, width=20)


def _match_grid(c: Tensor, n: int) -> Tensor:
    """Bring a condition ``c`` of shape ``(B, Cc, m, m)`` onto the ``n × n`` grid of the state.

    ``m == n``: unchanged. ``m`` a multiple of ``n``: block average over ``(m/n) × (m/n)`` cells (the
    coarse-graining a finite-volume cell average would do). ``n`` a multiple of ``m``: nearest-neighbour
    repetition (piecewise-constant refinement). Any other ratio raises ``ValueError``.
    """
    m = c.shape[-1]
    if c.shape[-2] != m:
        raise ValueError("condition must be square, got " + str(c.shape[-2]) + "x" + str(m))
    if m == n:
        return c
    if m % n == 0:
        return F.avg_pool2d(c, kernel_size=m // n)
    if n % m == 0:
        r = n // m
        return c.repeat_interleave(r, dim=-2).repeat_interleave(r, dim=-1)
    raise ValueError(
        "condition grid " + str(m) + "x" + str(m) + " is not an integer multiple or divisor of the state grid "
        + str(n) + "x" + str(n)
    )


class ConditionalFNO(nn.Module):
    """Two-branch conditional Fourier neural operator ``v(t, x_t, c)`` (reference architecture).

    x-branch: ``h = P_x x_t``, then ``n_layers`` layers ``h ← GELU(K h + W h + A_l e(t))`` where
    ``e(t) = GELU(Linear(GaussianFourier(t)))``.
    c-branch: ``g = P_c c̃``, then ``n_layers`` layers ``g ← GELU(K g + W g)``, where ``c̃`` is ``c``
    brought to the state grid by :func:`_match_grid` (block average when the condition is finer, e.g.
    64² ω with a 16² latent; nearest repetition when it is coarser).
    Fusion: ``v = Q_2 GELU(Q_1 GELU(F [h, g]))`` with 1×1 convolutions ``F: 2w → w``,
    ``Q_1: w → projection_width``, ``Q_2: projection_width → C``. The last Fourier layer of each branch has
    no activation (Li et al. 2021).

    The operator is translation-equivariant on the periodic grid (no coordinate channels): shifting
    ``x_t`` and ``c`` by whole cells shifts the output. This is the symmetry of the closure term
    ``H(ω)`` itself.

    Parameters
    ----------
    config : FNOConfig
        Hyper-parameters; see :meth:`FNOConfig.physical` and :meth:`FNOConfig.latent`.
    """

    def __init__(self, config: FNOConfig) -> None:
        super().__init__()
        if config.n_layers < 1:
            raise ValueError(f"n_layers must be >= 1, got {config.n_layers}")
        self.config = config
        w = config.width
        e = config.time_embedding_dim
        self.channels = config.channels
        self.cond_channels = config.cond_channels
        self.time_embedding = GaussianFourierEmbedding(e, config.time_scale)
        self.time_dense = nn.Linear(e, e)
        self.two_times = bool(config.two_times)
        self.interval_embedding = GaussianFourierEmbedding(e, config.time_scale) if config.two_times else nn.Identity()
        self.interval_dense = nn.Linear(e, e) if config.two_times else nn.Identity()
        self.lift_x = nn.Conv2d(config.channels, w, kernel_size=1)
        self.lift_c = nn.Conv2d(config.cond_channels, w, kernel_size=1)
        last = config.n_layers - 1
        self.x_layers = nn.ModuleList(
            [TimeShiftedFourierLayer(w, config.modes, e, activation=(i < last)) for i in range(config.n_layers)]
        )
        self.c_layers = nn.ModuleList(
            [FourierLayer(w, config.modes, activation=(i < last)) for i in range(config.n_layers)]
        )
        self.fuse = nn.Conv2d(2 * w, w, kernel_size=1)
        self.project_hidden = nn.Conv2d(w, config.projection_width, kernel_size=1)
        self.project_out = nn.Conv2d(config.projection_width, config.channels, kernel_size=1)

    def forward(self, t: Tensor, x_t: Tensor, c: Tensor, t_end: Optional[Tensor] = None,
                shifts: Optional[Tensor] = None) -> Tensor:
        """Evaluate the field.

        Parameters
        ----------
        t : Tensor, shape (B,) or ()
            Path time (for ``two_times`` networks: the start ``r`` of the jump).
        x_t : Tensor, shape (B, C, n, n)
            State.
        c : Tensor, shape (B, Cc, m, m)
            Condition; ``m`` a multiple or divisor of ``n``.
        t_end : Tensor, shape (B,) or (), optional
            End time of the jump (``two_times`` networks only; required there).
        shifts : Tensor, shape (L, B, width) or (L, 1, width), optional
            :meth:`layer_shifts` of ``t`` (and ``t_end``), already computed (a sampler with fixed times
            computes them once: :class:`closure.inference.TimeGridFlowEuler`); ``t`` is then not read.

        Returns
        -------
        Tensor, shape (B, C, n, n)
        """
        if x_t.dim() != 4 or x_t.shape[1] != self.channels:
            raise ValueError(
                "x_t must have shape (B, " + str(self.channels) + ", n, n), got " + str(list(x_t.shape))
            )
        if c.dim() != 4 or c.shape[1] != self.cond_channels or c.shape[0] != x_t.shape[0]:
            raise ValueError(
                "c must have shape (" + str(x_t.shape[0]) + ", " + str(self.cond_channels)
                + ", m, m), got " + str(list(c.shape))
            )
        if shifts is None:
            shifts = self.layer_shifts(t, x_t.shape[0], x_t.dtype, t_end)
        h = self.lift_x(x_t)
        for i, layer in enumerate(self.x_layers):
            h = layer.shifted(h, shifts[i])
        g = self.lift_c(_match_grid(c, x_t.shape[-1]))
        for layer in self.c_layers:
            g = layer(g)
        v = F.gelu(self.fuse(torch.cat([h, g], dim=1)))
        v = F.gelu(self.project_hidden(v))
        return self.project_out(v)

    def layer_shifts(self, t: Tensor, batch: int, dtype: torch.dtype, t_end: Optional[Tensor] = None) -> Tensor:
        """The time path: the shifts ``A_l GELU(D e(t))`` of the x-branch's Fourier layers, ``(L, B, width)``.

        ``e(t)`` is the Gaussian-Fourier embedding (plus ``e'(t_end − t)`` for ``two_times`` networks), in
        ``dtype``; ``t`` of shape ``(B,)`` or ``()`` (expanded to ``batch``).
        """
        if t.dim() == 0:
            t = t.expand(batch)
        a = self.time_dense(self.time_embedding(t.to(dtype)))
        if self.two_times:
            if t_end is None:
                raise ValueError("this network takes the end time of the jump: call it with t_end")
            d = (t_end.to(dtype) - t.to(dtype)).expand(batch)
            a = a + self.interval_dense(self.interval_embedding(d))
        e = F.gelu(a)
        return torch.stack([layer.shift(e) for layer in self.x_layers])

    def flops_per_sample(self, n: int, n_cond: Optional[int] = None) -> float:
        """Closed-form FLOPs of one forward call per sample on an ``n × n`` state grid.

        Counts 2 × multiply-adds of every 1×1 convolution and linear layer, the spectral multiplies
        (8 real FLOPs per complex multiply-add on ``2 · modes²`` modes) and the FFTs (``rfft2`` of every
        input channel and ``irfft2`` of every output channel, ``2.5 N log2 N`` each with ``N = n²``);
        activations, additions and the condition pooling are not counted (each is ``O(w n²)``, < 1 %).

        Parameters
        ----------
        n : int
            State grid size.
        n_cond : int, optional
            Condition grid size (unused: the c-branch runs on the state grid after pooling).
        """
        cfg = self.config
        w, e, L = cfg.width, cfg.time_embedding_dim, cfg.n_layers
        pixels = n * n
        per_layer_spectral = 2 * w * fft_flops(pixels, real=True) + 8.0 * w * w * 2 * cfg.modes**2
        per_layer_pointwise = 2.0 * w * w * pixels
        fourier = 2 * L * (per_layer_spectral + per_layer_pointwise)
        lifting = 2.0 * (cfg.channels + cfg.cond_channels) * w * pixels
        time = 2.0 * e * e * (2 if cfg.two_times else 1) + L * 2.0 * e * w
        fusion = 2.0 * (2 * w * w + w * cfg.projection_width + cfg.projection_width * cfg.channels) * pixels
        return fourier + lifting + time + fusion


class ConditionalMLP(nn.Module):
    """Fully connected field ``v(t, x_t, c)`` on flattened tensors, for low-dimensional problems.

    ``v = MLP([x_t.flatten(), c.flatten(), t, GaussianFourier(t)])`` reshaped to ``x_t``'s shape, with
    ``depth`` hidden layers of ``hidden`` units and SiLU activations.

    Parameters
    ----------
    state_shape : tuple of int
        ``(C, n, n)`` of ``x_t``.
    cond_shape : tuple of int
        ``(Cc, m, m)`` of ``c``.
    hidden : int
        Hidden units per layer.
    depth : int
        Number of hidden layers.
    time_embedding_dim : int
        Gaussian-Fourier features of ``t`` (``t`` itself is always appended).
    time_scale : float
        Standard deviation of the embedding frequencies.
    two_times : bool
        Also take the end time ``t_end`` of a jump (features ``t_end − t`` and its embedding).
    """

    def __init__(
        self,
        state_shape: Tuple[int, int, int],
        cond_shape: Tuple[int, int, int],
        hidden: int = 64,
        depth: int = 3,
        time_embedding_dim: int = 16,
        time_scale: float = 1.0,
        two_times: bool = False,
    ) -> None:
        super().__init__()
        if depth < 1:
            raise ValueError(f"depth must be >= 1, got {depth}")
        self.state_shape = list(state_shape)
        self.cond_shape = list(cond_shape)
        d_x = int(math.prod(state_shape))
        d_c = int(math.prod(cond_shape))
        self.time_embedding = GaussianFourierEmbedding(time_embedding_dim, time_scale)
        self.two_times = bool(two_times)
        d_t = (1 + time_embedding_dim) * (2 if two_times else 1)
        layers: List[nn.Module] = [nn.Linear(d_x + d_c + d_t, hidden), nn.SiLU()]
        for _ in range(depth - 1):
            layers += [nn.Linear(hidden, hidden), nn.SiLU()]
        layers.append(nn.Linear(hidden, d_x))
        self.net = nn.Sequential(*layers)

    def forward(self, t: Tensor, x_t: Tensor, c: Tensor, t_end: Optional[Tensor] = None) -> Tensor:
        """Evaluate on ``t (B,)``, ``x_t (B, C, n, n)``, ``c (B, Cc, m, m)`` (and ``t_end (B,)`` for
        ``two_times``); returns ``(B, C, n, n)``."""
        if list(x_t.shape[1:]) != self.state_shape:
            raise ValueError(
                "x_t must have shape (B, " + str(self.state_shape) + "), got " + str(list(x_t.shape))
            )
        if list(c.shape[1:]) != self.cond_shape:
            raise ValueError("c must have shape (B, " + str(self.cond_shape) + "), got " + str(list(c.shape)))
        batch = x_t.shape[0]
        if t.dim() == 0:
            t = t.expand(batch)
        t = t.to(x_t.dtype)
        parts = [x_t.reshape(batch, -1), c.reshape(batch, -1), t[:, None], self.time_embedding(t)]
        if self.two_times:
            if t_end is None:
                raise ValueError("this network takes the end time of the jump: call it with t_end")
            d = (t_end.to(x_t.dtype) - t).expand(batch)
            parts += [d[:, None], self.time_embedding(d)]
        return self.net(torch.cat(parts, dim=1)).reshape(x_t.shape)


def count_parameters(module: nn.Module, trainable_only: bool = True) -> int:
    """Number of (trainable) scalar parameters of ``module``."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)


def count_flops(module: nn.Module, *inputs: Tensor) -> float:
    """FLOPs per sample of ``module(*inputs)``, counted from the shapes of one forward pass.

    Counted: ``Conv2d`` (``2 · C_in/groups · k_h k_w · C_out`` per output pixel), ``ConvTranspose2d``
    (``2 · C_in · k_h k_w · C_out/groups`` per input pixel), ``Linear`` (``2 · in · out`` per row) and
    :class:`SpectralConv2d` (:meth:`SpectralConv2d.flops`). Not counted: activations, normalisation,
    elementwise additions, pooling, reshapes, parameter-free FFTs outside a ``SpectralConv2d``.

    Parameters
    ----------
    module : nn.Module
        An eager (not scripted) module.
    *inputs : Tensor
        Example inputs; the count is divided by the batch size of the first one.

    Returns
    -------
    float
        FLOPs per sample.
    """
    total: List[float] = [0.0]

    def conv_hook(m: nn.Module, args: Tuple[Tensor, ...], out: Tensor) -> None:
        assert isinstance(m, nn.Conv2d)
        kh, kw = m.kernel_size
        total[0] += 2.0 * (m.in_channels // m.groups) * kh * kw * out.numel()

    def conv_transpose_hook(m: nn.Module, args: Tuple[Tensor, ...], out: Tensor) -> None:
        assert isinstance(m, nn.ConvTranspose2d)
        kh, kw = m.kernel_size
        x = args[0]
        total[0] += 2.0 * (m.out_channels // m.groups) * kh * kw * x.numel()

    def linear_hook(m: nn.Module, args: Tuple[Tensor, ...], out: Tensor) -> None:
        assert isinstance(m, nn.Linear)
        total[0] += 2.0 * m.in_features * out.numel()

    def spectral_hook(m: nn.Module, args: Tuple[Tensor, ...], out: Tensor) -> None:
        assert isinstance(m, SpectralConv2d)
        x = args[0]
        total[0] += x.shape[0] * m.flops(x.shape[-2], x.shape[-1])

    hooks_by_type: Dict[type, Callable[..., None]] = {
        nn.Conv2d: conv_hook,
        nn.ConvTranspose2d: conv_transpose_hook,
        nn.Linear: linear_hook,
        SpectralConv2d: spectral_hook,
    }
    handles = []
    for sub in module.modules():
        hook = hooks_by_type.get(type(sub))
        if hook is not None:
            handles.append(sub.register_forward_hook(hook))
    try:
        with torch.no_grad():
            module(*inputs)
    finally:
        for handle in handles:
            handle.remove()
    batch = inputs[0].shape[0] if inputs else 1
    return total[0] / batch
