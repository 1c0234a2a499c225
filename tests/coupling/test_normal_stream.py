"""The closure's stream of standard normals (coupling.normal_stream): the law N(0, 1), including the slow
path of the ziggurat (wedges and tail), reproducibility from the seed, independent named streams, and
an exact restart from the saved state."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from coupling.normal_stream import (LANES, TABLES, NormalStream, fill_standard_normal_numba, rejected_numba,
                                    ziggurat_tables)
from kolmo.errors import ConfigurationError

M = 2_000_000  # draws for the law tests (about 5 ms)


@pytest.fixture(scope="module")
def draws() -> np.ndarray:
    return NormalStream(11, "law").fill(np.empty(M))


def test_the_ziggurat_layers_have_equal_area_and_cover_the_density() -> None:
    ki, wi, fi = ziggurat_tables()
    x = wi * 2.0**23  # right edges: x[0] the base strip's width q, x[255] = r
    r, v = x[255], 0.00492867323399
    f = np.exp(-0.5 * x**2)
    np.testing.assert_allclose(x[2:] * (f[1:-1] - f[2:]), v, rtol=1e-9)  # layers 2..255
    assert abs(x[1] * (1.0 - f[1]) - v) < 1e-9  # the top layer
    tail = math.sqrt(math.pi / 2) * math.erfc(r / math.sqrt(2))  # ∫_r^∞ e^{-x²/2}
    assert abs(r * f[255] + tail - v) < 1e-9  # the base strip: rectangle plus tail
    assert np.all(np.diff(x[1:]) > 0)
    # a candidate u w_i is accepted at once iff it lies left of the layer above's edge (x < r for the base)
    np.testing.assert_array_equal(ki[2:], np.floor(2.0**23 * x[1:-1] / x[2:]).astype(np.uint64))
    assert ki[1] == 0 and ki[0] == np.uint64(2.0**23 * r / x[0])
    np.testing.assert_allclose(fi, np.exp(-0.5 * x**2) * (np.arange(256) > 0) + (np.arange(256) == 0))


def test_the_stream_has_the_standard_normal_law_in_the_bulk_wedges_and_tail(draws: np.ndarray) -> None:
    """Moments, a Kolmogorov–Smirnov test, and the mass of bins that each path of the algorithm
    fills (bulk, wedges, the tail beyond r = 3.654), each to 5 sampling σ."""
    assert abs(draws.mean()) < 5 / math.sqrt(M)
    assert abs(draws.var() - 1) < 5 * math.sqrt(2 / M)
    assert abs(stats.skew(draws)) < 5 * math.sqrt(6 / M)
    assert abs(stats.kurtosis(draws)) < 5 * math.sqrt(24 / M)
    assert stats.kstest(draws, "norm").pvalue > 1e-4
    edges = np.array([-np.inf, -3.654, -3.0, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0, 3.654, 4.2, np.inf])
    counts = np.histogram(draws, edges)[0]
    expected = M * np.diff(stats.norm.cdf(edges))
    assert np.all(np.abs(counts - expected) < 5 * np.sqrt(expected)), (counts - expected) / np.sqrt(expected)
    assert counts[0] > 0 and counts[-1] > 0  # the tail path ran, on both sides


def test_about_one_and_a_half_percent_of_candidates_take_the_slow_path() -> None:
    s = NormalStream(3)
    n = 200_000
    raw, rejected = s.scratch(n)
    out = s.fill(np.empty(n))
    cand = raw.reshape(-1).view(np.int32)
    bad = rejected_numba(cand, n, rejected)
    assert 0.012 < bad / n < 0.018
    # the fast-path candidates are returned as drawn: x = ±u w_layer
    fast = np.setdiff1d(np.arange(n), rejected[:bad])
    v = cand[fast]
    np.testing.assert_array_equal(out[fast], ((v >> 9) & 0x7FFFFF) * TABLES[1][v & 0x1FF])


def test_a_seed_and_a_name_reproduce_the_stream_and_other_names_are_independent() -> None:
    a = NormalStream(4, "jitter").fill(np.empty(10_000))
    np.testing.assert_array_equal(a, NormalStream(4, "jitter").fill(np.empty(10_000)))
    b = NormalStream(4, "sample noise").fill(np.empty(10_000))
    c = NormalStream(5, "jitter").fill(np.empty(10_000))
    for other in (b, c):
        assert abs(np.corrcoef(a, other)[0, 1]) < 5 / math.sqrt(a.size)


def test_the_saved_state_continues_the_stream_exactly_and_float32_gets_the_same_numbers_rounded() -> None:
    s = NormalStream(8)
    s.fill(np.empty((3, 16, 9, 2)))
    saved = s.get_state()
    first = s.fill(np.empty((3, 16, 9, 2)))
    s.set_state(saved)
    np.testing.assert_array_equal(s.fill(np.empty((3, 16, 9, 2))), first)
    s.set_state(saved)
    single = np.empty((3, 16, 9, 2), dtype=np.float32)
    state, raw, rejected = s.kernel_args(single.size)
    fill_standard_normal_numba(state, raw, rejected, single.reshape(-1))
    np.testing.assert_array_equal(single, first.astype(np.float32))
    with pytest.raises(ConfigurationError, match="expected"):
        s.set_state(np.zeros((4, LANES)))
    with pytest.raises(ConfigurationError, match="float64"):
        s.fill(np.empty(4, dtype=np.float32))
