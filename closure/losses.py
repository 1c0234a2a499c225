"""The batch losses of training: the autoencoder phase (:func:`autoencoder_loss`), end-to-end joint
training (:func:`joint_loss`) and the weight of each named part (:func:`loss_weights`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Optional

import torch
import torch.nn.functional as F
from torch import Tensor

from closure.autoencoders import ConvAutoencoder
from closure.batch_shard import RandomSource
from closure.errors import ConfigurationError
from closure.models import ClosureModel
from closure.regularizers import batch_kl_loss, geometry_aware_loss, metric_preserving_loss, \
    scaled_geometry_aware_loss

if TYPE_CHECKING:
    from closure.train_config import TrainConfig

__all__ = ["autoencoder_loss", "joint_loss", "loss_weights", "Gather"]

Gather = Callable[[Tensor], Tensor]
"""Rows of a shard → rows of the whole batch (:meth:`closure.data_parallel.DataParallel.gather_rows`). The
batch-coupled terms (MP neighbours, GA stress, batch KL) are computed on the gathered batch, so that a
data-parallel step has the loss and gradient of one process with the whole batch; ``None``: one process."""


def _whole(gather: Optional[Gather], x: Tensor) -> Tensor:
    return x if gather is None else gather(x)


def autoencoder_loss(model: ClosureModel, omega_n: Tensor, closure_n: Tensor, config: TrainConfig,
                     distances: Optional[Tensor] = None,
                     ga_median: Optional[float] = None,
                     gather: Optional[Gather] = None) -> tuple[Tensor, dict[str, Tensor]]:
    """Autoencoder-phase loss on a batch ``ω_n, H_n`` ``(B, 1, N, N)``.

    ``MSE(D_H(z), H_n) + λ_MP L_MP(z, H_n)`` (reg mp) or ``+ λ_GA L_GA(z, D)`` (reg ga, with the batch's
    diffusion-potential distances ``distances (B, B)``; skipped when ``None``), ``z = E_H(H_n)``, for a conv
    target autoencoder; ``+ MSE(D_ω(E_ω(ω_n)), ω_n)`` for a learned condition encoder. ``L_GA`` is
    :func:`~closure.regularizers.scaled_geometry_aware_loss` with ``ga_median`` (the training-set median of
    ``D``; required) for ``config.ga_scale == "median"``, the reference formula otherwise. Returns the total
    and its named parts (unweighted; weights in :func:`loss_weights`). With ``gather`` (data-parallel
    shards) the MP and GA terms see the whole batch (``distances`` is then the whole batch's ``(B, B)``).
    """
    parts: dict[str, Tensor] = {}
    total = torch.zeros((), device=closure_n.device, dtype=closure_n.dtype)
    if isinstance(model.target_coder, ConvAutoencoder):
        z = model.target_coder.encode(closure_n)
        parts["mse_H"] = F.mse_loss(model.target_coder.decode(z), closure_n)
        total = total + parts["mse_H"]
        if config.model.reg == "mp" and (gather is not None or closure_n.shape[0] >= 2):
            # small data: k is clamped to the batch (batch - 1 neighbours at most), e.g. a last
            # validation batch or a dataset smaller than mp_k + 1 pairs (a gathered batch has >= 2 rows)
            z_all, closure_all = _whole(gather, z), _whole(gather, closure_n)
            k = min(config.mp_k, closure_all.shape[0] - 1)
            parts["mp"] = metric_preserving_loss(z_all, closure_all, k=k)
            total = total + config.mp_weight * parts["mp"]
        elif config.model.reg == "ga" and distances is not None:
            if config.ga_scale == "median":
                if ga_median is None:
                    raise ConfigurationError("ga_scale 'median' needs the training-set median of the potential "
                                             "distances (ga_median); got None")
                parts["ga"] = scaled_geometry_aware_loss(_whole(gather, z), distances, ga_median)
            else:
                parts["ga"] = geometry_aware_loss(_whole(gather, z), distances)
            total = total + config.ga_weight * parts["ga"]
    if isinstance(model.condition_coder, ConvAutoencoder):
        parts["mse_w"] = F.mse_loss(model.condition_coder.decode(model.condition_coder.encode(omega_n)), omega_n)
        total = total + parts["mse_w"]
    return total, parts


def joint_loss(model: ClosureModel, omega_n: Tensor, closure_n: Tensor, config: TrainConfig,
               generator: RandomSource = None, gather: Optional[Gather] = None) -> tuple[Tensor, dict[str, Tensor]]:
    """End-to-end loss ``1000 MSE_H + MSE_ω + 0.1 KL_batch(z_H) + L_gen`` on a batch (weights from ``config``).

    ``L_gen`` is the path loss on ``(E_H(H_n), E_ω(ω_n))``, so it back-propagates into both encoders;
    ``MSE_ω`` only with a learned condition encoder. Returns the total and its named parts (unweighted).
    With ``gather`` (data-parallel shards) the batch KL is taken over the whole batch.
    """
    z = model.target_coder.encode(closure_n)
    parts: dict[str, Tensor] = {"mse_H": F.mse_loss(model.target_coder.decode(z), closure_n)}
    total = config.joint_closure_weight * parts["mse_H"]
    if isinstance(model.condition_coder, ConvAutoencoder):
        zc = model.condition_coder.encode(omega_n)
        parts["mse_w"] = F.mse_loss(model.condition_coder.decode(zc), omega_n)
        total = total + config.joint_omega_weight * parts["mse_w"]
    parts["kl"] = batch_kl_loss(_whole(gather, z))
    parts["gen"] = model.path_loss(model.encode_target(closure_n), model.encode_condition(omega_n), generator)
    return total + config.joint_kl_weight * parts["kl"] + parts["gen"], parts


def loss_weights(config: TrainConfig, phase: str) -> dict[str, float]:
    """Weight of each named loss part of ``phase`` (``total = Σ weight · part``): ``mse_H``, ``mse_w``,
    ``mp``, ``ga``, ``kl``, ``gen``."""
    if phase == "joint":
        return {"mse_H": config.joint_closure_weight, "mse_w": config.joint_omega_weight,
                "kl": config.joint_kl_weight, "gen": 1.0}
    return {"mse_H": 1.0, "mse_w": 1.0, "mp": config.mp_weight, "ga": config.ga_weight, "gen": 1.0}
