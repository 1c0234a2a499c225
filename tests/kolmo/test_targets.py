"""Closure targets: one home for their names, coarse models, noise floor and legacy names."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from kolmo.dataset import DatasetSpec, build_dataset
from kolmo.errors import ConfigurationError
from kolmo.forcing import QWienerForcing, member_generators
from kolmo.grid import Grid
from kolmo.pairs import open_pairs
from kolmo.presets import preset
from kolmo.targets import (TARGETS, coarse_model_mismatch, get_target, noise_floor, noise_point_std, read_target,
                           reduced_model, same_coarse_model)


def test_unknown_target_names_the_value_and_lists_the_valid_ones() -> None:
    with pytest.raises(ConfigurationError, match="unknown closure target 'les'; valid: missing-physics, "):
        get_target("les")


def test_reduced_models_keep_or_drop_advection_and_noise_as_each_target_defines() -> None:
    fine = preset("dong2026", 64)
    clean, noisy = reduced_model(fine, "missing-physics"), reduced_model(fine, "missing-physics-noisy")
    assert not clean.advection and clean.noise_sigma == fine.noise_sigma > 0 and clean.stepper == "cn-euler"
    assert not noisy.advection and noisy.noise_sigma == 0 and noisy.stepper == "cn-euler"
    les = reduced_model(preset("kolmogorov", 32), "sgs-resolved")
    assert les.advection and les.stepper == preset("kolmogorov", 32).stepper
    assert same_coarse_model("sgs", "sgs-resolved") and not same_coarse_model("missing-physics", "missing-physics-noisy")
    for name in TARGETS:  # each target's own coarse model passes its check
        base = preset("kolmogorov" if get_target(name).advection else "dong2026", 32)
        assert coarse_model_mismatch(name, reduced_model(base, name)) is None


def test_a_run_set_up_for_the_other_missing_physics_target_is_named_as_a_mismatch() -> None:
    fine = preset("dong2026", 64)
    msg = coarse_model_mismatch("missing-physics", reduced_model(fine, "missing-physics-noisy"))
    assert msg is not None and "missing-physics-noisy" in msg and "noise_sigma" in msg
    msg = coarse_model_mismatch("missing-physics-noisy", reduced_model(fine, "missing-physics"))
    assert msg is not None and "'missing-physics'" in msg
    assert "advection" in coarse_model_mismatch("sgs", reduced_model(fine, "missing-physics"))


def test_noise_point_std_equals_the_sample_std_of_the_solvers_own_draws() -> None:
    """Closed form 2 sqrt(sum a_k^2) / N^2 against 400 drawn fields (std error of the estimate ~3.5 %/sqrt(400·...))."""
    cfg = preset("dong2026", 32)
    grid = Grid(cfg.n, cfg.L, cfg.dealias)
    q = QWienerForcing(grid, cfg.dt, cfg.noise_sigma, cfg.noise_alpha, cfg.noise_kappa, member_generators(5, 400))
    fields = np.fft.irfft2(q.sample(np.empty((400, cfg.n, cfg.n // 2 + 1), dtype=complex)), s=(cfg.n, cfg.n))
    assert fields.std() == pytest.approx(noise_point_std(cfg), rel=0.03)
    # resolved spectrum: the same at 32² and 256² (the amplitude carries N²)
    assert noise_point_std(preset("dong2026", 256)) == pytest.approx(noise_point_std(cfg), rel=1e-3)
    assert noise_point_std(preset("kolmogorov", 32)) == 0.0


def test_noise_inclusive_dataset_states_its_floor_and_the_noise_free_one_does_not(tmp_path: Path) -> None:
    kw = dict(preset="dong2026", fine=32, coarse=8, trajectories=2, test_trajectories=1, burn_in=0.0, t_end=0.02,
              every=0.01, seed=3)
    build_dataset(DatasetSpec(target="missing-physics-noisy", **kw), tmp_path / "noisy.h5")
    build_dataset(DatasetSpec(target="missing-physics", **kw), tmp_path / "clean.h5")
    noisy, clean = open_pairs(tmp_path / "noisy.h5"), open_pairs(tmp_path / "clean.h5")
    stats = noisy.attrs["stats"]
    rms = np.hypot(stats["closure"]["mean"], stats["closure"]["std"])
    assert stats["irreducible_floor"] == pytest.approx(noise_floor(noisy.config, rms))
    assert 0 < stats["irreducible_floor"] < 1
    assert "irreducible_floor" not in clean.attrs["stats"]
    # the noise-free closure differs from the noisy one by exactly a field of the noise's size
    _, h_noisy = noisy[:]
    _, h_clean = clean[:]
    assert np.std(h_noisy - h_clean) == pytest.approx(noise_point_std(noisy.config), rel=0.5)


def test_files_written_before_the_target_split_read_missing_physics_as_the_noisy_definition() -> None:
    assert read_target("missing-physics", "kolmo-dataset", 1) == "missing-physics-noisy"
    assert read_target("missing-physics", "kolmo-closure", 1) == "missing-physics-noisy"
    assert read_target("missing-physics", "kolmo-dataset", 2) == "missing-physics"
    assert read_target("sgs", "kolmo-closure", 1) == "sgs"


def _fine_missing_physics(omega_fine: np.ndarray, n_coarse: int) -> tuple[np.ndarray, np.ndarray]:
    """Coarse (ω, H) of the ``missing-physics`` target for the fine fields ``omega_fine (B, N, N)``."""
    from kolmo.closure_terms import missing_physics_closure_hat
    from kolmo.coarse import subsample
    from kolmo.equation import VorticityEquation
    from kolmo.fft import RealFFT2

    b, n = omega_fine.shape[0], omega_fine.shape[-1]
    cfg = preset("dong2026", n)
    eq = VorticityEquation(Grid(n, cfg.L, cfg.dealias), cfg.nu, cfg.mu, None, members=b, backend="numpy")
    fft = RealFFT2(n, b, backend="numpy")
    h = fft.irfft2(missing_physics_closure_hat(eq, fft.rfft2(omega_fine)))
    return subsample(omega_fine, n_coarse), subsample(h, n_coarse)


def test_missing_physics_of_a_field_resolved_on_the_coarse_grid_is_the_coarse_advection() -> None:
    """H = S[−P_f(u·∇ω)] equals −P_c(ū·∇ω̄) to round-off when the product u·∇ω has no power outside the coarse
    2/3 band (ω within half of it; the dong2026 flow at 64² to float32 precision: its conditional law
    p(H | ω̄) is a point mass), and not when ω fills the fine band."""
    from kolmo.closure_terms import coarse_advection_residual

    nf, nc = 32, 16
    rng = np.random.default_rng(0)
    k = np.fft.fftfreq(nf, 1.0 / nf)
    kmax = np.maximum(np.abs(k)[:, None], np.abs(k[: nf // 2 + 1])[None, :])
    spectrum = rng.standard_normal((2, nf, nf // 2 + 1)) + 1j * rng.standard_normal((2, nf, nf // 2 + 1))
    resolved = np.fft.irfft2(np.where(kmax < nc / 6, spectrum, 0), s=(nf, nf))
    rough = np.fft.irfft2(np.where(kmax < nf / 3, spectrum, 0), s=(nf, nf))
    cfg = preset("dong2026", nf)
    w, h = _fine_missing_physics(resolved, nc)
    assert np.all(coarse_advection_residual(w, h, cfg) < 1e-12)
    w, h = _fine_missing_physics(rough, nc)
    assert np.all(coarse_advection_residual(w, h, cfg) > 0.1)
