"""kolmo train / evaluate / export: round trip on a tiny synthetic dataset, resume, typed one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from cli.main import app
from tests.closure.synthetic import write_synthetic_dataset

runner = CliRunner()


@pytest.fixture(autouse=True)
def single_thread():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def test_train_resume_evaluate_export_info_round_trip(tmp_path: Path) -> None:
    data = write_synthetic_dataset(tmp_path / "d.h5", train_trajectories=3, snapshots=11)
    run = tmp_path / "run"
    common = ["--threads", "1"]
    r = runner.invoke(app, ["train", "--data", str(data), "--model", "latent-fm", "--reg", "mp", "--epochs", "1",
                            "--ae-epochs", "1", "--batch", "8", "--width", "8", "--out", str(run), *common])
    assert r.exit_code == 0, r.output
    assert "autoencoder" in r.output and "throughput generator" in r.output and "samples/s" in r.output
    assert "loss terms, autoencoder epoch 1" in r.output and "mp " in r.output and "(weighted " in r.output
    r = runner.invoke(app, ["train", "--out", str(run), "--resume", "--epochs", "2", *common])
    assert r.exit_code == 0, r.output
    assert json.loads((run / "run.json").read_text())["history"][-1]["epoch"] == 2
    r = runner.invoke(app, ["train", "--out", str(run), "--resume", "--model", "dm", "--epochs", "3", *common])
    assert r.exit_code == 3 and "CheckpointMismatchError" in r.output and "'dm' asked" in r.output
    assert "Traceback" not in r.output

    metrics = tmp_path / "m.json"
    r = runner.invoke(app, ["evaluate", "apriori", str(run), "--data", str(data), "--samples", "4", "--conditions", "2",
                            "--json", str(metrics), *common])
    assert r.exit_code == 0, r.output
    assert "ensemble_mean_rel_error" in r.output and "spread_skill" in r.output and "knn_preservation" in r.output
    res = json.loads(metrics.read_text())
    assert res["nfe"] == 1 and res["conditions"] == 2 and res["dataset_matches_training"] is True
    assert res["geometry_points"] == 22 and 0 <= res["trustworthiness"] <= 1

    art = tmp_path / "c.pt"
    r = runner.invoke(app, ["export", str(run), "--out", str(art), "--no-latency"])
    assert r.exit_code == 0, r.output
    assert "self-check" in r.output and art.is_file()
    r = runner.invoke(app, ["export", str(run), "--out", str(art)])
    assert r.exit_code == 2 and "OutputExistsError" in r.output
    r = runner.invoke(app, ["info", str(art)])
    if r.exit_code == 0:  # `kolmo info` of an artifact is the coupling package's reader
        assert "kolmo-closure" in r.output


def test_train_errors_are_one_line_and_typed(tmp_path: Path, monkeypatch) -> None:
    data = write_synthetic_dataset(tmp_path / "d.h5", train_trajectories=2, snapshots=4)
    r = runner.invoke(app, ["train", "--data", str(data), "--out", str(tmp_path / "r")])
    assert r.exit_code == 2 and "a new run needs --data DATA.h5 and --model NAME" in r.output
    r = runner.invoke(app, ["train", "--data", str(data), "--model", "latent-gan", "--out", str(tmp_path / "r")])
    assert r.exit_code == 2 and "unknown model 'latent-gan'" in r.output
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    r = runner.invoke(app, ["train", "--data", str(data), "--model", "fm", "--device", "cuda", "--out",
                            str(tmp_path / "r")])
    assert r.exit_code == 2 and "DeviceError" in r.output and "no CPU fallback" in r.output
    r = runner.invoke(app, ["evaluate", "apriori", str(tmp_path / "none"), "--data", str(data)])
    assert r.exit_code == 3 and "run directory" in r.output and "does not exist" in r.output
    assert "Traceback" not in r.output


def test_nproc_launches_exactly_the_torchrun_command_and_forwards_its_exit_status(tmp_path: Path, monkeypatch) -> None:
    """``kolmo train --nproc 2 ...`` = ``python -m torch.distributed.run --nproc-per-node 2 -m cli.main train`` with
    the options given (flags and negated flags as typed, defaults left out), and its exit status."""
    import sys

    import cli.torchrun

    data = write_synthetic_dataset(tmp_path / "d.h5", train_trajectories=2, snapshots=4)
    launched: list[list[str]] = []
    monkeypatch.setattr(cli.torchrun, "run_torchrun", lambda command: launched.append(command) or 7)
    r = runner.invoke(app, ["train", "--data", str(data), "--model", "latent-fm", "--nproc", "2", "--batch", "4",
                            "--no-standardise", "--lr", "0.002", "--out", str(tmp_path / "r")])
    assert r.exit_code == 7, r.output
    assert launched == [[sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "-m", "cli.main",
                         "train", "--out", str(tmp_path / "r"), "--data", str(data), "--model", "latent-fm",
                         "--batch", "4", "--lr", "0.002", "--no-standardise"]]
    assert not (tmp_path / "r").exists()  # only checked: the processes write it
    for key, value in {"RANK": "0", "WORLD_SIZE": "2", "LOCAL_RANK": "0", "MASTER_ADDR": "localhost",
                       "MASTER_PORT": "29500"}.items():
        monkeypatch.setenv(key, value)
    r = runner.invoke(app, ["train", "--data", str(data), "--model", "fm", "--nproc", "2", "--batch", "4",
                            "--out", str(tmp_path / "r")])
    assert r.exit_code == 2 and "--nproc 2 inside a torchrun process" in r.output and len(launched) == 1
