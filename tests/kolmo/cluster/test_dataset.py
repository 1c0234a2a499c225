"""A dataset built on Dask workers is the serial build: same fingerprint, also after an interrupt and
resume, and when a worker process is killed in the middle of a trajectory."""

import os
import signal
from pathlib import Path

import pytest

from kolmo.dataset import DatasetSpec, build_dataset
from kolmo.io import partial_path
from kolmo.pairs import verify

#: dong2026 32² → 8², 6 trajectories of one batch each (~0.4 s of solver each here), the last one test.
SPEC = DatasetSpec(preset="dong2026", fine=32, coarse=8, trajectories=6, test_trajectories=1, burn_in=1.0, t_end=3.0,
                   every=0.5, members_per_batch=1, seed=7)


@pytest.fixture(scope="module")
def serial_fingerprint(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The serial build's fingerprint (FFTW_MEASURE plans, this process's wisdom)."""
    return build_dataset(SPEC, tmp_path_factory.mktemp("serial") / "s.h5").fingerprint


def test_two_workers_give_the_serial_fingerprint_also_after_an_interrupt_and_resume(
        dask_client, serial_fingerprint: str, tmp_path: Path) -> None:
    out = tmp_path / "d.h5"

    def stop_after_two(ev) -> None:
        if ev.phase == "batch" and ev.trajectories_done >= 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        build_dataset(SPEC, out, cluster=dask_client, progress=stop_after_two)
    assert partial_path(out).exists() and not out.exists()
    resumed = build_dataset(SPEC, out, cluster=dask_client)
    assert 2 <= resumed.trajectories_resumed < SPEC.trajectories
    assert resumed.trajectories_resumed + resumed.trajectories_computed == SPEC.trajectories
    assert resumed.fingerprint == serial_fingerprint
    verify(out)


def test_a_worker_killed_mid_trajectory_is_retried_and_the_fingerprint_is_the_serial_one(
        dask_client, serial_fingerprint: str, tmp_path: Path) -> None:
    """SIGKILL one worker process while it integrates a trajectory: the scheduler reruns that task on a worker
    (the nanny restarts the dead one) and the file is still the serial build."""
    killed: dict[str, int] = {}

    def kill_a_busy_worker(ev) -> None:
        if ev.phase != "batch" or killed:
            return
        executing = dask_client.run(lambda dask_worker: [str(t.key) for t in dask_worker.state.executing])
        busy = sorted(w for w, keys in executing.items() if any("kolmo-dataset-batch" in k for k in keys))
        if busy:
            pid = dask_client.run(os.getpid, workers=[busy[0]])[busy[0]]
            os.kill(pid, signal.SIGKILL)
            killed[busy[0]] = pid

    summary = build_dataset(SPEC, tmp_path / "k.h5", cluster=dask_client, progress=kill_a_busy_worker)
    assert killed, "no worker was busy when a batch finished"
    assert summary.trajectories_computed == SPEC.trajectories
    assert summary.fingerprint == serial_fingerprint
    dask_client.wait_for_workers(2, timeout=120)
    assert set(killed.values()).isdisjoint(dask_client.run(os.getpid).values())
