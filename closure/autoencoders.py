"""Autoencoders between 64² fields and 1×16×16 latents (256 numbers), and a parameter-free ω encoder.

All models share one interface (each method TorchScript-compiled):

- ``encode(x: Tensor (B, 1, N, N)) -> z: Tensor (B, 1, n, n)``
- ``decode(z: Tensor (B, 1, n, n)) -> x: Tensor (B, 1, N, N)``
- ``forward(x) -> decode(encode(x))`` (the reconstruction)

with ``N = 64`` and ``n = 16`` by default. The decoder of the target autoencoder runs at every closure
call of the solver, at batch 1 on a CPU, so both models here are built to be cheap there:

- :class:`ConvAutoencoder` — a small periodic convolutional autoencoder (strided 3×3 convolutions
  64 → 32 → 16, one residual block at 16², pixel-shuffle upsampling back; circular padding everywhere,
  because the fields live on a doubly periodic square). About 29 MFLOP per decoded sample with the
  default channels ``(8, 16, 32)``.
- :class:`PCAAutoencoder` — the linear POD/PCA latent: ``z = V (x − μ)``, ``x = Vᵀ z + μ`` with the
  ``r = 256`` leading principal directions ``V`` of the training fields (2 MFLOP per call either way).
- :class:`BlockAverageEncoder` — a parameter-free condition encoder: the 4×4 block average of ω
  (64² → 16²), a cheap alternative to a learned ω autoencoder.
"""

from typing import List, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["ConvAutoencoder", "PCAAutoencoder", "BlockAverageEncoder"]


def _check_field(x: Tensor, channels: int, size: int, name: str) -> None:
    """Raise ``ValueError`` unless ``x`` has shape ``(B, channels, size, size)``."""
    if x.dim() != 4 or x.shape[1] != channels or x.shape[2] != size or x.shape[3] != size:
        raise ValueError(
            name + " must have shape (B, " + str(channels) + ", " + str(size) + ", " + str(size)
            + "), got " + str(list(x.shape))
        )


def _periodic_conv(c_in: int, c_out: int, stride: int = 1) -> nn.Conv2d:
    """3×3 convolution with circular (periodic) padding."""
    return nn.Conv2d(c_in, c_out, kernel_size=3, stride=stride, padding=1, padding_mode="circular")


class ResidualBlock(nn.Module):
    """``h ← h + conv(GELU(conv(GELU(h))))`` with periodic 3×3 convolutions (He et al. 2016, pre-activation)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = _periodic_conv(channels, channels)
        self.conv2 = _periodic_conv(channels, channels)

    def forward(self, h: Tensor) -> Tensor:
        return h + self.conv2(F.gelu(self.conv1(F.gelu(h))))


class ConvAutoencoder(nn.Module):
    """Small periodic convolutional autoencoder ``(B, 1, 64, 64) ↔ (B, 1, 16, 16)``.

    Encoder (``c1, c2, c3 = channels``)::

        conv3×3(1→c1) @64² → GELU → conv3×3/2(c1→c2) @32² → GELU → conv3×3/2(c2→c3) @16²
        → ResidualBlock(c3) → GELU → conv3×3(c3→1) @16²                       = z (linear latent)

    Decoder::

        conv3×3(1→c3) @16² → ResidualBlock(c3) → GELU → conv3×3(c3→4 c2) → PixelShuffle(2) @32²
        → GELU → conv3×3(c2→4 c1) → PixelShuffle(2) @64² → GELU → conv3×3(c1→1)  = x̂

    All convolutions pad circularly. The number of 2× stages is ``log2(field_size / latent_size)``
    (2 for 64 → 16); ``channels`` needs one entry per resolution level (3 for 64 → 16).

    Parameters
    ----------
    field_size : int
        ``N`` of the ``N × N`` field.
    latent_size : int
        ``n`` of the ``1 × n × n`` latent; ``N / n`` must be a power of two.
    channels : tuple of int
        Channels at resolutions ``N, N/2, ..., n``.
    """

    def __init__(
        self,
        field_size: int = 64,
        latent_size: int = 16,
        channels: Tuple[int, ...] = (8, 16, 32),
    ) -> None:
        super().__init__()
        ratio = field_size // latent_size
        if latent_size < 1 or field_size % latent_size != 0 or ratio & (ratio - 1) != 0:
            raise ValueError(
                f"field_size / latent_size must be a power of two, got {field_size} / {latent_size}"
            )
        levels = ratio.bit_length() - 1
        if len(channels) != levels + 1:
            raise ValueError(
                f"channels needs {levels + 1} entries for {field_size} -> {latent_size}, got {channels}"
            )
        self.field_size = field_size
        self.latent_size = latent_size
        ch = list(channels)
        down: List[nn.Module] = [_periodic_conv(1, ch[0])]
        for i in range(levels):
            down += [nn.GELU(), _periodic_conv(ch[i], ch[i + 1], stride=2)]
        down += [ResidualBlock(ch[-1]), nn.GELU(), _periodic_conv(ch[-1], 1)]
        self.encoder = nn.Sequential(*down)
        up: List[nn.Module] = [_periodic_conv(1, ch[-1]), ResidualBlock(ch[-1])]
        for i in range(levels, 0, -1):
            up += [nn.GELU(), _periodic_conv(ch[i], 4 * ch[i - 1]), nn.PixelShuffle(2)]
        up += [nn.GELU(), _periodic_conv(ch[0], 1)]
        self.decoder = nn.Sequential(*up)

    @torch.jit.export
    def encode(self, x: Tensor) -> Tensor:
        """Encode fields ``(B, 1, N, N)`` to latents ``(B, 1, n, n)``."""
        _check_field(x, 1, self.field_size, "x")
        return self.encoder(x)

    @torch.jit.export
    def decode(self, z: Tensor) -> Tensor:
        """Decode latents ``(B, 1, n, n)`` to fields ``(B, 1, N, N)``."""
        _check_field(z, 1, self.latent_size, "z")
        return self.decoder(z)

    def forward(self, x: Tensor) -> Tensor:
        """Reconstruction ``decode(encode(x))``."""
        return self.decode(self.encode(x))


class PCAAutoencoder(nn.Module):
    """Linear POD / PCA autoencoder with ``r = n²`` modes.

    With the training fields flattened to rows ``X ∈ R^{M × N²}``, mean ``μ`` and the thin SVD
    ``X − μ = U Σ Vᵀ`` (rows of ``Vᵀ`` orthonormal, singular values descending), the latent keeps the
    ``r`` leading modes ``V_r ∈ R^{N² × r}``::

        encode:  z = (x − μ) V_r / s          reshaped to (1, n, n)
        decode:  x = (s z) V_rᵀ + μ

    where ``s = 1`` (default; the map is then an isometry on the PCA subspace:
    ``‖z_i − z_j‖ = ‖P(x_i − x_j)‖``, with ``P`` the orthogonal projector onto ``span(V_r)``) or, with
    ``whiten=True``, ``s_k = Σ_k / √(M − 1)`` so each latent coordinate has unit training variance
    (better matched to an N(0, I) source, no longer metric preserving). When the training set has rank
    below ``r`` the missing modes are zero columns: those latent coordinates are identically zero.

    Fit with :meth:`fit`; an instance made by the constructor holds the given basis.

    Parameters
    ----------
    mean : Tensor, shape (N²,)
        Training mean ``μ``.
    basis : Tensor, shape (r, N²)
        Rows = principal directions (orthonormal, or zero for missing modes).
    scale : Tensor, shape (r,)
        Per-mode scale ``s``.
    field_size, latent_size : int
        ``N`` and ``n`` with ``r = n²``.
    """

    def __init__(self, mean: Tensor, basis: Tensor, scale: Tensor, field_size: int = 64, latent_size: int = 16):
        super().__init__()
        r = latent_size * latent_size
        if mean.shape != (field_size * field_size,):
            raise ValueError(f"mean must have shape ({field_size * field_size},), got {tuple(mean.shape)}")
        if basis.shape != (r, field_size * field_size):
            raise ValueError(f"basis must have shape ({r}, {field_size * field_size}), got {tuple(basis.shape)}")
        if scale.shape != (r,) or bool((scale <= 0).any()):
            raise ValueError(f"scale must be a positive vector of shape ({r},), got shape {tuple(scale.shape)}")
        self.field_size = field_size
        self.latent_size = latent_size
        self.register_buffer("mean", mean.clone())
        self.register_buffer("basis", basis.clone())
        self.register_buffer("scale", scale.clone())

    @classmethod
    def fit(
        cls, x: Tensor, latent_size: int = 16, whiten: bool = False, rank_tol: float = 1e-6
    ) -> "PCAAutoencoder":
        """Fit the PCA autoencoder to training fields.

        Parameters
        ----------
        x : Tensor, shape (M, 1, N, N)
            Training fields (one channel).
        latent_size : int
            ``n``; keeps ``r = n²`` modes.
        whiten : bool
            Scale latents to unit training variance (see class docstring).
        rank_tol : float
            Modes with singular value below ``rank_tol · Σ_0`` are treated as absent (zero columns).

        Returns
        -------
        PCAAutoencoder
            Buffers in ``x``'s dtype and device.

        Notes
        -----
        Uses ``torch.linalg.svd(X − μ, full_matrices=False)``: ``O(M N⁴)`` work, about a minute for the
        18,000 × 4,096 training set on 2 CPU cores.
        """
        if x.dim() != 4 or x.shape[1] != 1 or x.shape[2] != x.shape[3]:
            raise ValueError(f"x must have shape (M, 1, N, N), got {tuple(x.shape)}")
        if x.shape[0] < 2:
            raise ValueError(f"need at least 2 training fields, got {x.shape[0]}")
        field_size = x.shape[-1]
        r = latent_size * latent_size
        if r > field_size * field_size:
            raise ValueError(f"latent of {r} numbers exceeds the field's {field_size * field_size}")
        flat = x.reshape(x.shape[0], -1)
        mean = flat.mean(dim=0)
        _, sing, vh = torch.linalg.svd(flat - mean, full_matrices=False)
        keep = min(r, int((sing > rank_tol * sing[0]).sum()))
        basis = torch.zeros(r, flat.shape[1], dtype=x.dtype, device=x.device)
        basis[:keep] = vh[:keep]
        scale = torch.ones(r, dtype=x.dtype, device=x.device)
        if whiten:
            scale[:keep] = sing[:keep] / (x.shape[0] - 1) ** 0.5
        return cls(mean, basis, scale, field_size=field_size, latent_size=latent_size)

    @torch.jit.export
    def encode(self, x: Tensor) -> Tensor:
        """Project fields ``(B, 1, N, N)`` onto the modes: latents ``(B, 1, n, n)``."""
        _check_field(x, 1, self.field_size, "x")
        z = (x.reshape(x.shape[0], -1) - self.mean) @ self.basis.t() / self.scale
        return z.reshape(x.shape[0], 1, self.latent_size, self.latent_size)

    @torch.jit.export
    def decode(self, z: Tensor) -> Tensor:
        """Synthesize fields ``(B, 1, N, N)`` from latents ``(B, 1, n, n)``."""
        _check_field(z, 1, self.latent_size, "z")
        x = (z.reshape(z.shape[0], -1) * self.scale) @ self.basis + self.mean
        return x.reshape(z.shape[0], 1, self.field_size, self.field_size)

    def forward(self, x: Tensor) -> Tensor:
        """Reconstruction ``decode(encode(x))`` = projection onto ``μ + span(V_r)``."""
        return self.decode(self.encode(x))


class BlockAverageEncoder(nn.Module):
    """Parameter-free condition encoder: block average of a field over ``factor × factor`` cells.

    ``z[i, j] = mean_{a, b < factor} x[factor i + a, factor j + b]`` — the finite-volume coarse-graining
    64² → 16² for ``factor = 4``. It has no decoder (it is used for the condition ω only).

    Parameters
    ----------
    factor : int
        Coarse-graining factor (4 for 64² → 16²).
    """

    def __init__(self, factor: int = 4) -> None:
        super().__init__()
        if factor < 1:
            raise ValueError(f"factor must be >= 1, got {factor}")
        self.factor = factor

    @torch.jit.export
    def encode(self, x: Tensor) -> Tensor:
        """Coarse-grain ``(B, C, N, N)`` to ``(B, C, N/factor, N/factor)``."""
        if x.dim() != 4 or x.shape[-1] % self.factor != 0 or x.shape[-2] % self.factor != 0:
            raise ValueError(
                "x must have shape (B, C, N, N) with N divisible by " + str(self.factor) + ", got "
                + str(list(x.shape))
            )
        return F.avg_pool2d(x, kernel_size=self.factor)

    def forward(self, x: Tensor) -> Tensor:
        """Same as :meth:`encode`."""
        return self.encode(x)
