"""Training of every closure family: two-phase (autoencoders, then generator on frozen latents) or joint.

Phases (each with its own Adam(lr) and StepLR(lr_step, lr_gamma), stepped once per epoch)
-----------------------------------------------------------------------------------------
``autoencoder`` (latent models with ``reg`` none/mp/ga and a trainable coder; ``ae_epochs`` epochs)
    ``L = MSE(D_H(E_H(H_n)), H_n) + λ R(E_H(H_n)) + MSE(D_ω(E_ω(ω_n)), ω_n)``, the last term only with a
    learned condition encoder, and ``R`` = MP (``λ = 1e-2``, kNN in the batch, k = 5) or GA (``λ = 1e-3``,
    diffusion-potential distances precomputed once on the training closures, PHATE knn 10 / t 10, with
    landmarks; ``ga_scale`` "median" (default): distances over their training median, scale-fitted
    weighted stress; "reference": the published formula, whose weights underflow) —
    :mod:`closure.regularizers`.
``generator`` (``epochs`` epochs)
    Coders frozen; the scalar latent standardisation is measured on the training latents (identity with
    ``standardise=False``, the reference's raw latent), every training
    and validation latent is computed once, and the network minimises the path loss of its family
    (:meth:`closure.models.ClosureModel.path_loss`).
``joint`` (``reg = joint``; ``epochs`` epochs), end to end (SCIENCE.md §3)::

    L = 1000 · MSE_H + MSE_ω + 0.1 · KL_batch(z_H) + L_gen          (MSE_ω only with a learned ω encoder)

Validation: whole TRAINING trajectories carved off (:func:`closure.data.split_trajectories`); the
validation loss uses a fixed-seed generator, so it is comparable between epochs and never touches the
training random streams. ``best.pt`` is written whenever the validation loss of the last phase improves.

Loss logging: each epoch of ``history`` stores ``components`` (every term of the loss, unweighted, mean
over the epoch's batches) and ``weighted`` (the same terms times their weights, :func:`loss_weights`;
they sum to ``train_loss``).

Run directory: ``run.json`` (config, dataset, history, throughput; human-readable), ``last.pt`` and
``best.pt``: ``{format, version, run_id, config, dataset, split, phase, epoch, model, optimizer,
scheduler, history, best, rng, throughput}`` with every random stream (torch, numpy, python, and the
shuffle and path-noise generators). ``resume=True`` restores all of it and continues exactly: on the
CPU, 2 epochs + resume to 4 equal 4 epochs bit for bit. A checkpoint made with another model, another
setting or another dataset is refused (:class:`~closure.errors.CheckpointMismatchError`).

Several processes (``torchrun``, ``kolmo train --nproc N``): data-parallel, the same step as one process
with the same global batch, process 0 alone writing; checkpoints are interchangeable with single-process
runs in both directions (:mod:`closure.data_parallel`).
"""

from __future__ import annotations

import datetime as _dt
import math
import os
import random
import time
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np
import torch
from torch import Tensor

from closure.batch_shard import BatchShard
from closure.checkpoints import CHECKPOINT_FORMAT, CHECKPOINT_VERSION, LoadedRun, check_compatible, load_run, \
    numpy_rng_state, read_checkpoint, resume_config, save_checkpoint, set_numpy_rng_state, write_run_json
from closure.data import ClosurePairs, DatasetInfo, read_info, split_trajectories
from closure.data_parallel import DataParallel, shard_rows
from closure.errors import CheckpointMismatchError, ConfigurationError, OutputExistsError
from closure.losses import autoencoder_loss, joint_loss, loss_weights
from closure.models import ClosureModel, ModelConfig
from closure.regularizers import diffusion_potential, potential_distance_median
from closure.sampling import standardise
from closure.train_config import TrainConfig, TrainEvent, TrainResult

__all__ = ["TrainConfig", "TrainEvent", "TrainResult", "LoadedRun", "train", "prepare_run", "load_run", "resume_config",
           "read_checkpoint", "autoencoder_loss", "joint_loss", "loss_weights", "CHECKPOINT_FORMAT"]

_VALIDATION_SEED_OFFSET = 7919


# ---------------------------------------------------------------------------------------------- trainer
class _Trainer:
    """Runs the phases of one configuration; all mutable training state lives here."""

    def __init__(self, config: TrainConfig, info: DatasetInfo, out: Path, progress: Callable[[TrainEvent], None],
                 parallel: DataParallel) -> None:
        self.config, self.info, self.out, self.progress = config, info, out, progress
        self.parallel, self.device = parallel, parallel.device
        device = self.device
        train_ids, val_ids = split_trajectories(info.train_trajectories, config.validation_fraction, config.seed)
        self.split = {"train": train_ids, "validation": val_ids}
        norm = info.normalisation
        self.train_set = ClosurePairs(config.data, "train", norm, train_ids)
        self.val_set = ClosurePairs(config.data, "train", norm, val_ids)
        if len(self.train_set) < 2:  # every batch loss (MP, GA, batch KL, the generator's) needs two pairs
            raise ConfigurationError(
                f"dataset {config.data} leaves {len(self.train_set)} training pair(s) after holding out "
                f"{len(val_ids)} validation trajectory(ies) of its {len(info.train_trajectories)}; expected at least 2 "
                "(build a larger dataset)")
        if parallel.distributed:  # the batch actually used (clamped to the data) must split evenly
            bs = self.batch_size(len(self.train_set))
            shard_rows(bs, parallel.world_size, 0, f"batch {bs} (--batch {config.batch} clamped to the "
                                                   f"{len(self.train_set)} training pairs)")
        self.data = {name: (s.omega.to(device), s.closure.to(device))
                     for name, s in (("train", self.train_set), ("validation", self.val_set))}
        self.run_id = ""
        self.history: list[dict[str, Any]] = []
        self.best: Optional[dict[str, Any]] = None
        self.throughput: dict[str, float] = {}
        self.shuffle_gen = torch.Generator().manual_seed(config.seed)
        self.noise_gen = torch.Generator(device=device).manual_seed(config.seed + 1)
        torch.manual_seed(config.seed)
        np.random.seed(config.seed % 2**32)
        random.seed(config.seed)
        self.model = ClosureModel(config.model).to(device)
        self.phase_index, self.epoch = 0, 0
        self.potentials: Optional[Tensor] = None
        self.ga_median: Optional[float] = None
        self.latents: dict[str, tuple[Tensor, Tensor]] = {}
        self.optimizer: Optional[torch.optim.Optimizer] = None
        self.scheduler: Optional[torch.optim.lr_scheduler.StepLR] = None
        self.restored_optim: Optional[dict[str, Any]] = None
        self.teacher: Optional[ClosureModel] = load_run(config.teacher).model.to(device).eval() \
            if config.teacher else None

    # ------------------------------------------------------------------ state
    def start_fresh(self) -> None:
        self.run_id = f"{self.config.model.model}-{self.config.model.reg}-" \
                      f"{_dt.datetime.now(_dt.timezone.utc).strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:6]}"
        self.model.fit_pca(self.data["train"][1])
        if self.teacher is not None:  # reflow: start from the teacher (same architecture, see train())
            self.model.load_state_dict(self.teacher.state_dict())
        self.run_id = self.parallel.broadcast_object(self.run_id)
        self.parallel.broadcast_module(self.model)  # the same seed made them equal already; keep it so

    def restore(self, ckpt: dict[str, Any]) -> None:
        self.run_id = ckpt["run_id"]
        self.model.load_state_dict(ckpt["model"])
        self.history = list(ckpt["history"])
        self.best = ckpt["best"]
        self.throughput = dict(ckpt.get("throughput", {}))
        names = [p for p, _ in self.config.phases()]
        if ckpt["phase"] not in names:
            raise CheckpointMismatchError(f"checkpoint phase {ckpt['phase']!r} is not among this run's phases {names}")
        self.phase_index, self.epoch = names.index(ckpt["phase"]), int(ckpt["epoch"])
        self.restored_optim = {"phase": ckpt["phase"], "optimizer": ckpt["optimizer"], "scheduler": ckpt["scheduler"]}
        rng = ckpt["rng"]
        torch.set_rng_state(rng["torch"])
        set_numpy_rng_state(rng["numpy"])
        random.setstate(rng["python"])
        self.shuffle_gen.set_state(rng["shuffle"])
        self.noise_gen.set_state(rng["noise"])
        if rng.get("cuda") is not None and torch.cuda.is_available() and self.device.type == "cuda":
            torch.cuda.set_rng_state_all(rng["cuda"])

    def checkpoint(self, phase: str) -> dict[str, Any]:
        return {
            "format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, "run_id": self.run_id,
            "config": self.config.to_dict(), "dataset": self.info.to_dict(), "split": self.split,
            "phase": phase, "epoch": self.epoch, "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
            "history": self.history, "best": self.best, "throughput": self.throughput,
            "parameters": self.model.parameter_counts(), "torch_version": str(torch.__version__),
            "rng": {"torch": torch.get_rng_state(), "numpy": numpy_rng_state(), "python": random.getstate(),
                    "shuffle": self.shuffle_gen.get_state(), "noise": self.noise_gen.get_state(),
                    "cuda": torch.cuda.get_rng_state_all() if self.device.type == "cuda" else None},
        }

    def write_summary(self) -> None:
        write_run_json({"run_id": self.run_id, "config": self.config.to_dict(), "dataset": self.info.to_dict(),
                      "split": self.split, "model": self.config.model.describe(),
                      "parameters": self.model.parameter_counts(), "phases": self.config.phases(),
                      "history": self.history, "best": self.best, "throughput_samples_per_s": self.throughput,
                      "ga_distance_median": self.ga_median},
                     self.out / "run.json")

    # ------------------------------------------------------------------ phases
    def run(self) -> None:
        phases = self.config.phases()
        for index, (phase, n_epochs) in enumerate(phases):
            if index < self.phase_index:
                continue
            fresh_phase = index > self.phase_index or self.epoch == 0
            if index > self.phase_index:
                self.phase_index, self.epoch = index, 0
            if self.epoch >= n_epochs and index < len(phases) - 1:
                continue  # finished before the checkpoint; the next phase starts fresh
            self.setup_phase(phase, fresh_phase)
            self.progress(TrainEvent("phase", phase, self.epoch, n_epochs, message=self.describe_phase(phase)))
            last = index == len(phases) - 1
            while self.epoch < n_epochs:
                self.run_epoch(phase, n_epochs, last)

    def describe_phase(self, phase: str) -> str:
        cfg = self.config
        if phase == "autoencoder":
            parts = [f"{type(m).__name__}" for m in self.model.trainable_coders()]
            ga = f", scale {cfg.ga_scale}, median D {self.ga_median:.4g}" if self.ga_median is not None else ""
            return f"autoencoders ({', '.join(parts)}; reg {cfg.model.reg}{ga})"
        if phase == "generator":
            raw = "" if cfg.standardise or not cfg.model.latent else ", latent NOT standardised"
            return f"generator {cfg.model.model} on frozen latents ({self.model.parameter_counts()['network']} params{raw})"
        return "joint: 1000 MSE_H + MSE_w + 0.1 KL + L_gen"

    def params_for(self, phase: str) -> list[torch.nn.Parameter]:
        if phase == "autoencoder":
            return [p for m in self.model.trainable_coders() for p in m.parameters()]
        if phase == "generator":
            return list(self.model.network.parameters())
        return list(self.model.parameters())

    def setup_phase(self, phase: str, fresh: bool) -> None:
        cfg = self.config
        for p in self.model.parameters():
            p.requires_grad_(False)
        params = self.params_for(phase)
        for p in params:
            p.requires_grad_(True)
        self.optimizer = torch.optim.Adam(params, lr=cfg.lr)
        self.scheduler = torch.optim.lr_scheduler.StepLR(self.optimizer, cfg.lr_step, cfg.lr_gamma)
        if self.restored_optim is not None and self.restored_optim["phase"] == phase and not fresh:
            self.optimizer.load_state_dict(self.restored_optim["optimizer"])
            self.scheduler.load_state_dict(self.restored_optim["scheduler"])
        self.restored_optim = None
        if phase == "autoencoder" and cfg.model.reg == "ga":
            self.potentials = self.compute_potentials()
        if phase in ("generator", "joint") and fresh and self.teacher is None:
            self.standardise()
        if phase == "generator":
            self.latents = {name: self.encode_all(*self.data[name]) for name in ("train", "validation")}
            if self.teacher is not None:
                self.latents = {name: self.couplings(name, *pair) for name, pair in self.latents.items()}

    def compute_potentials(self) -> Tensor:
        """PHATE diffusion potentials ``U`` of the training closures (rows: pairs); ``D = cdist(U, U)``.
        Also sets ``ga_median``, the median of ``D`` over training pairs (the "median" GA scale)."""
        cfg = self.config
        x = self.data["train"][1].reshape(len(self.train_set), -1).cpu().double().numpy()
        u = diffusion_potential(x, knn=min(cfg.ga_knn, len(x) - 1), t=cfg.ga_t, n_landmarks=cfg.ga_landmarks,
                                seed=cfg.seed)
        self.ga_median = potential_distance_median(u, seed=cfg.seed)
        return torch.as_tensor(u, dtype=torch.float32, device=self.device)

    @torch.no_grad()
    def raw_latents(self, omega: Tensor, closure: Tensor) -> tuple[Tensor, Tensor]:
        """Target and condition latents of every pair, in chunks of 256 (shared out over the processes)."""
        def chunk(start: int, stop: int) -> tuple[Tensor, Tensor]:
            return (self.model.target_coder.encode(closure[start:stop]),
                    self.model.condition_coder.encode(omega[start:stop]))

        z, c = self.parallel.map_chunks(chunk, omega.shape[0], 256)
        return z, c

    def standardise(self) -> None:
        """Set the scalar standardisation of the generator's state (:mod:`closure.models`): measured on the
        training latents for latent non-joint models, identity otherwise; divided by the DM state std."""
        cfg = self.config.model
        latent, condition = (0.0, 1.0), (0.0, 1.0)
        if cfg.latent and cfg.reg != "joint" and self.config.standardise:
            z, c = self.raw_latents(*self.data["train"])
            latent, condition = (float(z.mean()), float(z.std())), (float(c.mean()), float(c.std()))
        self.model.set_standardisation((latent[0], latent[1] / cfg.state_std()), condition)

    @torch.no_grad()
    def encode_all(self, omega: Tensor, closure: Tensor) -> tuple[Tensor, ...]:
        z, c = self.raw_latents(omega, closure)
        m = self.model
        return (standardise(z, m.latent_shift, m.latent_scale), standardise(c, m.condition_shift, m.condition_scale))

    @torch.no_grad()
    def couplings(self, split: str, x1: Tensor, c: Tensor) -> tuple[Tensor, ...]:
        """Reflow pairs of ``split``: ``(x1*, c, x0)`` with ``x0 ~ N(0, I)`` (fixed seed per split) and
        ``x1* = teacher_sampler(x0, c)`` (``teacher_steps`` Euler steps; one coupling per training pair).
        Every process draws all of ``x0``; the chunks of 256 pairs are shared out over the processes."""
        assert self.teacher is not None
        seed = self.config.seed + (2 if split == "train" else 3) * _VALIDATION_SEED_OFFSET
        gen = torch.Generator(device=self.device).manual_seed(seed)
        x0 = torch.randn(x1.shape, generator=gen, device=self.device, dtype=x1.dtype)
        sampler = self.teacher.make_sampler(self.config.teacher_steps)
        (x1_star,) = self.parallel.map_chunks(lambda i, j: (sampler(x0[i:j], c[i:j]),), x0.shape[0], 256)
        return x1_star, c, x0

    # ------------------------------------------------------------------ losses
    def loss(self, phase: str, split: str, idx: Tensor, generator: torch.Generator,
             rows: Optional[slice] = None) -> tuple[Tensor, dict[str, Tensor]]:
        """Loss of the batch ``idx`` (rows of ``split``); with ``rows`` (data-parallel) this process's shard
        ``idx[rows]`` of it: its rows of the batch's random draws, the batch-coupled terms on the whole batch."""
        local, source, gather = idx, generator, None
        if rows is not None:
            local, source = idx[rows], BatchShard(generator, rows.start, rows.stop, idx.shape[0])
            gather = self.parallel.gather_rows
        if phase == "generator":
            x1, c, *x0 = self.latents[split]
            gen = self.model.path_loss(x1[local], c[local], source, x0=x0[0][local] if x0 else None)
            return gen, {"gen": gen}
        omega, closure = self.data[split]
        if phase == "autoencoder":
            distances = None
            if self.potentials is not None and split == "train":
                u = self.potentials[idx]
                distances = torch.cdist(u, u)
            return autoencoder_loss(self.model, omega[local], closure[local], self.config, distances, self.ga_median,
                                    gather)
        return joint_loss(self.model, omega[local], closure[local], self.config, source, gather)

    def batch_size(self, n: int) -> int:
        return min(self.config.batch, n)

    def run_epoch(self, phase: str, n_epochs: int, last_phase: bool) -> None:
        n = len(self.train_set)
        bs = self.batch_size(n)
        batches = n // bs
        rows = self.parallel.shard(bs)
        params = [p for group in self.optimizer.param_groups for p in group["params"]]
        perm = torch.randperm(n, generator=self.shuffle_gen).to(self.device)
        self.model.train()
        sums: dict[str, float] = {}
        total = 0.0
        t0 = time.perf_counter()
        for b in range(batches):
            idx = perm[b * bs:(b + 1) * bs]
            loss, parts = self.loss(phase, "train", idx, self.noise_gen, rows)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.parallel.average_gradients(params)
            self.optimizer.step()
            value, *part_values = self.parallel.mean([loss.detach(), *(v.detach() for v in parts.values())])
            if not math.isfinite(value):
                raise ConfigurationError(f"training diverged in phase {phase}, epoch {self.epoch + 1}, batch {b + 1}: "
                                         f"loss {value}; lower --lr")
            total += value
            for k, v in zip(parts, part_values):
                sums[k] = sums.get(k, 0.0) + v
            self.progress(TrainEvent("batch", phase, self.epoch, n_epochs, b + 1, batches, value,
                                     lr=self.optimizer.param_groups[0]["lr"]))
        seconds = time.perf_counter() - t0
        lr = self.optimizer.param_groups[0]["lr"]
        self.scheduler.step()
        self.epoch += 1
        val = self.parallel.broadcast_float(self.validate(phase) if self.parallel.main else math.nan)
        rate = batches * bs / seconds if seconds > 0 else float("nan")
        improved = last_phase and (self.best is None or val < self.best["val_loss"])
        components = {k: v / batches for k, v in sums.items()}
        weights = loss_weights(self.config, phase)
        weighted = {k: weights[k] * v for k, v in components.items()}
        entry = {"phase": phase, "epoch": self.epoch, "train_loss": total / batches, "components": components,
                 "weighted": weighted, "val_loss": val, "lr": lr,
                 "seconds": seconds, "samples": batches * bs, "samples_per_s": rate, "best": improved,
                 "processes": self.parallel.world_size}
        self.history.append(entry)
        done = [h for h in self.history if h["phase"] == phase]
        self.throughput[phase] = sum(h["samples"] for h in done) / sum(h["seconds"] for h in done)
        if improved:
            self.best = {"phase": phase, "epoch": self.epoch, "val_loss": val}
        if self.parallel.main:
            state = self.checkpoint(phase)
            save_checkpoint(state, self.out / "last.pt")
            if improved:
                save_checkpoint(state, self.out / "best.pt")
            self.write_summary()
        self.parallel.barrier()  # every process leaves the epoch with its checkpoint on disk
        self.progress(TrainEvent("epoch", phase, self.epoch, n_epochs, batches, batches, entry["train_loss"],
                                 components, val, lr, rate, improved, weighted=weighted))

    @torch.no_grad()
    def validate(self, phase: str) -> float:
        """Mean loss over the validation pairs with a fixed-seed generator (reconstruction only in the
        autoencoder phase, where GA distances exist for training pairs only)."""
        self.model.eval()
        gen = torch.Generator(device=self.device).manual_seed(self.config.seed + _VALIDATION_SEED_OFFSET)
        n = len(self.val_set)
        bs = self.batch_size(n)
        totals, count = 0.0, 0
        for start in range(0, n - bs + 1, bs):
            idx = torch.arange(start, start + bs, device=self.device)
            loss, parts = self.loss(phase, "validation", idx, gen)
            if phase == "autoencoder":
                loss = sum(v for k, v in parts.items() if k.startswith("mse"))
            totals += float(loss) * bs
            count += bs
        return totals / max(count, 1)


def _reflow_student(config: TrainConfig, info: DatasetInfo) -> ModelConfig:
    """The student architecture of a reflow run: the teacher's, with the reflow model name (one step)."""
    teacher = load_run(str(config.teacher))
    tcfg = teacher.config.model
    if tcfg.family != "fm":
        raise ConfigurationError(f"--teacher {config.teacher} is a {tcfg.model} run; reflow needs a flow-matching "
                                 "teacher (fm or latent-fm)")
    if teacher.dataset.get("fingerprint") != info.fingerprint:
        raise CheckpointMismatchError(f"--teacher {config.teacher} was trained on data with fingerprint "
                                      f"{teacher.dataset.get('fingerprint')}, not {info.fingerprint} ({config.data})")
    return replace(tcfg, model="latent-reflow" if tcfg.latent else "reflow", steps=None)


def prepare_run(config: TrainConfig, out: str | os.PathLike,
                resume: bool = False) -> tuple[TrainConfig, DatasetInfo, Optional[dict[str, Any]]]:
    """Every check :func:`train` makes before it starts work, without side effects: the dataset, the
    reflow teacher, the checkpoint to resume and its compatibility, the settings, the run directory.

    Returns the configuration completed from the data (``model.grid``, a reflow student's architecture),
    the dataset's :class:`DatasetInfo` and the checkpoint to resume (``None`` for a new run). ``kolmo train
    --nproc`` calls it once before it launches the processes, so that a bad input is one error line.

    Raises
    ------
    OutputExistsError, CheckpointError, CheckpointMismatchError, ConfigurationError, FileFormatError
    """
    out = Path(out)
    info = read_info(config.data)
    config = replace(config, model=replace(config.model, grid=info.grid))
    if config.model.family == "reflow" and config.teacher:
        config = replace(config, model=_reflow_student(config, info))
    ckpt = None
    if resume:  # compare first: a mismatch is the clearer message
        ckpt = read_checkpoint(out / "last.pt")
        check_compatible(ckpt, config, info, out / "last.pt")
    config.validate()
    if not resume and out.exists():
        raise OutputExistsError(f"run directory {out} exists; choose another --out, or pass --resume to continue it")
    return config, info, ckpt


def train(config: TrainConfig, out: str | os.PathLike, resume: bool = False,
          progress: Optional[Callable[[TrainEvent], None]] = None) -> TrainResult:
    """Train (or resume) a closure model into the run directory ``out``.

    Under ``torchrun`` (its environment variables set, see :mod:`closure.data_parallel`) every process calls
    this with the same arguments: they train one model data-parallel, process 0 writes the run directory and
    alone receives ``progress`` events; every process returns the same history.

    Parameters
    ----------
    config : TrainConfig
        Settings (``config.model.grid`` is set from the data). ``batch`` is the global batch, split evenly
        over the processes.
    out : path-like
        Run directory; must not exist unless ``resume``.
    resume : bool
        Continue ``out/last.pt`` exactly (settings other than :data:`RESUMABLE_CHANGES` must match), whatever
        the number of processes that wrote it.
    progress : callable, optional
        Receives :class:`TrainEvent` s (process 0 only).

    Raises
    ------
    OutputExistsError, CheckpointError, CheckpointMismatchError, ConfigurationError, DeviceError,
    FileFormatError
    """
    t0 = time.perf_counter()
    out = Path(out)
    parallel = DataParallel.from_environment(config.device)
    config, info, ckpt = prepare_run(config, out, resume)
    if parallel.distributed:
        shard_rows(config.batch, parallel.world_size, 0)
    with parallel.session():  # every process has made the checks above before process 0 creates `out`
        trainer = _Trainer(config, info, out, (progress if parallel.main else None) or (lambda event: None), parallel)
        if ckpt is not None:
            trainer.restore(ckpt)
        else:
            trainer.start_fresh()
            if parallel.main:
                out.mkdir(parents=True)
        trainer.run()
        if parallel.main:
            trainer.write_summary()
        parallel.barrier()
    trainer.progress(TrainEvent("done", trainer.history[-1]["phase"] if trainer.history else "", trainer.epoch,
                                trainer.epoch, message=str(out)))
    return TrainResult(out, trainer.run_id, trainer.history, trainer.best, trainer.throughput,
                       trainer.model.parameter_counts(), time.perf_counter() - t0)
