"""Closures in a run split into batches of members (``kolmo run --workers``): each worker builds the
closure itself and the members equal the serial one-member runs; a closure whose members share one
generator is refused."""

from pathlib import Path

import h5py
import numpy as np
import pytest

from coupling.online import ClosureOptions, member_closure_factory, prepare_run
from kolmo.cluster.ensemble import run_ensemble
from kolmo.errors import ConfigurationError
from kolmo.simulation import run_simulation


def test_smagorinsky_members_on_two_workers_equal_the_serial_one_member_runs(dask_client, tmp_path: Path) -> None:
    options = ClosureOptions()
    online = prepare_run("kolmogorov", 32, {"members": 3, "t_end": 0.5, "save_every": 0.25, "seed": 4}, "smagorinsky",
                         options)
    factory = member_closure_factory("smagorinsky", options, None, online.closure)
    run_ensemble(online.config, tmp_path / "workers.h5", cluster=dask_client, closure_factory=factory)
    with h5py.File(tmp_path / "workers.h5") as h5:
        vort, injected = h5["vorticity"][()], h5["diagnostics/closure_enstrophy"][()]
        assert h5.attrs["closure_name"] == "smagorinsky" and h5.attrs["closure_calls"] == online.config.steps
    for i in range(3):
        run_simulation(online.config.replace(members=1, first_member=i), tmp_path / f"m{i}.h5", closure=factory())
        with h5py.File(tmp_path / f"m{i}.h5") as h5:
            assert np.array_equal(h5["vorticity"][:, 0], vort[:, i])
            assert np.array_equal(h5["diagnostics/closure_enstrophy"][:, 0], injected[:, i])
    assert np.all(injected < 0)  # the eddy viscosity drains enstrophy


def test_an_artifact_closure_is_refused_because_its_members_share_one_generator(make_artifact) -> None:
    path = make_artifact()
    options = ClosureOptions()
    online = prepare_run(None, None, {"members": 4}, str(path), options)
    with pytest.raises(ConfigurationError, match="one generator in one batched"):
        member_closure_factory(str(path), options, None, online.closure)
