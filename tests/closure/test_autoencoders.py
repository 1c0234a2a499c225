"""Tests of closure.autoencoders: shapes, export, periodicity, cost, and the exactness of the PCA latent."""

import pytest
import torch

from closure.autoencoders import BlockAverageEncoder, ConvAutoencoder, PCAAutoencoder
from closure.networks import count_flops



def _fields_in_a_subspace(n_fields: int, rank: int, size: int = 64) -> torch.Tensor:
    """``n_fields`` fields ``μ + Σ_k a_k φ_k`` on a ``rank``-dimensional subspace (float64)."""
    basis = torch.randn(rank, size * size, dtype=torch.float64)
    mean = torch.randn(size * size, dtype=torch.float64)
    coeffs = torch.randn(n_fields, rank, dtype=torch.float64)
    return (coeffs @ basis + mean).reshape(n_fields, 1, size, size)


def test_conv_autoencoder_maps_64_squared_fields_to_1x16x16_latents_and_back():
    ae = ConvAutoencoder()
    x = torch.randn(2, 1, 64, 64)
    z = ae.encode(x)
    assert z.shape == (2, 1, 16, 16)
    assert ae.decode(z).shape == (2, 1, 64, 64)
    assert ae(x).shape == (2, 1, 64, 64)


def test_conv_autoencoder_is_scriptable_and_scripted_equals_eager():
    ae = ConvAutoencoder().eval()
    scripted = torch.jit.script(ae)
    x = torch.randn(1, 1, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(scripted.encode(x), ae.encode(x))
        torch.testing.assert_close(scripted.decode(ae.encode(x)), ae.decode(ae.encode(x)))
        torch.testing.assert_close(scripted(x), ae(x))


def test_conv_autoencoder_commutes_with_shifts_by_whole_latent_cells():
    """Circular padding keeps the periodic symmetry: a shift by 4 fine cells is a shift by 1 latent cell."""
    ae = ConvAutoencoder().double().eval()
    x = torch.randn(1, 1, 64, 64, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(ae.encode(torch.roll(x, (8, -4), (-2, -1))), torch.roll(ae.encode(x), (2, -1), (-2, -1)))
        z = ae.encode(x)
        torch.testing.assert_close(ae.decode(torch.roll(z, (1, 3), (-2, -1))), torch.roll(ae.decode(z), (4, 12), (-2, -1)))


def test_conv_decoder_costs_under_30_megaflops_per_sample():
    ae = ConvAutoencoder()
    assert count_flops(ae.decoder, torch.randn(1, 1, 16, 16)) < 30e6
    assert count_flops(ae.encoder, torch.randn(1, 1, 64, 64)) < 30e6


def test_conv_autoencoder_rejects_inconsistent_sizes():
    with pytest.raises(ValueError, match="power of two"):
        ConvAutoencoder(field_size=64, latent_size=24)
    with pytest.raises(ValueError, match="channels needs 3 entries"):
        ConvAutoencoder(channels=(8, 16))
    with pytest.raises(ValueError, match=r"x must have shape \(B, 1, 64, 64\)"):
        ConvAutoencoder().encode(torch.randn(1, 1, 32, 32))


def test_pca_autoencoder_reconstructs_fields_in_its_span_exactly():
    train = _fields_in_a_subspace(40, rank=30)
    ae = PCAAutoencoder.fit(train)
    fresh = _fields_in_a_subspace(1, rank=30)  # different subspace: not reconstructed
    torch.testing.assert_close(ae(train), train, atol=1e-9, rtol=0)
    assert (ae(fresh) - fresh).norm() > 1e-3 * fresh.norm()
    # any affine combination of training fields lies in μ + span(V_r)
    w = torch.randn(40, dtype=torch.float64)
    w = w / w.sum()
    combo = torch.einsum("m,mcij->cij", w, train)[None]
    torch.testing.assert_close(ae(combo), combo, atol=1e-8, rtol=0)


def test_pca_latent_preserves_distances_between_fields_in_its_span():
    train = _fields_in_a_subspace(40, rank=30)
    ae = PCAAutoencoder.fit(train)
    z = ae.encode(train).reshape(40, -1)
    x = train.reshape(40, -1)
    exact = "donot_use_mm_for_euclid_dist"
    torch.testing.assert_close(
        torch.cdist(z, z, compute_mode=exact), torch.cdist(x, x, compute_mode=exact), atol=1e-9, rtol=1e-10
    )


def test_pca_latent_beyond_the_data_rank_is_identically_zero():
    train = _fields_in_a_subspace(40, rank=30)
    z = PCAAutoencoder.fit(train).encode(train).reshape(40, -1)
    assert z[:, :30].abs().max() > 1.0
    assert z[:, 30:].abs().max() == 0.0


def test_whitened_pca_latent_has_unit_training_variance():
    train = _fields_in_a_subspace(300, rank=256)
    ae = PCAAutoencoder.fit(train, whiten=True)
    z = ae.encode(train).reshape(300, -1)
    torch.testing.assert_close(z.var(dim=0), torch.ones(256, dtype=torch.float64), atol=1e-8, rtol=0)
    torch.testing.assert_close(z.mean(dim=0), torch.zeros(256, dtype=torch.float64), atol=1e-9, rtol=0)
    torch.testing.assert_close(ae(train), train, atol=1e-8, rtol=0)


def test_pca_autoencoder_is_scriptable():
    ae = PCAAutoencoder.fit(_fields_in_a_subspace(20, rank=10).float())
    scripted = torch.jit.script(ae)
    x = torch.randn(3, 1, 64, 64)
    torch.testing.assert_close(scripted.encode(x), ae.encode(x))
    torch.testing.assert_close(scripted.decode(ae.encode(x)), ae.decode(ae.encode(x)))


def test_pca_fit_rejects_bad_training_sets():
    with pytest.raises(ValueError, match=r"\(M, 1, N, N\)"):
        PCAAutoencoder.fit(torch.randn(10, 64, 64))
    with pytest.raises(ValueError, match="at least 2"):
        PCAAutoencoder.fit(torch.randn(1, 1, 64, 64))
    with pytest.raises(ValueError, match="exceeds"):
        PCAAutoencoder.fit(torch.randn(4, 1, 8, 8), latent_size=16)


def test_block_average_encoder_is_the_cell_mean():
    enc = BlockAverageEncoder(4)
    x = torch.randn(2, 1, 64, 64)
    z = enc.encode(x)
    assert z.shape == (2, 1, 16, 16)
    torch.testing.assert_close(z[0, 0, 2, 3], x[0, 0, 8:12, 12:16].mean())
    torch.testing.assert_close(torch.jit.script(enc)(x), z)
    assert sum(p.numel() for p in enc.parameters()) == 0
    with pytest.raises(ValueError, match="divisible by 4"):
        enc(torch.randn(1, 1, 10, 10))
