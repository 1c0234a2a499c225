"""closure.models: every family assembles by name, noise layouts, NFE, FLOPs and parameter accounting."""

from __future__ import annotations

import pytest
import torch

from closure.autoencoders import BlockAverageEncoder, ConvAutoencoder, PCAAutoencoder
from closure.models import MODELS, ClosureModel, FieldIdentity, ModelConfig
from closure.networks import count_flops
from closure.paths import VEScoreNetwork
from kolmo.errors import ConfigurationError



def tiny(model: str, **kw) -> ClosureModel:
    return ClosureModel(ModelConfig(model=model, grid=16, width=8, **kw))


@pytest.mark.parametrize("name", MODELS)
def test_every_family_samples_one_closure_per_condition(name):
    m = tiny(name).eval()
    omega = torch.randn(3, 1, 16, 16)
    noise = torch.randn(m.noise_shape(3))
    with torch.no_grad():
        h = m.sample(omega, noise)
        again = m.sample(omega, noise)
    assert h.shape == (3, 1, 16, 16) and torch.isfinite(h).all()
    assert torch.equal(h, again)  # explicit noise: reproducible


def test_parts_of_each_family():
    physical = tiny("dm")
    assert isinstance(physical.target_coder, FieldIdentity) and isinstance(physical.network, VEScoreNetwork)
    latent = tiny("latent-fm", reg="mp")
    assert isinstance(latent.target_coder, ConvAutoencoder) and isinstance(latent.condition_coder, ConvAutoencoder)
    linear = tiny("latent-si", autoencoder="pca", condition="pooled")
    assert isinstance(linear.target_coder, PCAAutoencoder) and isinstance(linear.condition_coder, BlockAverageEncoder)
    assert linear.config.state_size == 4 and physical.config.state_size == 16
    assert latent.fno.config.modes == 2 and physical.fno.config.modes == 6  # latent modes clipped to n / 2


def test_noise_layout_and_network_evaluations_per_sampler():
    assert tiny("latent-fm").noise_shape(5) == [5, 1, 4, 4] and tiny("latent-fm").nfe() == 1
    assert tiny("fm").nfe(steps=4) == 4
    assert tiny("si").noise_shape(2) == [11, 2, 1, 16, 16] and tiny("si").nfe() == 10
    assert tiny("dm").noise_shape(2, steps=3) == [4, 2, 1, 16, 16] and tiny("dm").nfe() == 10
    heun = tiny("latent-dm", dm_sampler="heun")
    assert heun.noise_shape(2) == [2, 1, 4, 4] and heun.nfe() == 35  # 18 steps, 2·18 − 1
    assert tiny("latent-dm").make_sampler().t_max == 0.4 and tiny("dm").make_sampler().t_max == 0.1


def test_si_samples_depend_on_the_per_step_noise_and_the_empirical_source_ignores_noise0():
    m = tiny("si").eval()
    omega = torch.randn(2, 1, 16, 16)
    noise = torch.randn(m.noise_shape(2))
    other = noise.clone()
    other[3] += 1.0
    with torch.no_grad():
        assert not torch.equal(m.sample(omega, noise), m.sample(omega, other))
    emp = tiny("si", si_source="empirical").eval()
    shifted = noise.clone()
    shifted[0] += 5.0
    with torch.no_grad():
        assert torch.equal(emp.sample(omega, noise), emp.sample(omega, shifted))


@torch.no_grad()
def test_latent_standardisation_maps_latents_to_unit_scale_and_back():
    m = tiny("latent-fm").eval()
    h = torch.randn(4, 1, 16, 16)
    z = m.target_coder.encode(h)
    m.set_standardisation((float(z.mean()), float(z.std())), (0.0, 1.0))
    x1 = m.encode_target(h)
    assert float(x1.mean()) == pytest.approx(0.0, abs=1e-6) and float(x1.std()) == pytest.approx(1.0, abs=1e-5)
    torch.testing.assert_close(m.decode_target(x1), m.target_coder.decode(z))
    with pytest.raises(ConfigurationError, match="positive scale"):
        m.set_standardisation((0.0, 0.0), (0.0, 1.0))


def test_pca_fit_gives_an_exact_latent_for_fields_in_the_span():
    m = tiny("latent-fm", autoencoder="pca")
    train = torch.randn(10, 1, 16, 16)
    m.fit_pca(train)
    torch.testing.assert_close(m.decode_target(m.encode_target(train)), train, rtol=1e-4, atol=1e-4)


def test_flops_add_condition_encoder_network_and_decoder():
    m = tiny("latent-fm", reg="mp")
    enc = count_flops(m.condition_coder.encoder, torch.zeros(1, 1, 16, 16))
    dec = count_flops(m.target_coder.decoder, torch.zeros(1, 1, 4, 4))
    net = m.fno.flops_per_sample(4)
    assert m.flops_per_sample() == pytest.approx(enc + net + dec)
    assert m.flops_per_sample(steps=3) == pytest.approx(enc + 3 * net + dec)
    assert tiny("dm").flops_per_sample() == pytest.approx(10 * tiny("dm").fno.flops_per_sample(16))
    pca = tiny("latent-fm", autoencoder="pca", condition="pooled")
    assert pca.flops_per_sample() == pytest.approx(pca.fno.flops_per_sample(4) + 2 * 16 * 256)


def test_parameter_counts_sum_over_the_parts():
    counts = tiny("latent-fm", reg="ga").parameter_counts()
    assert counts["total"] == counts["target_coder"] + counts["condition_coder"] + counts["network"]
    assert counts["target_coder"] > 0 and counts["condition_coder"] > 0
    assert tiny("fm").parameter_counts()["target_coder"] == 0


@pytest.mark.parametrize("kw, match", [
    ({"model": "latent-gan"}, "unknown model 'latent-gan'; valid: latent-fm"),
    ({"model": "dm", "reg": "mp"}, "regularizer 'mp' applies to latent models only"),
    ({"model": "latent-fm", "reg": "ga", "autoencoder": "pca"}, "needs a trainable target autoencoder"),
    ({"model": "latent-fm", "condition": "attention"}, "unknown condition 'attention'"),
    ({"model": "latent-fm", "latent_size": 3}, "N / n must be a power of two"),
    ({"model": "fm", "modes": 9}, "FNO modes 9 do not fit a 16² state"),
])
def test_impossible_combinations_are_refused_with_the_valid_choices(kw, match):
    with pytest.raises(ConfigurationError, match=match):
        ClosureModel(ModelConfig(grid=16, **kw))


def test_config_round_trips_through_its_dict():
    cfg = ModelConfig(model="latent-dm", reg="mp", grid=32, ae_channels=(4, 8, 16), steps=5)
    assert ModelConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ConfigurationError, match="unknown model settings"):
        ModelConfig.from_dict({**cfg.to_dict(), "depth": 3})
