"""kolmo.resources: the memory model against a measured allocation, and the refusals naming both numbers."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import pytest

from kolmo.errors import ResourceError
from kolmo.presets import preset
from kolmo.resources import (FIXED_BYTES, Estimate, available_memory, dataset_output_bytes, free_disk,
                             require_disk, require_memory, run_memory, run_output_bytes)
from kolmo.simulation import run_simulation


def test_run_memory_model_matches_the_measured_peak_allocation(tmp_path: Path) -> None:
    """tracemalloc sees every NumPy/pyFFTW array of the solver; the model's array part must cover the
    measured peak without overstating it by more than half (128², 2 members, cn-rk3)."""
    cfg = preset("kolmogorov", 128, members=2, t_end=4 * preset("kolmogorov", 128).dt, save_every=1.0)
    run_simulation(cfg, tmp_path / "warm.h5", planner="estimate")  # compile kernels, plan FFTs
    tracemalloc.start()
    try:
        run_simulation(cfg, tmp_path / "measured.h5", planner="estimate")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    arrays = run_memory(128, 2, "cn-rk3").bytes - FIXED_BYTES
    assert peak <= arrays <= 1.5 * peak, (peak, arrays)


def test_memory_that_cannot_fit_is_refused_with_the_estimate_and_the_available_memory() -> None:
    avail = available_memory()
    assert avail is not None and avail > 0
    huge = run_memory(1 << 17, 64)
    assert huge.bytes > avail
    with pytest.raises(ResourceError, match=r"kolmo run needs about .*TiB.* only .* of memory is available"):
        require_memory(huge, "kolmo run")
    require_memory(Estimate(1, "tiny"), "kolmo run")  # fits: no error


def test_output_that_cannot_fit_on_the_disk_is_refused(tmp_path: Path) -> None:
    free = free_disk(tmp_path / "not" / "yet" / "there.h5")
    assert free is not None and free > 0
    with pytest.raises(ResourceError, match="only .* is free on that disk"):
        require_disk(2 * free, tmp_path / "x.h5", "kolmo dataset")
    require_disk(1, tmp_path / "x.h5", "kolmo dataset")


def test_output_sizes_count_float32_fields() -> None:
    assert dataset_output_bytes(64, 20000) == 2 * 4 * 20000 * 64 * 64
    assert run_output_bytes(64, 2, 3) >= 3 * 2 * 4 * 64 * 64
