"""A trivial scripted closure and complete contract metadata for the benchmark tests."""

from typing import List

import torch


class Trivial(torch.nn.Module):
    def noise_shape(self, batch: int) -> List[int]:
        return [batch, 1, 4, 4]

    def sample(self, omega: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        return -omega + noise.mean()

    def forward(self, omega: torch.Tensor) -> torch.Tensor:
        return self.sample(omega, torch.randn(self.noise_shape(omega.shape[0]), dtype=omega.dtype, device=omega.device))


def contract_metadata(**kw) -> dict:
    """Every key the artifact contract requires (coupling.artifact.REQUIRED_METADATA), then ``kw``."""
    meta = {"format": "kolmo-closure", "format_version": 1, "grid": 16, "L": 1.0, "preset": "dong2026",
            "target": "missing-physics", "dt": 1e-3, "nfe": 1, "family": "test", "regularizer": "none",
            "dtype": "float32", "normalisation": {}, "dataset_fingerprint": "none", "run_id": "test",
            "torch_version": torch.__version__, "created": "2026-11-23"}
    return {**meta, **kw}
