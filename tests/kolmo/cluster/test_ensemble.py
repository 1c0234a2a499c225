"""An ensemble run in batches of members (on Dask workers or here) is one run file whose member arrays
equal the serial runs of the same batches, bit for bit; what cannot keep that is refused."""

from pathlib import Path

import h5py
import numpy as np
import pytest

from kolmo.cluster.ensemble import run_ensemble
from kolmo.errors import BlowUpError, ConfigurationError
from kolmo.presets import preset
from kolmo.simulation import run_simulation

ARRAYS = ("vorticity", "time", "step", "member", "spectra/energy", "spectra/enstrophy", "diagnostics/step",
          "diagnostics/energy", "diagnostics/enstrophy", "diagnostics/cfl", "restart/omega_hat")


def read(path: Path) -> dict:
    with h5py.File(path) as h5:
        out = {k: h5[k][()] for k in ARRAYS if k in h5}
        out["rng_states"] = h5["restart"].attrs.get("rng_states")
        out["status"] = h5.attrs["status"]
        return out


def dong64(**kw):
    """dong2026 on 64² (where FFTW's batched plans differ from one field at a time here), 50 steps."""
    return preset("dong2026", 64, **{"members": 4, "t_end": 0.05, "save_every": 0.01, "seed": 2, **kw})


def test_four_members_on_two_workers_equal_the_serial_one_member_runs_bit_for_bit(dask_client, tmp_path: Path) -> None:
    cfg = dong64()
    summary = run_ensemble(cfg, tmp_path / "workers.h5", cluster=dask_client)
    assert summary.status == "complete" and summary.steps == cfg.steps
    on_workers = read(tmp_path / "workers.h5")
    run_ensemble(cfg, tmp_path / "here.h5", members_per_batch=1)  # the same batches, one after the other
    here = read(tmp_path / "here.h5")
    for key, value in here.items():
        assert np.array_equal(on_workers[key], value) if isinstance(value, np.ndarray) else on_workers[key] == value, key
    for i in range(cfg.members):  # member i = the one-member run with first_member = i
        run_simulation(cfg.replace(members=1, first_member=i), tmp_path / f"m{i}.h5")
        single = read(tmp_path / f"m{i}.h5")
        for key in ARRAYS:
            if key in ("time", "step", "diagnostics/step"):
                assert np.array_equal(single[key], on_workers[key]), key
            elif key == "member":
                assert single[key][0] == on_workers[key][i] == i
            else:
                assert np.array_equal(single[key][:, 0] if key != "restart/omega_hat" else single[key][0],
                                      on_workers[key][:, i] if key != "restart/omega_hat" else on_workers[key][i]), key
    # the one-batch serial run integrates the same members with FFTW's batched plans: equal to round-off only
    run_simulation(cfg, tmp_path / "one-batch.h5")
    one = read(tmp_path / "one-batch.h5")
    np.testing.assert_allclose(one["restart/omega_hat"], on_workers["restart/omega_hat"], rtol=0,
                               atol=1e-12 * np.abs(one["restart/omega_hat"]).max())
    # batches of 2 on the workers equal batches of 2 here (the batches define the run, not the workers)
    run_ensemble(cfg, tmp_path / "w2.h5", cluster=dask_client, members_per_batch=2)
    run_ensemble(cfg, tmp_path / "h2.h5", members_per_batch=2)
    assert np.array_equal(read(tmp_path / "w2.h5")["restart/omega_hat"], read(tmp_path / "h2.h5")["restart/omega_hat"])


def test_batches_start_from_their_members_of_an_initial_run_file(tmp_path: Path) -> None:
    """--init RUN.h5 with 4 members: each batch starts from its own members' snapshots."""
    run_simulation(dong64(t_end=0.01), tmp_path / "start.h5", planner="estimate")
    cfg = dong64(initial="file", initial_params={"path": str(tmp_path / "start.h5")})
    run_simulation(cfg, tmp_path / "one-batch.h5", planner="estimate")
    run_ensemble(cfg, tmp_path / "batches.h5", members_per_batch=2, planner="estimate")
    one, batches = read(tmp_path / "one-batch.h5"), read(tmp_path / "batches.h5")
    np.testing.assert_allclose(one["vorticity"], batches["vorticity"], rtol=0, atol=1e-5 * np.abs(one["vorticity"]).max())


def test_a_blow_up_ends_the_batched_run_where_and_as_the_serial_guard_ends_it(tmp_path: Path) -> None:
    """Member 1 exceeds the CFL limit at step 24 while the other batches run on: the file keeps the
    snapshots before step 24 and the diagnostics up to it, and the error names what the serial guard names."""
    cfg = preset("kolmogorov", 32, members=4, dt=0.05, t_end=2.0, save_every=0.25, seed=3, cfl_max=0.9, check_every=3)
    with pytest.raises(BlowUpError) as serial:
        run_simulation(cfg, tmp_path / "serial.h5", planner="estimate")
    with pytest.raises(BlowUpError) as batched:
        run_ensemble(cfg, tmp_path / "batched.h5", members_per_batch=1, planner="estimate")
    assert (batched.value.step, batched.value.member, batched.value.reason) == \
        (serial.value.step, serial.value.member, serial.value.reason) == (24, 1, "cfl")
    a, b = read(tmp_path / "serial.h5"), read(tmp_path / "batched.h5")
    assert a["status"] == b["status"] == "blew-up"
    for key in ("time", "step", "diagnostics/step"):
        assert np.array_equal(a[key], b[key]), key
    np.testing.assert_allclose(a["diagnostics/cfl"], b["diagnostics/cfl"], rtol=1e-9)


def test_a_run_integrated_in_batches_is_not_resumed_as_one_batch(tmp_path: Path) -> None:
    run_ensemble(dong64(t_end=0.01), tmp_path / "b.h5", members_per_batch=2, planner="estimate")
    before = (tmp_path / "b.h5").read_bytes()
    with pytest.raises(ConfigurationError, match="batches of 2 of its 4 members"):
        run_simulation(None, resume=tmp_path / "b.h5", t_end=0.02)
    assert (tmp_path / "b.h5").read_bytes() == before
