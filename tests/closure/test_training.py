"""closure.training: exact resume, determinism, refusal of foreign checkpoints, losses, and that it learns."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from closure.data import ClosurePairs, read_info
from closure.errors import CheckpointError, CheckpointMismatchError, DeviceError
from closure.evaluation import evaluate_run
from closure.models import ClosureModel, ModelConfig
from closure.paths import ve_std
from closure.regularizers import geometry_aware_loss, metric_preserving_loss, scaled_geometry_aware_loss
from closure.training import TrainConfig, autoencoder_loss, joint_loss, load_run, loss_weights, read_checkpoint, \
    train
from kolmo.errors import ConfigurationError, OutputExistsError
from tests.closure.synthetic import write_synthetic_dataset



@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return write_synthetic_dataset(tmp_path_factory.mktemp("train") / "d.h5", train_trajectories=4, snapshots=12)


def config(data: Path, model: str = "latent-fm", reg: str = "mp", **kw) -> TrainConfig:
    kw = {"epochs": 2, "ae_epochs": 1, "batch": 8, **kw}
    return TrainConfig(data=str(data), model=ModelConfig(model=model, reg=reg, width=8), **kw)


def same_weights(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_two_epochs_then_resume_to_four_equals_four_epochs_bitwise(data, tmp_path):
    """Autoencoder phase (MP) then generator: interrupt the generator after 2 epochs, resume to 4."""
    a = train(config(data, epochs=2), tmp_path / "a")
    coders_before = {k: v for k, v in read_checkpoint(tmp_path / "a" / "last.pt")["model"].items()
                     if not k.startswith("network")}
    resumed = train(config(data, epochs=4), tmp_path / "a", resume=True)
    straight = train(config(data, epochs=4), tmp_path / "b")
    ra, rb = read_checkpoint(tmp_path / "a" / "last.pt"), read_checkpoint(tmp_path / "b" / "last.pt")
    assert same_weights(ra["model"], rb["model"])
    assert [h["train_loss"] for h in resumed.history] == [h["train_loss"] for h in straight.history]
    assert [h["val_loss"] for h in resumed.history] == [h["val_loss"] for h in straight.history]
    assert resumed.run_id == a.run_id != straight.run_id
    for key in ("shuffle", "noise", "torch"):
        assert torch.equal(ra["rng"][key], rb["rng"][key])
    assert torch.equal(ra["optimizer"]["state"][0]["exp_avg"], rb["optimizer"]["state"][0]["exp_avg"])
    # the generator phase trains the network only: coders and their standardisation stay frozen
    coders_after = {k: v for k, v in ra["model"].items() if not k.startswith("network")}
    assert same_weights(coders_before, coders_after)
    assert [(h["phase"], h["epoch"]) for h in straight.history] == [("autoencoder", 1)] + [
        ("generator", e) for e in range(1, 5)]
    assert set(straight.throughput) == {"autoencoder", "generator"} and straight.throughput["generator"] > 0


def test_training_is_deterministic_with_a_seed(data, tmp_path):
    cfg = config(data, model="si", reg="none", epochs=1)
    train(cfg, tmp_path / "a")
    train(cfg, tmp_path / "b")
    train(replace(cfg, seed=1), tmp_path / "c")
    weights = [read_checkpoint(tmp_path / r / "last.pt")["model"] for r in "abc"]
    assert same_weights(weights[0], weights[1]) and not same_weights(weights[0], weights[2])


def test_best_checkpoint_holds_the_lowest_validation_loss_of_the_generator_phase(data, tmp_path):
    result = train(config(data, model="fm", reg="none", epochs=3, lr=3e-3), tmp_path / "r")
    gen = [h["val_loss"] for h in result.history]
    best = read_checkpoint(tmp_path / "r" / "best.pt")
    assert best["best"]["val_loss"] == min(gen) and best["epoch"] == 1 + gen.index(min(gen))
    run = load_run(tmp_path / "r")
    assert run.checkpoint.name == "best.pt" and run.normalisation.closure_std > 0 and not run.model.training
    assert (tmp_path / "r" / "run.json").is_file()


def test_a_checkpoint_of_another_family_or_dataset_is_refused(data, tmp_path):
    train(config(data, epochs=1), tmp_path / "r")
    with pytest.raises(CheckpointMismatchError,
                       match=r"trained as latent-fm \(reg mp.*model\.model: 'latent-fm' in the checkpoint, 'dm' asked"):
        train(config(data, model="dm", reg="none", epochs=2), tmp_path / "r", resume=True)
    with pytest.raises(CheckpointMismatchError, match=r"lr: 0.001 in the checkpoint, 0.01 asked"):
        train(config(data, epochs=2, lr=1e-2), tmp_path / "r", resume=True)
    other = write_synthetic_dataset(tmp_path / "other.h5", train_trajectories=4, snapshots=12, seed=5)
    with pytest.raises(CheckpointMismatchError, match="dataset fingerprint"):
        train(replace(config(data, epochs=2), data=str(other)), tmp_path / "r", resume=True)


def test_run_directory_rules_and_corrupt_checkpoints(data, tmp_path):
    (tmp_path / "exists").mkdir()
    with pytest.raises(OutputExistsError, match="exists; choose another --out, or pass --resume"):
        train(config(data), tmp_path / "exists")
    with pytest.raises(CheckpointError, match="does not exist"):
        train(config(data), tmp_path / "nothing", resume=True)
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "last.pt").write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(CheckpointError, match="unreadable or corrupt"):
        train(config(data), bad, resume=True)
    torch.save({"weights": torch.zeros(2)}, bad / "best.pt")
    with pytest.raises(CheckpointError, match="is not a kolmo-closure-checkpoint file"):
        load_run(bad)


def test_cuda_asked_for_without_a_gpu_is_a_typed_error_not_a_fallback(data, tmp_path, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(DeviceError, match=r"device 'cuda' was asked for but torch.cuda.is_available\(\) is False"):
        train(config(data, device="cuda"), tmp_path / "r")
    assert not (tmp_path / "r").exists()


def test_bad_training_settings_are_configuration_errors(data, tmp_path):
    with pytest.raises(ConfigurationError, match="batch = 4 with MP needs more than k = 5"):
        train(config(data, batch=4), tmp_path / "r")
    with pytest.raises(ConfigurationError, match="regularizer 'mp' applies to latent models only"):
        train(config(data, model="fm"), tmp_path / "r")


def test_autoencoder_loss_is_reconstruction_plus_weighted_mp_plus_omega_reconstruction():
    torch.manual_seed(0)
    model = ClosureModel(ModelConfig(model="latent-fm", reg="mp", grid=16, width=8))
    cfg = TrainConfig(data="-", model=model.config)
    w, h = torch.randn(8, 1, 16, 16), torch.randn(8, 1, 16, 16)
    total, parts = autoencoder_loss(model, w, h, cfg)
    z = model.target_coder.encode(h)
    mse_h = torch.mean((model.target_coder.decode(z) - h) ** 2)
    mse_w = torch.mean((model.condition_coder(w) - w) ** 2)
    expected = mse_h + 1e-2 * metric_preserving_loss(z, h, k=5) + mse_w
    torch.testing.assert_close(total, expected)
    assert set(parts) == {"mse_H", "mp", "mse_w"}


def test_joint_generator_loss_back_propagates_into_both_encoders():
    torch.manual_seed(0)
    model = ClosureModel(ModelConfig(model="latent-fm", reg="joint", grid=16, width=8))
    cfg = TrainConfig(data="-", model=model.config)
    total, parts = joint_loss(model, torch.randn(8, 1, 16, 16), torch.randn(8, 1, 16, 16), cfg,
                              torch.Generator().manual_seed(0))
    torch.testing.assert_close(total, 1000 * parts["mse_H"] + parts["mse_w"] + 0.1 * parts["kl"] + parts["gen"])
    parts["gen"].backward()  # the generator term alone reaches both encoders, not the decoders
    for coder in (model.target_coder, model.condition_coder):
        assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in coder.encoder.parameters())
        assert all(p.grad is None for p in coder.decoder.parameters())


def test_physical_flow_matching_learns_the_conditional_mean_of_a_synthetic_closure(tmp_path):
    """H = −0.5 ω + 0.2 + 0.1 ε: the best ensemble mean leaves ‖0.1 ε‖/‖H‖ ≈ 0.18; a model that ignores ω
    scores ≥ 1. After ~2,000 training samples (a few seconds) one-step FM must be below 0.4."""
    data = write_synthetic_dataset(tmp_path / "d.h5", train_trajectories=6, snapshots=40, s=0.1)
    cfg = TrainConfig(data=str(data), model=ModelConfig(model="fm", width=8), epochs=10, batch=16, lr=3e-3)
    train(cfg, tmp_path / "r")
    res = evaluate_run(tmp_path / "r", data, samples=16, conditions=4)
    assert res["nfe"] == 1 and res["ensemble_mean_rel_error"] < 0.4
    assert "knn_preservation" not in res  # no latent: no latent geometry


def test_diffusion_state_is_scaled_to_a_quarter_of_the_reference_start_std(data, tmp_path):
    """The VE sampler starts from N(0, σ_{t_max}²), σ_{0.1} = 0.38: DM states get std σ_{t_max}/4 (not 1)."""
    train(config(data, model="dm", reg="none", epochs=1), tmp_path / "p")
    model = load_run(tmp_path / "p", "last").model
    target = 0.25 * float(ve_std(torch.tensor(0.1, dtype=torch.float64), 30.0))
    assert model.config.state_std() == pytest.approx(target)
    h = ClosurePairs(data, "train", read_info(data).normalisation).closure
    with torch.no_grad():
        assert float(model.encode_target(h).std()) == pytest.approx(target, rel=0.05)
        torch.testing.assert_close(model.decode_target(model.encode_target(h)), h)
    train(config(data, model="latent-dm", reg="joint", epochs=1), tmp_path / "j")
    joint = load_run(tmp_path / "j", "last").model
    assert float(joint.latent_scale) == pytest.approx(1 / (0.25 * float(ve_std(torch.tensor(0.4), 30.0))), rel=1e-6)


def test_reflow_student_starts_from_its_teacher_trains_on_its_couplings_and_resumes_exactly(data, tmp_path):
    """latent-reflow: the teacher's coders and standardisation are copied and stay frozen, only the
    network trains; couplings are redrawn identically on resume (2 + 1 epochs == 3 epochs, bitwise)."""
    train(config(data, epochs=2), tmp_path / "teacher")
    student = TrainConfig(data=str(data), model=ModelConfig(model="latent-reflow"), epochs=2, batch=8,
                          teacher=str(tmp_path / "teacher"), teacher_steps=4)
    res = train(student, tmp_path / "s")
    assert [h["phase"] for h in res.history] == ["generator", "generator"]
    teacher, loaded = load_run(tmp_path / "teacher").model, load_run(tmp_path / "s", "last")
    assert loaded.config.model.model == "latent-reflow" and loaded.config.model.width == 8  # teacher's architecture
    t_state, s_state = teacher.state_dict(), loaded.model.state_dict()
    assert same_weights({k: v for k, v in t_state.items() if not k.startswith("network")},
                        {k: v for k, v in s_state.items() if not k.startswith("network")})
    assert not same_weights({k: v for k, v in t_state.items() if k.startswith("network")},
                            {k: v for k, v in s_state.items() if k.startswith("network")})
    assert loaded.model.nfe() == 1
    train(replace(student, epochs=1), tmp_path / "r")
    train(replace(student, epochs=2), tmp_path / "r", resume=True)
    assert same_weights(read_checkpoint(tmp_path / "r" / "last.pt")["model"],
                        read_checkpoint(tmp_path / "s" / "last.pt")["model"])


def test_reflow_needs_a_flow_matching_teacher_on_the_same_data(data, tmp_path):
    with pytest.raises(ConfigurationError, match="pass --teacher RUN_DIR"):
        train(TrainConfig(data=str(data), model=ModelConfig(model="latent-reflow")), tmp_path / "x")
    with pytest.raises(ConfigurationError, match="--teacher applies to reflow models only"):
        train(TrainConfig(data=str(data), model=ModelConfig(model="latent-fm"), teacher="t"), tmp_path / "y")
    train(config(data, model="latent-si", reg="none", epochs=1), tmp_path / "si")
    with pytest.raises(ConfigurationError, match="needs a flow-matching teacher"):
        train(TrainConfig(data=str(data), model=ModelConfig(model="latent-reflow"), teacher=str(tmp_path / "si")),
              tmp_path / "z")


def test_meanflow_model_trains_and_samples_in_one_network_evaluation(data, tmp_path):
    res = train(config(data, model="latent-mf", epochs=1), tmp_path / "mf")
    run = load_run(res.run_dir)
    assert run.model.fno.config.two_times and run.model.nfe() == 1
    omega = torch.randn(3, 1, 16, 16)
    h = run.model.sample(omega, torch.randn(run.model.noise_shape(3)))
    assert h.shape == (3, 1, 16, 16) and torch.isfinite(h).all()


def test_mp_on_data_smaller_than_its_neighbourhood_clamps_k_instead_of_crashing(tmp_path):
    """3 training pairs per batch, k = 5: the MP loss uses the 2 neighbours there are."""
    small = write_synthetic_dataset(tmp_path / "small.h5", train_trajectories=2, test_trajectories=1, snapshots=3)
    result = train(config(small, epochs=1, ae_epochs=1, batch=8), tmp_path / "run")
    assert result.history[0]["phase"] == "autoencoder" and "mp" in result.history[0]["components"]


def test_too_little_training_data_is_refused_naming_the_dataset_size(tmp_path):
    tiny = write_synthetic_dataset(tmp_path / "tiny.h5", train_trajectories=2, test_trajectories=1, snapshots=1)
    with pytest.raises(ConfigurationError, match=r"tiny.h5 leaves 1 training pair\(s\) after holding out 1 "
                                                 r"validation trajectory\(ies\) of its 2; expected at least 2"):
        train(config(tiny, epochs=1), tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_epochs_below_one_are_refused():
    with pytest.raises(ConfigurationError, match="epochs = 0; expected >= 1"):
        config(Path("-"), epochs=0).validate()


def test_ga_at_the_median_scale_is_scaled_stress_and_needs_the_median():
    torch.manual_seed(0)
    model = ClosureModel(ModelConfig(model="latent-fm", reg="ga", grid=16, width=8))
    w, h = torch.randn(8, 1, 16, 16), torch.randn(8, 1, 16, 16)
    u = 40.0 * torch.randn(8, 30)
    d = torch.cdist(u, u)
    cfg = TrainConfig(data="-", model=model.config)
    assert cfg.ga_scale == "median" and cfg.standardise
    total, parts = autoencoder_loss(model, w, h, cfg, d, ga_median=120.0)
    z = model.target_coder.encode(h)
    torch.testing.assert_close(parts["ga"], scaled_geometry_aware_loss(z, d, 120.0))
    torch.testing.assert_close(total, parts["mse_H"] + 1e-3 * parts["ga"] + parts["mse_w"])
    assert {k: v for k, v in loss_weights(cfg, "autoencoder").items() if k in parts} == \
        {"mse_H": 1.0, "ga": 1e-3, "mse_w": 1.0}
    ref = replace(cfg, ga_scale="reference")
    torch.testing.assert_close(autoencoder_loss(model, w, h, ref, d)[1]["ga"], geometry_aware_loss(z, d))
    with pytest.raises(ConfigurationError, match="needs the training-set median"):
        autoencoder_loss(model, w, h, cfg, d)
    with pytest.raises(ConfigurationError, match="unknown ga_scale 'mean'; valid: reference, median"):
        replace(cfg, ga_scale="mean").validate()


def test_history_logs_every_loss_term_unweighted_and_weighted_and_raw_latents_skip_standardisation(data, tmp_path):
    result = train(config(data, reg="ga", epochs=1, ga_weight=0.5, standardise=False, ga_landmarks=None),
                   tmp_path / "r")
    ae, gen = result.history
    assert set(ae["components"]) == {"mse_H", "ga", "mse_w"} and 0.0 < ae["components"]["ga"] <= 1.0
    assert ae["weighted"]["ga"] == pytest.approx(0.5 * ae["components"]["ga"])
    for entry in (ae, gen):
        assert sum(entry["weighted"].values()) == pytest.approx(entry["train_loss"], rel=1e-6)
    summary = json.loads((tmp_path / "r" / "run.json").read_text())
    assert summary["ga_distance_median"] > 0 and summary["history"][0]["weighted"] == ae["weighted"]
    model = load_run(tmp_path / "r", "last").model
    assert (float(model.latent_shift), float(model.latent_scale)) == (0.0, 1.0)
    assert (float(model.condition_shift), float(model.condition_scale)) == (0.0, 1.0)


def test_a_checkpoint_from_before_ga_scale_resumes_as_the_reference_scale(data, tmp_path):
    train(config(data, epochs=1), tmp_path / "r")
    ckpt = read_checkpoint(tmp_path / "r" / "last.pt")
    for key in ("ga_scale", "standardise"):
        del ckpt["config"][key]
    torch.save(ckpt, tmp_path / "r" / "last.pt")
    assert TrainConfig.from_dict(ckpt["config"]).ga_scale == "reference"
    with pytest.raises(CheckpointMismatchError, match="ga_scale: 'reference' in the checkpoint, 'median' asked"):
        train(config(data, epochs=2), tmp_path / "r", resume=True)
    resumed = train(config(data, epochs=2, ga_scale="reference"), tmp_path / "r", resume=True)
    assert [h["epoch"] for h in resumed.history if h["phase"] == "generator"] == [1, 2]


@pytest.mark.parametrize("weight", [-0.5, float("nan"), float("inf")])
def test_ga_weight_must_be_a_finite_non_negative_number(weight):
    with pytest.raises(ConfigurationError, match=f"ga_weight = {weight}; expected a finite number >= 0"):
        config(Path("-"), ga_weight=weight).validate()
