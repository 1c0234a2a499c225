r"""Doubly periodic grid and its spectral operators in ``rfft2`` layout.

Conventions (used everywhere in ``kolmo``)
------------------------------------------
* Physical fields have shape ``(B, N, N)`` for a batch of ``B`` members; axis ``-2`` is
  :math:`y`, axis ``-1`` is :math:`x`; grid points :math:`x_j = j L / N`.
* Spectral fields are the *unnormalised* ``rfft2`` over the last two axes, shape
  ``(B, N, N//2 + 1)``: :math:`\hat\omega_{k} = \sum_{x} \omega(x) e^{-i k\cdot x}`.
* Wavenumbers :math:`k = 2\pi n / L` with integer ``n``; ``ky`` runs over ``fftfreq`` order
  (axis -2), ``kx`` over ``rfftfreq`` order (axis -1).
* Dealiasing: the 2/3 rule keeps modes with :math:`|n_x| < N/3` and :math:`|n_y| < N/3`
  (index units) and zeroes the rest of the advection term.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from kolmo.errors import ConfigurationError

DEALIAS_RULES = ("2/3", "none")


@dataclass(frozen=True)
class Grid:
    """A square doubly periodic grid of ``n`` × ``n`` points on a box of side ``L``.

    Parameters
    ----------
    n
        Points per side (even, >= 4).
    L
        Side of the box (length units).
    dealias
        ``"2/3"`` (Orszag's rule, default) or ``"none"``.
    """

    n: int
    L: float = 2 * np.pi
    dealias: str = "2/3"
    kx: np.ndarray = field(init=False, repr=False, compare=False)
    ky: np.ndarray = field(init=False, repr=False, compare=False)
    k2: np.ndarray = field(init=False, repr=False, compare=False)
    inv_k2: np.ndarray = field(init=False, repr=False, compare=False)
    mask: np.ndarray = field(init=False, repr=False, compare=False)
    kx_odd: np.ndarray = field(init=False, repr=False, compare=False)
    ky_odd: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.n, (int, np.integer)) or self.n < 4 or self.n % 2:
            raise ConfigurationError(f"grid size n must be an even integer >= 4, got {self.n!r}")
        if not np.isfinite(self.L) or self.L <= 0:
            raise ConfigurationError(f"domain side L must be positive and finite, got {self.L!r}")
        if self.dealias not in DEALIAS_RULES:
            raise ConfigurationError(
                f"unknown dealiasing rule {self.dealias!r}; valid: {', '.join(DEALIAS_RULES)}"
            )
        n = int(self.n)
        ny = np.fft.fftfreq(n, 1.0 / n)  # integer wavenumbers, fft order
        nx = np.fft.rfftfreq(n, 1.0 / n)
        kx = (2 * np.pi / self.L) * nx
        ky = (2 * np.pi / self.L) * ny
        k2 = ky[:, None] ** 2 + kx[None, :] ** 2
        inv_k2 = np.zeros_like(k2)
        inv_k2[k2 > 0] = 1.0 / k2[k2 > 0]
        if self.dealias == "2/3":
            mask = (np.abs(ny)[:, None] < n / 3) & (np.abs(nx)[None, :] < n / 3)
        else:
            mask = np.ones(k2.shape, dtype=bool)
        object.__setattr__(self, "n", n)
        object.__setattr__(self, "L", float(self.L))
        object.__setattr__(self, "kx", kx)
        object.__setattr__(self, "ky", ky)
        object.__setattr__(self, "k2", k2)
        object.__setattr__(self, "inv_k2", inv_k2)
        object.__setattr__(self, "mask", mask.astype(np.float64))
        # wavenumbers for odd (first) derivatives: the Nyquist mode has no real derivative
        object.__setattr__(self, "kx_odd", np.where(np.abs(nx) == n // 2, 0.0, kx))
        object.__setattr__(self, "ky_odd", np.where(np.abs(ny) == n // 2, 0.0, ky))

    @property
    def spectral_shape(self) -> tuple[int, int]:
        """Shape ``(N, N//2+1)`` of one member in ``rfft2`` layout."""
        return (self.n, self.n // 2 + 1)

    @property
    def dx(self) -> float:
        """Grid spacing ``L / N``."""
        return self.L / self.n

    @property
    def coordinates(self) -> np.ndarray:
        """Grid-point coordinates ``j L / N``, shape ``(N,)`` (the same for x and y)."""
        return np.arange(self.n) * self.dx

    def mesh(self) -> tuple[np.ndarray, np.ndarray]:
        """Coordinate arrays ``(X, Y)``, each ``(N, N)``, indexed ``[y, x]``."""
        c = self.coordinates
        return np.meshgrid(c, c, indexing="xy")

    @property
    def rfft_weights(self) -> np.ndarray:
        """Multiplicity of each ``rfft2`` mode in the full spectrum, ``(N, N//2+1)``.

        Columns ``kx = 0`` and ``kx = N/2`` appear once, all others twice (their complex
        conjugates are not stored). Parseval: ``sum(w |f̂|²) = N² sum(f²)``.
        """
        w = np.full(self.spectral_shape, 2.0)
        w[:, 0] = 1.0
        w[:, -1] = 1.0
        return w

    def describe(self) -> dict[str, object]:
        """Plain-dict description for file attributes."""
        return {"n": self.n, "L": self.L, "dealias": self.dealias,
                "dealias_rule": "2/3 rule: advection zeroed where |n_x| >= N/3 or |n_y| >= N/3"
                if self.dealias == "2/3" else "none"}
