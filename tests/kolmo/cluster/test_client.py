"""Opening a Dask client: the options exclude each other, a missing extra names itself, the client's
FFTW wisdom makes another process plan the same transforms."""

import hashlib
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from kolmo.cluster import ClusterOptions, open_client
from kolmo.cluster.wisdom import ClientWisdom
from kolmo.dataset import DatasetSpec, build_dataset
from kolmo.errors import ConfigurationError, OptionalDependencyError
from kolmo.fft import RealFFT2

ROOT = Path(__file__).resolve().parents[3]


def test_workers_and_scheduler_exclude_each_other() -> None:
    with pytest.raises(ConfigurationError, match="--workers 2 and --scheduler tcp://h:8786 exclude each other"):
        ClusterOptions(workers=2, scheduler="tcp://h:8786")
    with pytest.raises(ConfigurationError, match="--workers 0"):
        ClusterOptions(workers=0)
    assert not ClusterOptions().requested and ClusterOptions(scheduler="tcp://h:8786").requested


def test_asking_for_workers_without_dask_names_the_extra_and_touches_no_file(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "distributed", None)  # `import distributed` now raises ImportError
    spec = DatasetSpec(preset="dong2026", fine=32, coarse=8, trajectories=2, test_trajectories=1, burn_in=0.01,
                       t_end=0.03, every=0.01)
    with pytest.raises(OptionalDependencyError, match=r"pip install kolmo\[distributed\]"):
        build_dataset(spec, tmp_path / "d.h5", cluster=ClusterOptions(workers=2))
    with pytest.raises(OptionalDependencyError, match=r"pip install kolmo\[distributed\]"):
        with open_client(ClusterOptions(scheduler="tcp://h:8786")):
            pass
    assert list(tmp_path.iterdir()) == []


_PROBE = """
import hashlib, pickle, sys
import numpy as np
from kolmo.cluster.wisdom import ClientWisdom
from kolmo.fft import RealFFT2
with open(sys.argv[1], "rb") as fh:
    ClientWisdom(*pickle.load(fh)).install()
x = np.random.default_rng(0).standard_normal((1, 64, 64))
print(hashlib.sha256(RealFFT2(64, 1, planner="measure").rfft2(x).tobytes()).hexdigest())
"""


def test_a_process_that_installs_the_clients_wisdom_computes_the_clients_transform(tmp_path: Path) -> None:
    """FFTW_MEASURE in a fresh process (empty wisdom cache) may pick another algorithm than this one did (4
    different results in 6 fresh processes at 64² here); with the client's wisdom installed it gives our bits."""
    x = np.random.default_rng(0).standard_normal((1, 64, 64))
    here = hashlib.sha256(RealFFT2(64, 1, planner="measure").rfft2(x).tobytes()).hexdigest()
    wisdom = ClientWisdom.of_this_process()
    (tmp_path / "w.pickle").write_bytes(pickle.dumps((wisdom.wisdom, wisdom.digest)))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "KOLMO_CACHE_DIR": str(tmp_path / "empty-cache")}
    out = subprocess.run([sys.executable, "-c", _PROBE, str(tmp_path / "w.pickle")], env=env, capture_output=True,
                         text=True, timeout=120, check=True)
    assert out.stdout.strip() == here
