r"""A seeded stream of standard normals for the closure's jitter: xoshiro256++ lanes and the ziggurat.

The learned closure draws :math:`N^2 + 2N` standard normals per member and step for its jitter
(:mod:`coupling.spectral_jitter`): at the paper's cadence that is the largest part of the coupling
cost, and torch's vectorised float32 generator (Box–Muller) takes about 2.8 ns per normal on this
project's CPU. This module draws them in about a third of that time, in Numba, in three phases:

1. **bits**: ``L = 16`` independent xoshiro256++ generators (Blackman & Vigna 2021, "Scrambled
   linear pseudorandom number generators", ACM TOMS 47, 36) advance side by side, one 64-bit word
   each per round, in a loop the compiler vectorises;
2. **ziggurat, fast path**: each word gives two candidates of the 256-layer ziggurat method
   (Marsaglia & Tsang 2000, J. Stat. Softw. 5(8); the layout of NumPy's float32 variant:
   32 bits → 8 bits layer index, 1 bit sign, 23 bits abscissa). About 98.5 % of the candidates lie
   inside their layer's rectangle under the density and are returned as they are;
3. **ziggurat, slow path**: each remaining candidate is completed by the exact rejection step of
   the method (wedge test against :math:`e^{-x^2/2}`, or Marsaglia's tail algorithm beyond
   :math:`r = 3.6541528853610088` for the base layer), drawing its extra uniforms from a 17th
   xoshiro256++ generator reserved for this.

Every output is a ziggurat variate (a first-attempt acceptance, or the method's own continuation
from that attempt with fresh independent bits), so the outputs are i.i.d. :math:`N(0, 1)`: the
law of the exact algorithm, not an approximation (checked in ``tests/coupling/test_normal_stream.py``:
moments, the tails and a Kolmogorov–Smirnov test). The abscissa resolution is
:math:`2^{-23}` of a layer's width (float32 quality, as the torch draws this replaces).

The stream is a pure function of the seed and of the sizes asked for: ``state`` ``(4, 17)`` uint64
(the four words of each generator; column 16 the slow-path one) is all there is to save for an
exact restart. A fill of ``n`` normals consumes ``ceil(ceil(n/2)/L)`` rounds of the lanes
(the surplus words of the last round are discarded, so the stream does not depend on the values),
plus slow-path words as needed.
"""

from __future__ import annotations

import math
import zlib

import numpy as np
from numba import njit, uint64

from kolmo.errors import ConfigurationError

__all__ = ["LANES", "TABLES", "NormalStream", "seed_state", "ziggurat_tables", "fill_standard_normal_numba",
           "candidate_words_numba", "candidate_numba", "candidates_numba", "rejected_numba", "complete_rejected_numba", "lane_words_numba"]

LANES = 16
"""Independent xoshiro256++ generators advanced side by side (one vector of 64-bit words per round)."""

_R = 3.6541528853610088  # right edge of the base layer (Marsaglia & Tsang's 256-layer r)
_V = 0.00492867323399  # area of every layer
_BITS = 23  # abscissa bits of a candidate


def ziggurat_tables() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r"""The 256-layer ziggurat ``(ki, wi, fi)`` (Marsaglia & Tsang 2000, ``zigset``) for 23-bit abscissae.

    Layer ``i`` has right edge :math:`x_i` (:math:`x_{255} = r`, decreasing upwards; layer 0 is the
    base strip with the tail). ``wi[i]`` = :math:`x_i / 2^{23}` (candidate :math:`x = u\,w_i`,
    :math:`u < 2^{23}`), ``ki[i]`` the largest :math:`u` inside the part of the layer under the density
    (:math:`x < x_{i-1}`; for the base, :math:`x < r`), ``fi[i]`` = :math:`e^{-x_i^2/2}`.
    """
    m1 = float(2**_BITS)
    dn = tn = _R
    ki = np.zeros(256, dtype=np.uint64)
    wi = np.zeros(256)
    fi = np.zeros(256)
    q = _V / math.exp(-0.5 * dn * dn)
    ki[0] = np.uint64((dn / q) * m1)
    ki[1] = 0
    wi[0], wi[255] = q / m1, dn / m1
    fi[0], fi[255] = 1.0, math.exp(-0.5 * dn * dn)
    for i in range(254, 0, -1):
        dn = math.sqrt(-2.0 * math.log(_V / dn + math.exp(-0.5 * dn * dn)))
        ki[i + 1] = np.uint64((dn / tn) * m1)
        tn = dn
        fi[i] = math.exp(-0.5 * dn * dn)
        wi[i] = dn / m1
    return ki, wi, fi


_KI, _WI, _FI = ziggurat_tables()
TABLES = (_KI.astype(np.int32), np.concatenate([_WI, -_WI]), _FI)
"""``(ki, wi, fi)`` as the kernels use them: int32 ``ki``; ``wi`` ``(512,)``, the layer widths then their
negatives (bits 0–8 of a candidate index it, layer and sign at once). The kernels read them as global
constants (compiled in: the compiler then knows they alias no argument and vectorises the gathers)."""
_KI32, _WIS, _FIS = TABLES


def seed_state(seed: int, stream: str = "") -> np.ndarray:
    """The generators' state ``(4, LANES + 1)`` uint64 for ``seed`` and the stream's name (NumPy's
    ``SeedSequence`` of both: streams of other names are independent); no generator is all zero."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ConfigurationError(f"normal stream seed = {seed!r}, expected an integer")
    tag = zlib.crc32(f"coupling.normal_stream:{stream}".encode())
    words = np.random.SeedSequence([int(seed) & 0xFFFFFFFFFFFFFFFF, tag]).generate_state(4 * (LANES + 1), np.uint64)
    state = np.ascontiguousarray(words.reshape(LANES + 1, 4).T)
    for col in range(LANES + 1):
        if not state[:, col].any():
            state[0, col] = np.uint64(0x9E3779B97F4A7C15)
    return state


@njit(cache=True, inline="always")
def _xoshiro_next(s0, s1, s2, s3):  # pragma: no cover
    """One xoshiro256++ step of a generator held in four registers: ``(word, s0, s1, s2, s3)``."""
    t0 = s0 + s3
    word = ((t0 << uint64(23)) | (t0 >> uint64(41))) + s0
    t = s1 << uint64(17)
    s2 ^= s0
    s3 ^= s1
    s1 ^= s2
    s0 ^= s3
    s2 ^= t
    s3 = (s3 << uint64(45)) | (s3 >> uint64(19))
    return word, s0, s1, s2, s3


@njit(cache=True)
def complete_rejected_numba(state, flat, rejected, bad, out):  # pragma: no cover
    """The slow path: complete each rejected candidate ``out[rejected[q]]`` (its 32 bits in ``flat``) by
    the ziggurat's own continuation, drawing from the last generator of ``state`` (kept in registers)."""
    ki, wi, fi = _KI32, _WIS, _FIS
    col = state.shape[1] - 1
    s0, s1, s2, s3 = state[0, col], state[1, col], state[2, col], state[3, col]
    for q in range(bad):
        k = rejected[q]
        r32 = (flat[k >> 1] >> uint64(32 * (k & 1))) & uint64(0xFFFFFFFF)
        negative = (r32 >> uint64(8)) & uint64(1)
        idx = r32 & uint64(0xFF)
        x = ((r32 >> uint64(9)) & uint64(0x7FFFFF)) * wi[idx]
        while True:
            if idx == 0:  # the tail beyond r (Marsaglia 1964), signed by the candidate's bit
                while True:
                    w1, s0, s1, s2, s3 = _xoshiro_next(s0, s1, s2, s3)
                    w2, s0, s1, s2, s3 = _xoshiro_next(s0, s1, s2, s3)
                    xx = -math.log1p(-((w1 >> uint64(11)) * (1.0 / 9007199254740992.0))) / 3.6541528853610088
                    yy = -math.log1p(-((w2 >> uint64(11)) * (1.0 / 9007199254740992.0)))
                    if yy + yy > xx * xx:
                        break
                x = 3.6541528853610088 + xx
                break
            w1, s0, s1, s2, s3 = _xoshiro_next(s0, s1, s2, s3)  # the wedge: a uniform height under the density
            if (fi[idx - 1] - fi[idx]) * ((w1 >> uint64(11)) * (1.0 / 9007199254740992.0)) + fi[idx] < math.exp(-0.5 * x * x):
                break
            w1, s0, s1, s2, s3 = _xoshiro_next(s0, s1, s2, s3)  # rejected: a fresh candidate (its 32 low bits)
            r32 = w1 & uint64(0xFFFFFFFF)
            negative = (r32 >> uint64(8)) & uint64(1)
            idx = r32 & uint64(0xFF)
            rabs = np.int64((r32 >> uint64(9)) & uint64(0x7FFFFF))
            x = rabs * wi[idx]
            if rabs < ki[idx]:
                break
        out[k] = -x if negative else x
    state[0, col], state[1, col], state[2, col], state[3, col] = s0, s1, s2, s3


@njit(cache=True, fastmath=True)
def lane_words_numba(state, raw, rounds):  # pragma: no cover
    """``raw[r, l]`` ← the next word of lane ``l``, for ``rounds`` rounds (vectorised over the lanes)."""
    lanes = raw.shape[1]
    for r in range(rounds):
        for lane in range(lanes):
            s0, s1, s2, s3 = state[0, lane], state[1, lane], state[2, lane], state[3, lane]
            t0 = s0 + s3
            raw[r, lane] = ((t0 << uint64(23)) | (t0 >> uint64(41))) + s0
            t = s1 << uint64(17)
            s2 ^= s0
            s3 ^= s1
            s1 ^= s2
            s0 ^= s3
            s2 ^= t
            state[0, lane], state[1, lane], state[2, lane] = s0, s1, s2
            state[3, lane] = (s3 << uint64(45)) | (s3 >> uint64(19))


@njit(cache=True, fastmath=True)
def candidate_words_numba(state, raw, n):  # pragma: no cover
    """``raw`` ← the words of ``n`` candidates (``ceil(ceil(n/2)/LANES)`` rounds of the lanes, advancing
    ``state``); returns them as int32 (little-endian: candidate ``k`` is the low half of word ``k // 2``
    for even ``k``, the high half for odd ``k``)."""
    lanes = raw.shape[1]
    lane_words_numba(state, raw, ((n + 1) // 2 + lanes - 1) // lanes)
    return raw.reshape(-1).view(np.int32)


@njit(cache=True, inline="always")
def candidate_numba(v):  # pragma: no cover
    """The ziggurat's candidate of the 32 bits ``v`` (int32): bits 0–7 the layer, 8 the sign, 9–31 the abscissa."""
    return np.float64((v >> 9) & 0x7FFFFF) * _WIS[v & 0x1FF]


@njit(cache=True, fastmath=True)
def candidates_numba(cand, out, n):  # pragma: no cover
    """``out[k]`` ← the candidate of ``cand[k]`` for ``k < n``: the fast path for every one (no branch; the
    table is a compiled-in constant, so the loop is vectorised with gathers)."""
    for k in range(n):
        out[k] = np.float64((cand[k] >> 9) & 0x7FFFFF) * _WIS[cand[k] & 0x1FF]


@njit(cache=True, fastmath=True)
def rejected_numba(cand, n, rejected):  # pragma: no cover
    """``rejected[:bad]`` ← the candidates ``k < n`` outside their layer's rectangle (about 1.5 %), in
    increasing order; returns ``bad``. Blocks of 8 are tested at once (vectorised) and only a block with
    a rejection is scanned one by one."""
    ki = _KI32
    bad = 0
    for blk in range(n // 8):
        hit = False
        for q in range(8):
            v = cand[8 * blk + q]
            hit |= ((v >> 9) & 0x7FFFFF) >= ki[v & 0xFF]
        if hit:
            for q in range(8):
                v = cand[8 * blk + q]
                if ((v >> 9) & 0x7FFFFF) >= ki[v & 0xFF]:
                    rejected[bad] = 8 * blk + q
                    bad += 1
    for k in range(8 * (n // 8), n):
        v = cand[k]
        if ((v >> 9) & 0x7FFFFF) >= ki[v & 0xFF]:
            rejected[bad] = k
            bad += 1
    return bad


@njit(cache=True, fastmath=True)
def fill_standard_normal_numba(state, raw, rejected, out):  # pragma: no cover
    """``out`` (1-D, ``n`` values, float64 or float32) ← i.i.d. N(0, 1) from ``state`` (module docstring),
    in place.

    ``raw`` ``(ceil(ceil(n/2)/LANES), LANES)`` uint64 and ``rejected`` ``(n,)`` int64 are scratch."""
    n = out.size
    cand = candidate_words_numba(state, raw, n)
    candidates_numba(cand, out, n)
    bad = rejected_numba(cand, n, rejected)
    complete_rejected_numba(state, raw.reshape(-1), rejected, bad, out)
    return out


class NormalStream:
    """i.i.d. standard normals from a seed (module docstring), drawn into preallocated arrays.

    Parameters
    ----------
    seed
        Integer seed: the same seed and the same sequence of sizes give the same numbers.
    stream
        Name of the stream: streams of one seed with different names are independent.

    Attributes
    ----------
    state : np.ndarray
        ``(4, LANES + 1)`` uint64: everything needed to continue the stream exactly.
    """

    def __init__(self, seed: int, stream: str = "") -> None:
        self.state = seed_state(seed, stream)
        self._raw = np.empty((0, LANES), dtype=np.uint64)
        self._rejected = np.empty(0, dtype=np.int64)

    def scratch(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """The scratch arrays of a fill of ``n`` normals (kept between fills of the same size)."""
        rounds = ((n + 1) // 2 + LANES - 1) // LANES
        if self._raw.shape[0] != rounds or self._rejected.size != n:
            self._raw = np.empty((rounds, LANES), dtype=np.uint64)
            self._rejected = np.empty(n, dtype=np.int64)
        return self._raw, self._rejected

    def kernel_args(self, n: int) -> tuple[np.ndarray, ...]:
        """``(state, raw, rejected)``: the arguments of :func:`fill_standard_normal_numba` for a
        fill of ``n`` normals, for compiled callers (they advance :attr:`state` in place)."""
        raw, rejected = self.scratch(n)
        return self.state, raw, rejected

    def fill(self, out: np.ndarray) -> np.ndarray:
        """``out`` (C-contiguous float64, any shape) ← standard normals, in place; returns ``out``."""
        if out.dtype != np.float64 or not out.flags.c_contiguous:
            raise ConfigurationError(f"normal stream output is {out.dtype} (C-contiguous: {out.flags.c_contiguous}), "
                                     "expected a C-contiguous float64 array")
        raw, rejected = self.scratch(out.size)
        fill_standard_normal_numba(self.state, raw, rejected, out.reshape(-1))
        return out

    def get_state(self) -> np.ndarray:
        """A copy of :attr:`state`."""
        return self.state.copy()

    def set_state(self, state: np.ndarray) -> None:
        """Restore a :meth:`get_state` (shape ``(4, LANES + 1)``, uint64)."""
        s = np.asarray(state)
        if s.shape != (4, LANES + 1):
            raise ConfigurationError(f"normal stream state has shape {s.shape}, expected {(4, LANES + 1)}")
        self.state[...] = s.astype(np.uint64)  # in place: kernel_args handed out stay valid
