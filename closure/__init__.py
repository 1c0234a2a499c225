"""Offline-learned generative closures ``H ~ p(H | ω)`` for coarse 2D turbulence (torch only).

Modules (one concept each):

- :mod:`closure.networks` — conditional velocity / score networks (two-branch conditional FNO, MLP),
  parameter and FLOP counts.
- :mod:`closure.autoencoders` — 64² ↔ 1×16×16 autoencoders (periodic conv, PCA/POD) and the
  block-average condition encoder.
- :mod:`closure.paths` — probability paths and their losses: flow matching, stochastic interpolants,
  VE-SDE diffusion.
- :mod:`closure.samplers` — scriptable samplers owning their network: FM Euler, SI Euler–Maruyama,
  VE-SDE Euler–Maruyama (Karras grid), EDM Heun; straightness diagnostic.
- :mod:`closure.regularizers` — latent regularizers MP, GA (with diffusion-potential distances),
  batch KL.
- :mod:`closure.data`, :mod:`closure.models`, :mod:`closure.training`, :mod:`closure.evaluation`,
  :mod:`closure.export` — datasets, every family by name, ``kolmo train`` / ``evaluate apriori`` /
  ``export``.
- :mod:`closure.inference` — the inference form an artifact scripts (small spectral convolutions as DFT
  matrix products; the same map to round-off).

The ``kolmo demo`` orchestration is application code: :mod:`cli.workflows.demo`.
"""

from closure.autoencoders import BlockAverageEncoder, ConvAutoencoder, PCAAutoencoder
from closure.data import Normalisation
from closure.evaluation import evaluate_model, evaluate_run
from closure.export import export_closure, export_model
from closure.inference import MatrixSpectralConv2d, inference_form
from closure.models import ClosureModel, ModelConfig, build_model
from closure.training import TrainConfig, load_run, train
from closure.networks import ConditionalFNO, ConditionalMLP, FNOConfig, count_flops, count_parameters
from closure.paths import VESDE, FlowMatching, PathSample, StochasticInterpolant, VEScoreNetwork
from closure.regularizers import (
    batch_kl_loss,
    diffusion_potential,
    geometry_aware_loss,
    metric_preserving_loss,
    potential_distances,
)
from closure.samplers import (
    T_MAX_LATENT,
    T_MAX_PHYSICAL,
    T_MIN,
    FlowEuler,
    InterpolantEulerMaruyama,
    Sampler,
    VEEulerMaruyama,
    VEHeun,
    karras_grid,
    straightness,
)

__all__ = [
    "Normalisation",
    "ModelConfig",
    "ClosureModel",
    "build_model",
    "TrainConfig",
    "train",
    "load_run",
    "evaluate_model",
    "evaluate_run",
    "export_closure",
    "export_model",
    "inference_form",
    "MatrixSpectralConv2d",
    "BlockAverageEncoder",
    "ConvAutoencoder",
    "PCAAutoencoder",
    "ConditionalFNO",
    "ConditionalMLP",
    "FNOConfig",
    "count_flops",
    "count_parameters",
    "FlowMatching",
    "StochasticInterpolant",
    "VESDE",
    "VEScoreNetwork",
    "PathSample",
    "FlowEuler",
    "InterpolantEulerMaruyama",
    "VEEulerMaruyama",
    "VEHeun",
    "Sampler",
    "T_MAX_PHYSICAL",
    "T_MAX_LATENT",
    "T_MIN",
    "karras_grid",
    "straightness",
    "metric_preserving_loss",
    "geometry_aware_loss",
    "batch_kl_loss",
    "diffusion_potential",
    "potential_distances",
]
