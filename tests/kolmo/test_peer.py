"""kolmo against a peer solver: interleaved processes, pinned cores, the peer's JSON read back.

The peer here is a stand-in script run by this same Python (no jax needed): it answers with fixed
µs per step and echoes what it was given, so the order of the runs, the pinning, the flags passed
to the peer and the summary's arithmetic can be checked."""

import json
import os
import sys
from pathlib import Path

import pytest

from kolmo.errors import ConfigurationError, OptionalDependencyError
from kolmo.peer import ONE_THREAD_XLA_FLAGS, compare_with_peer, default_peer_script

FAKE_PEER = """
import argparse, json, os
p = argparse.ArgumentParser()
p.add_argument("--grid"); p.add_argument("--dt"); p.add_argument("--nu"); p.add_argument("--repeats")
a = p.parse_args()
rows = [{"n": int(n), "step_us": 1000.0 * int(n), "dt": a.dt} for n in a.grid.split(",")]
print("some log line")
print(json.dumps({"peer": "fake", "affinity": sorted(os.sched_getaffinity(0)),
                  "xla_flags": os.environ.get("XLA_FLAGS", ""), "rows": rows}))
"""


def test_runs_alternate_sides_are_pinned_and_the_summary_is_the_peer_over_kolmo(tmp_path: Path) -> None:
    script = tmp_path / "fake_peer.py"
    script.write_text(FAKE_PEER)
    res = compare_with_peer("jax-cfd", sys.executable, [16], cores=(1,), rounds=2, repeats=1, peer_script=script)
    assert [r["side"] for r in res.runs] == ["jax-cfd", "kolmo", "kolmo", "jax-cfd"]
    for r in res.runs:
        assert len(r["process"]["affinity"]) == 1 and r["cores"] == 1
    peer_runs = [r for r in res.runs if r["side"] == "jax-cfd"]
    assert all(r["process"]["xla_flags"].endswith(ONE_THREAD_XLA_FLAGS) for r in peer_runs)
    assert all(r["detail"]["dt"].startswith("16:") for r in peer_runs)  # kolmo's own Δt is passed on
    kolmo_runs = [r for r in res.runs if r["side"] == "kolmo"]
    assert all(r["threads"] == 1 and r["fft_bound_us"] > 0 for r in kolmo_runs)
    (row,) = res.summary()
    assert row["peer_us"] == 16000.0
    assert row["kolmo_us"] == min(r["step_us"] for r in kolmo_runs)
    assert row["speedup"] == pytest.approx(16000.0 / row["kolmo_us"])
    assert len(row["speedup_per_round"]) == 2
    json.dumps(res.as_dict())  # the record is plain JSON


def test_a_peer_that_fails_names_itself_and_its_error(tmp_path: Path) -> None:
    script = tmp_path / "broken_peer.py"
    script.write_text("import jax_cfd_is_not_here\n")
    with pytest.raises(OptionalDependencyError, match="broken_peer.py.*ModuleNotFoundError"):
        compare_with_peer("jax-cfd", sys.executable, [16], cores=(1,), rounds=1, repeats=1, peer_script=script)


def test_bad_peer_settings_are_refused_before_any_run(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="unknown peer"):
        compare_with_peer("pyqg", sys.executable, [16])
    with pytest.raises(ConfigurationError, match="core setting 3"):
        compare_with_peer("jax-cfd", sys.executable, [16], cores=(3,))
    with pytest.raises(ConfigurationError, match="peer script"):
        compare_with_peer("jax-cfd", sys.executable, [16], peer_script=tmp_path / "none.py")
    assert default_peer_script("jax-cfd").name == "peer_jax_cfd.py"
    assert default_peer_script("jax-cfd").is_file()
    if len(os.sched_getaffinity(0)) < 2:
        with pytest.raises(ConfigurationError, match="core"):
            compare_with_peer("jax-cfd", sys.executable, [16], cores=(2,), peer_script=default_peer_script("jax-cfd"))
