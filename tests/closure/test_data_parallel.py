"""closure.data_parallel: two gloo processes on the CPU train the model one process trains with the same
global batch, and their checkpoints resume in one process (and a single-process one under torchrun)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from closure.batch_shard import BatchShard, draw_rand, draw_randn
from closure.data_parallel import Ranks, check_processes, ranks_from_environment, shard_rows
from closure.models import ModelConfig
from closure.training import TrainConfig, read_checkpoint, train
from kolmo.errors import ConfigurationError
from tests.closure.synthetic import write_synthetic_dataset

ROOT = Path(__file__).resolve().parents[2]
RTOL = 1e-5
"""Float summation order (per-shard means, the all-reduce) is the only difference: ~1e-7 relative here."""


def test_the_torchrun_variables_and_only_they_select_several_processes():
    assert ranks_from_environment({"PATH": "/bin", "OMP_NUM_THREADS": "1"}) == Ranks(0, 1, 0)
    env = {"RANK": "1", "WORLD_SIZE": "2", "LOCAL_RANK": "1", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "29500"}
    ranks = ranks_from_environment(env)
    assert ranks == Ranks(1, 2, 1) and ranks.distributed and not ranks.main
    with pytest.raises(ConfigurationError, match="MASTER_PORT not"):
        ranks_from_environment({k: v for k, v in env.items() if k != "MASTER_PORT"})
    with pytest.raises(ConfigurationError, match="RANK < WORLD_SIZE"):
        ranks_from_environment({**env, "RANK": "2"})


def test_a_global_batch_splits_into_contiguous_equal_shards_or_is_refused():
    assert [shard_rows(8, 2, r) for r in (0, 1)] == [slice(0, 4), slice(4, 8)]
    with pytest.raises(ConfigurationError, match="batch 6 is not divisible by the 4"):
        shard_rows(6, 4, 0)
    with pytest.raises(ConfigurationError, match="--batch 9 is not divisible by --nproc 2"):
        check_processes(9, "cpu", 2)


def test_the_shards_of_a_batch_draw_together_the_single_process_numbers():
    """Union over shards = the one-process draw, and every shard leaves the generator where one process does."""
    like = torch.zeros(6, 1, 4, 4)
    one = torch.Generator().manual_seed(3)
    expected = (draw_randn(like.shape, like, one), draw_rand(6, like, one))
    shards = []
    for rows in (slice(0, 2), slice(2, 4), slice(4, 6)):
        gen = torch.Generator().manual_seed(3)
        shard = BatchShard(gen, rows.start, rows.stop, 6)
        shards.append((draw_randn((2, 1, 4, 4), like, shard), draw_rand(2, like, shard)))
        assert torch.equal(gen.get_state(), one.get_state())
    for got, want in zip(zip(*shards), expected):
        assert torch.equal(torch.cat(got), want)
    with pytest.raises(ValueError, match="a draw for 3 rows from a shard of 2 rows"):
        draw_rand(3, like, BatchShard(torch.Generator(), 0, 2, 6))


# ---------------------------------------------------------------------------------------------- two processes
def config(data: Path, **kw) -> TrainConfig:
    """MeanFlow (its loss calls the network inside torch.func.jvp) with the MP regularizer (a batch-coupled term)."""
    kw = {"epochs": 1, "ae_epochs": 1, "batch": 8, **kw}
    return TrainConfig(data=str(data), model=ModelConfig(model="latent-mf", reg="mp", width=8), **kw)


@pytest.fixture(scope="module")
def single(tmp_path_factory) -> dict[str, Path]:
    """One-process runs: ``1`` after autoencoder epoch 1 + generator epoch 1, ``2`` that resumed to generator
    epoch 2 (2 batches of 8 per epoch)."""
    base = tmp_path_factory.mktemp("ddp")
    data = write_synthetic_dataset(base / "d.h5", train_trajectories=3, test_trajectories=1, snapshots=8)
    train(config(data), base / "1")
    shutil.copytree(base / "1", base / "2")
    train(config(data, epochs=2), base / "2", resume=True)
    return {"data": data, "1": base / "1", "2": base / "2"}


def torchrun(*args: str) -> subprocess.CompletedProcess:
    """``python -m torch.distributed.run --nproc-per-node 2 -m cli.main train --threads 1 ARGS``."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2",
                           "-m", "cli.main", "train", "--threads", "1", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def assert_same_training(a: Path, b: Path) -> None:
    """Same epochs, losses within float-summation tolerance, same weights and the same random streams."""
    ha, hb = (json.loads((d / "run.json").read_text())["history"] for d in (a, b))
    assert [(h["phase"], h["epoch"]) for h in ha] == [(h["phase"], h["epoch"]) for h in hb]
    for x, y in zip(ha, hb):
        assert y["train_loss"] == pytest.approx(x["train_loss"], rel=RTOL)
        assert y["val_loss"] == pytest.approx(x["val_loss"], rel=RTOL)
        assert y["components"] == pytest.approx(x["components"], rel=RTOL)
    ca, cb = read_checkpoint(a / "last.pt"), read_checkpoint(b / "last.pt")
    assert ca.keys() == cb.keys() and ca["model"].keys() == cb["model"].keys()
    for k in ca["model"]:
        torch.testing.assert_close(cb["model"][k], ca["model"][k], rtol=RTOL, atol=RTOL)
    for key in ("shuffle", "noise", "torch"):
        assert torch.equal(ca["rng"][key], cb["rng"][key])


def test_two_gloo_processes_train_as_one_process_and_their_checkpoint_resumes_in_one(single, tmp_path):
    """Autoencoder (MP on the gathered batch) then MeanFlow generator: the 2-process run has the losses and
    weights of one process with the same global batch of 8; its checkpoint (no ``module.`` prefixes, process
    0 alone writing) continues in one process as the single-process run continues."""
    double = tmp_path / "double"
    proc = torchrun("--data", str(single["data"]), "--model", "latent-mf", "--reg", "mp", "--width", "8",
                    "--batch", "8", "--epochs", "1", "--ae-epochs", "1", "--out", str(double))
    assert proc.stdout.count("kolmo train") == 1  # one summary: process 0's
    assert sorted(p.name for p in double.iterdir()) == ["best.pt", "last.pt", "run.json"]
    assert_same_training(single["1"], double)
    ckpt = read_checkpoint(double / "last.pt")
    assert not any(k.startswith("module.") for k in ckpt["model"])
    assert [h["processes"] for h in ckpt["history"]] == [2, 2]
    assert ckpt["run_id"] == json.loads((double / "run.json").read_text())["run_id"]

    train(config(single["data"], epochs=2), double, resume=True)
    assert_same_training(single["2"], double)
    assert [h["processes"] for h in read_checkpoint(double / "last.pt")["history"]] == [2, 2, 1]


def test_a_single_process_checkpoint_resumes_under_two_processes(single, tmp_path):
    shutil.copytree(single["1"], tmp_path / "double")
    torchrun("--out", str(tmp_path / "double"), "--resume", "--epochs", "2")
    assert_same_training(single["2"], tmp_path / "double")
    assert [h["processes"] for h in read_checkpoint(tmp_path / "double" / "last.pt")["history"]] == [1, 1, 2]
