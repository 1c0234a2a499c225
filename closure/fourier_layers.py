"""The Fourier building blocks of the conditional FNO (:mod:`closure.networks`): the Gaussian-Fourier time
embedding, the spectral convolution, the (time-shifted) Fourier layer, and the FFT cost estimate
:func:`fft_flops` their FLOP counts use."""

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["fft_flops", "GaussianFourierEmbedding", "SpectralConv2d", "FourierLayer", "TimeShiftedFourierLayer"]


def fft_flops(n_points: int, real: bool = True) -> float:
    """Floating-point operations of one FFT of ``n_points`` points.

    The standard radix-2 estimate ``5 N log2 N`` for a complex transform of ``N`` points; a real-input
    (``rfft``) or real-output (``irfft``) transform is counted as half of it.

    Parameters
    ----------
    n_points : int
        Total number of points ``N`` of the (multi-dimensional) transform, e.g. ``n * n`` for ``rfft2``.
    real : bool
        Whether the transform has real input or real output.

    Returns
    -------
    float
        FLOPs of the transform (per channel, per sample).
    """
    if n_points < 1:
        raise ValueError(f"n_points must be >= 1, got {n_points}")
    if n_points == 1:
        return 0.0
    full = 5.0 * n_points * math.log2(n_points)
    return 0.5 * full if real else full


class GaussianFourierEmbedding(nn.Module):
    """Random Fourier features of a scalar time (Tancik et al. 2020; Song et al. 2021).

    ``e(t) = [sin(2π W t), cos(2π W t)]`` with fixed frequencies ``W ~ N(0, scale²)`` of length
    ``dim / 2`` (stored as a buffer, not trained).

    Parameters
    ----------
    dim : int
        Embedding dimension (even).
    scale : float
        Standard deviation of the frequencies; 30 in the reference code.
    """

    def __init__(self, dim: int, scale: float = 30.0) -> None:
        super().__init__()
        if dim < 2 or dim % 2 != 0:
            raise ValueError(f"embedding dim must be an even integer >= 2, got {dim}")
        self.register_buffer("frequencies", torch.randn(dim // 2) * scale)

    def forward(self, t: Tensor) -> Tensor:
        """Embed ``t`` of shape ``(B,)`` into ``(B, dim)``."""
        phase = 2.0 * math.pi * t[:, None] * self.frequencies[None, :]
        return torch.cat([torch.sin(phase), torch.cos(phase)], dim=-1)


class SpectralConv2d(nn.Module):
    """Fourier-space linear layer of an FNO (Li et al. 2021, eq. 4).

    ``(K h)(x) = irfft2( R · rfft2(h) )``: the ``modes × modes`` lowest Fourier modes of each of the two
    half-planes kept by ``rfft2`` (``ky ∈ [0, modes)`` and ``ky ∈ [−modes, 0)``, ``kx ∈ [0, modes)``)
    are multiplied by learned complex matrices ``R_k ∈ C^{in × out}`` (one per kept mode ``k``); all
    other modes are set to zero.

    The complex product is done in real arithmetic as one batched real matrix product over the
    ``P = 2 modes²`` kept modes, ``[Re a, Im a] · [[Re R, Im R], [−Im R, Re R]]`` (complex ``bmm`` is slow
    on CPU).

    Parameters
    ----------
    in_channels, out_channels : int
        Channel counts.
    modes : int
        Fourier modes kept in each dimension; needs ``modes <= n // 2`` for an ``n × n`` input.

    Attributes
    ----------
    weight_real, weight_imag : Parameter, shape (2 modes², in, out)
        ``Re R_k``, ``Im R_k``; mode ``k = r · modes + kx`` with row ``r < modes`` for ``ky = r`` and
        ``r >= modes`` for ``ky = r − 2 modes``.
    """

    def __init__(self, in_channels: int, out_channels: int, modes: int) -> None:
        super().__init__()
        if modes < 1:
            raise ValueError(f"modes must be >= 1, got {modes}")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.modes = modes
        scale = 1.0 / (in_channels * out_channels)
        n_kept = 2 * modes * modes
        self.weight_real = nn.Parameter(scale * torch.rand(n_kept, in_channels, out_channels))
        self.weight_imag = nn.Parameter(scale * torch.rand(n_kept, in_channels, out_channels))

    def forward(self, h: Tensor) -> Tensor:
        """Apply the layer to ``h`` of shape ``(B, in, n1, n2)``; returns ``(B, out, n1, n2)``."""
        batch = h.shape[0]
        n1 = h.shape[-2]
        n2 = h.shape[-1]
        m = self.modes
        if 2 * m > n1 or m > n2 // 2 + 1:
            raise ValueError(
                "SpectralConv2d keeps " + str(m) + " modes per dimension, which needs a grid of at least "
                + str(2 * m) + "x" + str(2 * m) + ", got " + str(n1) + "x" + str(n2)
            )
        h_hat = torch.fft.rfft2(h)
        kept = torch.cat([h_hat[:, :, :m, :m], h_hat[:, :, n1 - m :, :m]], dim=2)  # (B, in, 2m, m)
        # (B, in, 2m, m, 2) -> (2m, m, B, 2, in) -> (P, B, 2 in)
        a = torch.view_as_real(kept).permute(2, 3, 0, 4, 1).reshape(2 * m * m, batch, 2 * self.in_channels)
        w_re = self.weight_real.to(a.dtype)
        w_im = self.weight_imag.to(a.dtype)
        block = torch.cat([torch.cat([w_re, w_im], dim=2), torch.cat([-w_im, w_re], dim=2)], dim=1)
        out = torch.bmm(a, block)  # (P, B, 2 out) = [Re, Im]
        out = out.reshape(2 * m, m, batch, 2, self.out_channels).permute(2, 4, 0, 1, 3).contiguous()
        out_hat = torch.view_as_complex(out)  # (B, out, 2m, m)
        gap = torch.zeros(batch, self.out_channels, n1 - 2 * m, m, dtype=out_hat.dtype, device=h.device)
        full = torch.cat([out_hat[:, :, :m], gap, out_hat[:, :, m:]], dim=2)  # (B, out, n1, m)
        return torch.fft.irfft2(full, s=(n1, n2))  # kx >= m zero-padded by irfft2

    def flops(self, n1: int, n2: int) -> float:
        """FLOPs per sample on an ``n1 × n2`` grid: rfft2 per input channel, complex multiply-adds
        (8 real FLOPs each) on ``2 · modes²`` modes, irfft2 per output channel."""
        transforms = (self.in_channels + self.out_channels) * fft_flops(n1 * n2, real=True)
        multiplies = 8.0 * self.in_channels * self.out_channels * 2 * self.modes * self.modes
        return transforms + multiplies


class FourierLayer(nn.Module):
    """One FNO layer (Li et al. 2021, eq. 2): ``h ← act( K h + W h + b )``.

    ``K`` is a :class:`SpectralConv2d`, ``W h + b`` a 1×1 convolution, ``act`` GELU (identity when
    ``activation`` is false, as for the last layer of a branch).
    """

    def __init__(self, width: int, modes: int, activation: bool = True) -> None:
        super().__init__()
        self.spectral = SpectralConv2d(width, width, modes)
        self.pointwise = nn.Conv2d(width, width, kernel_size=1)
        self.activation = activation

    def forward(self, h: Tensor) -> Tensor:
        """Apply to ``h`` of shape ``(B, width, n, n)``."""
        h = self.spectral(h) + self.pointwise(h)
        if self.activation:
            h = F.gelu(h)
        return h


class TimeShiftedFourierLayer(nn.Module):
    """A :class:`FourierLayer` preceded by a per-channel shift from a time embedding.

    ``h ← FourierLayer( h + A e )`` with ``e`` of shape ``(B, E)`` and ``A: R^E → R^width`` linear
    (the "Dense" time injection of score networks, Song et al. 2021).
    """

    def __init__(self, width: int, modes: int, embedding_dim: int, activation: bool = True) -> None:
        super().__init__()
        self.shift = nn.Linear(embedding_dim, width)
        self.layer = FourierLayer(width, modes, activation)

    def forward(self, h: Tensor, e: Tensor) -> Tensor:
        """Apply to ``h (B, width, n, n)`` with embedding ``e (B, E)``."""
        return self.shifted(h, self.shift(e))

    def shifted(self, h: Tensor, s: Tensor) -> Tensor:
        """Apply to ``h (B, width, n, n)`` with the shift ``s = A e`` already computed, ``(B, width)`` or
        ``(1, width)``."""
        return self.layer(h + s[:, :, None, None])
