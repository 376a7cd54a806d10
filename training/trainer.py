"""The training loop: PK batches, CE-LS + triplet, Adam, per-epoch schedule, checkpoints, final evaluation.

Runs single-process or under ``torchrun`` (DistributedDataParallel); only rank 0 writes files and evaluates.
"""

# Differences from the paper on purpose: seeded and deterministic where PyTorch allows (the paper used
# cudnn.benchmark and unseeded `random`); mixed precision on CUDA; under DDP the global batch of 64 is
# split by identity over ranks and each rank computes its own triplet loss (the paper's DataParallel
# gathered the whole batch for the loss).

from __future__ import annotations

import logging
import os
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.tensorboard import SummaryWriter
from tqdm import tqdm

from model import build_model
from training.checkpoint import (
    CHECKPOINT_FILE,
    FINAL_CHECKPOINT,
    CheckpointError,
    build_training_checkpoint,
    load_training_checkpoint,
    plain_data,
    prune_checkpoints,
    restore_rng_state,
    save_checkpoint,
)
from training.config import ConfigError, TrainConfig, config_to_dict, save_config
from training.data import build_train_loader
from training.datasets import ReidDataset, build_dataset
from training.distributed import DistEnv, all_reduce_sum, barrier, cleanup, init_distributed
from training.losses import ReIDLoss
from training.optim import WarmupStepSchedule, build_optimizer
from training.transforms import TrainTransform

LOG_FILE = "train.log"
CONFIG_FILE = "config.yaml"
TENSORBOARD_DIR = "tensorboard"
EVAL_DIR = "eval"


@dataclass
class EpochStats:
    """Averages over one epoch (all ranks) and its throughput."""

    epoch: int
    lr: float
    loss: float
    ce: float
    triplet: float
    accuracy: float
    images: int
    seconds: float

    @property
    def images_per_second(self) -> float:
        """Training images processed per second of wall time, summed over ranks."""
        return self.images / self.seconds if self.seconds > 0 else 0.0


@dataclass
class TrainResult:
    """What a run produced: its directory, final checkpoint, per-epoch history and test metrics."""

    output_dir: Path
    final_checkpoint: Path | None
    history: list[EpochStats] = field(default_factory=list)
    metrics: dict[str, Any] | None = None


class _TqdmHandler(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        tqdm.write(self.format(record), file=sys.stderr)


class RunLog:
    """Plain-text log file, console lines and TensorBoard scalars; silent on ranks other than 0."""

    def __init__(self, output_dir: Path, enabled: bool) -> None:
        self.enabled = enabled
        self.logger = logging.getLogger(f"training.run.{id(self)}")
        self.logger.setLevel(logging.INFO)
        self.logger.propagate = False
        self.writer: SummaryWriter | None = None
        if not enabled:
            return
        formatter = logging.Formatter("%(asctime)s %(message)s", "%Y-%m-%d %H:%M:%S")
        for handler in (logging.FileHandler(output_dir / LOG_FILE), _TqdmHandler()):
            handler.setFormatter(formatter)
            self.logger.addHandler(handler)
        self.writer = SummaryWriter(str(output_dir / TENSORBOARD_DIR))

    def info(self, message: str) -> None:
        """Write one line to the log file and the console."""
        if self.enabled:
            self.logger.info(message)

    def epoch(self, stats: EpochStats) -> None:
        """Log an epoch summary line and its TensorBoard scalars."""
        self.info(
            f"epoch {stats.epoch + 1}: lr {stats.lr:.3e} loss {stats.loss:.4f} ce {stats.ce:.4f} "
            f"triplet {stats.triplet:.4f} acc {stats.accuracy:.4f} {stats.images_per_second:.1f} img/s"
        )
        if self.writer is not None:
            step = stats.epoch + 1
            for name in ("loss", "ce", "triplet", "lr"):
                self.writer.add_scalar(f"train/{name}", getattr(stats, name), step)
            self.writer.add_scalar("train/acc", stats.accuracy, step)
            self.writer.add_scalar("train/images_per_s", stats.images_per_second, step)
            self.writer.flush()

    def close(self) -> None:
        """Flush and release the file handler and the TensorBoard writer."""
        if self.writer is not None:
            self.writer.close()
        for handler in list(self.logger.handlers):
            handler.close()
            self.logger.removeHandler(handler)


def configure_determinism(seed: int, deterministic: bool) -> None:
    """Seed python ``random``, numpy and torch; prefer deterministic kernels when asked."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.backends.cudnn.benchmark = not deterministic
    torch.backends.cudnn.deterministic = deterministic
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)


def resolve_pretrained(path: str | None) -> Path | None:
    """Check that the ImageNet weights file (relative to the working directory) exists."""
    if path is None:
        return None
    resolved = Path(path)
    if not resolved.is_file():
        raise ConfigError(
            f"pretrained weights {resolved} not found (relative to {Path.cwd()}); put torchvision's ImageNet "
            "ResNet state dict there or pass --set model.pretrained=null to train from scratch"
        )
    return resolved


def rank1_of(result: dict[str, Any]) -> float | None:
    """Rank-1 accuracy (0-1) of one feature's result, from ``rank1`` or the first CMC entry."""
    if "rank1" in result:
        return float(result["rank1"])
    cmc = result.get("cmc")
    return float(cmc[0]) if cmc else None


def headline_metrics(report: dict[str, Any]) -> str:
    """A short ``feature rank-1 / mAP`` summary of an ``evaluate_model`` report, for the log."""
    parts = []
    for name, result in (report.get("results") or report).items():
        rank1 = rank1_of(result) if isinstance(result, dict) else None
        if rank1 is None:
            continue
        summary = f"{name} rank-1 {100 * rank1:.2f}%"
        if "mAP" in result:
            summary += f" mAP {100 * float(result['mAP']):.2f}%"
        parts.append(summary)
    return "; ".join(parts) or "no rank-1 in the evaluation result"


class Trainer:
    """One training run: build everything from the configuration, optionally resume, train, evaluate."""

    def __init__(
        self,
        config: TrainConfig,
        data_root: str | Path,
        output_dir: str | Path,
        env: DistEnv,
        progress: bool = True,
    ) -> None:
        self.config = config
        self.data_root = Path(data_root)
        self.output_dir = Path(output_dir)
        self.env = env
        self.progress = progress and env.is_main
        self.use_amp = config.train.amp and env.device.type == "cuda"
        if env.is_main:
            self.output_dir.mkdir(parents=True, exist_ok=True)
        self.log = RunLog(self.output_dir, env.is_main)

    def _build(self, resume: dict[str, Any] | None) -> None:
        cfg = self.config
        configure_determinism(cfg.train.seed, cfg.train.deterministic)
        self.dataset = self._load_dataset()
        pretrained = None if resume is not None else resolve_pretrained(cfg.model.pretrained)
        self.net = build_model(
            cfg.model.backbone,
            cfg.model.attention,
            tuple(cfg.model.input_size),
            num_classes=self.dataset.num_train_ids,
            pretrained=pretrained,
        ).to(self.env.device)
        self.optimizer = build_optimizer(
            self.net, cfg.optim.lr, cfg.optim.weight_decay, tuple(cfg.optim.betas), cfg.optim.eps
        )
        self.schedule = WarmupStepSchedule(
            cfg.optim.lr,
            cfg.optim.warmup_epochs,
            cfg.optim.warmup_start_lr,
            list(cfg.optim.milestones),
            cfg.optim.gamma,
        )
        self.scaler = torch.amp.GradScaler(self.env.device.type, enabled=self.use_amp)
        self.criterion = ReIDLoss(
            cfg.loss.label_smoothing, cfg.loss.margin, cfg.loss.ce_weight, cfg.loss.triplet_weight
        )
        aug = cfg.augment
        transform = TrainTransform(
            tuple(cfg.model.input_size),
            aug.translate_prob,
            aug.translate_scale,
            aug.flip_prob,
            aug.erase_prob,
            tuple(aug.erase_area),
            aug.erase_min_aspect,
            aug.erase_attempts,
        )
        self.loader = build_train_loader(
            self.dataset.train,
            transform,
            cfg.sampler.batch_size,
            cfg.sampler.num_instances,
            seed=cfg.train.seed,
            rank=self.env.rank,
            world_size=self.env.world_size,
            num_workers=cfg.data.num_workers,
            pin_memory=self.env.device.type == "cuda",
        )
        self.start_epoch = 0
        if resume is not None:
            self._restore(resume)
        self.model: nn.Module = self.net
        if self.env.distributed:
            device_ids = [self.env.device.index] if self.env.device.type == "cuda" else None
            self.model = DistributedDataParallel(self.net, device_ids=device_ids)

    def _load_dataset(self) -> ReidDataset:
        """Rank 0 reads the dataset first (it may extract files on first use), then the other ranks."""
        cfg = self.config.data
        dataset = build_dataset(cfg.dataset, self.data_root, **cfg.kwargs) if self.env.is_main else None
        barrier(self.env)
        return dataset or build_dataset(cfg.dataset, self.data_root, **cfg.kwargs)

    def _restore(self, state: dict[str, Any]) -> None:
        try:
            self.net.load_state_dict(state["state_dict"])
            self.optimizer.load_state_dict(state["optimizer"])
        except (RuntimeError, ValueError, KeyError) as exc:
            raise CheckpointError(f"checkpoint does not match this configuration and dataset: {exc}") from exc
        if state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        if state.get("scheduler"):
            self.schedule.load_state_dict(state["scheduler"])
        self.loader.sampler.load_state_dict(state["sampler"])
        self.start_epoch = int(state["epoch"])
        restore_rng_state(state["rng"])

    def _checkpoint(self, epoch: int, metrics: dict[str, Any] | None = None) -> dict[str, Any]:
        return build_training_checkpoint(
            self.net,
            epoch=epoch,
            optimizer=self.optimizer.state_dict(),
            scaler=self.scaler.state_dict(),
            scheduler=self.schedule.state_dict(),
            sampler=self.loader.sampler.state_dict(),
            config=config_to_dict(self.config),
            dataset={
                "name": self.config.data.dataset,
                "root": str(self.data_root),
                "num_train_ids": self.dataset.num_train_ids,
            },
            metrics=plain_data(metrics) if metrics is not None else None,
        )

    def train_epoch(self, epoch: int, lr: float) -> EpochStats:
        """Run one epoch over the PK loader and return its averages over all ranks."""
        self.model.train()
        device = self.env.device
        totals = torch.zeros(5, dtype=torch.float64, device=device)
        bar = tqdm(
            self.loader,
            total=len(self.loader),
            desc=f"epoch {epoch + 1}/{self.config.train.epochs}",
            disable=not self.progress,
            leave=False,
            dynamic_ncols=True,
        )
        start = time.perf_counter()
        for step, (images, targets) in enumerate(bar, start=1):
            images = images.to(device, non_blocking=True)
            targets = targets.to(device, non_blocking=True)
            with torch.autocast(device.type, dtype=torch.float16, enabled=self.use_amp):
                pooled, _, logits = self.model(images)
            out = self.criterion(pooled, logits, targets)
            self.optimizer.zero_grad(set_to_none=True)
            self.scaler.scale(out.total).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()
            count = targets.numel()
            parts = torch.stack([out.total.detach(), out.ce, out.triplet, out.accuracy]).double() * count
            totals[:4] += parts
            totals[4] += count
            if self.progress:
                seen = float(totals[4]) * self.env.world_size
                bar.set_postfix(
                    loss=f"{float(totals[0]) / float(totals[4]):.3f}",
                    acc=f"{float(totals[3]) / float(totals[4]):.3f}",
                    ips=f"{seen / (time.perf_counter() - start):.1f}",
                    refresh=step == len(self.loader),
                )
        bar.close()
        totals = all_reduce_sum(totals, self.env).cpu()
        seconds = time.perf_counter() - start
        images = max(float(totals[4]), 1.0)
        return EpochStats(
            epoch=epoch,
            lr=lr,
            loss=float(totals[0]) / images,
            ce=float(totals[1]) / images,
            triplet=float(totals[2]) / images,
            accuracy=float(totals[3]) / images,
            images=int(totals[4]),
            seconds=seconds,
        )

    def evaluate(self) -> dict[str, Any]:
        """Evaluate the trained network on the dataset's query/gallery split (rank 0 only)."""
        from training.evaluation.report import evaluate_model

        ecfg = self.config.eval
        self.net.eval()
        return evaluate_model(
            self.net,
            self.dataset,
            self.output_dir / EVAL_DIR,
            device=str(self.env.device),
            batch_size=ecfg.batch_size,
            rerank=ecfg.rerank,
            flip=ecfg.flip,
            metric=ecfg.metric,
            num_rank_lists=ecfg.num_rank_lists,
        )

    def run(self, resume: str | Path | None = None) -> TrainResult:
        """Train from scratch or from ``resume`` to ``train.epochs``, then evaluate and save ``final.pt``."""
        try:
            state = load_training_checkpoint(resume) if resume is not None else None
            self._build(state)
            del state
            self._announce(resume)
            history = [self._epoch(epoch) for epoch in range(self.start_epoch, self.config.train.epochs)]
            barrier(self.env)
            if not self.env.is_main:
                return TrainResult(self.output_dir, None, history, None)
            return self._finish(history)
        finally:
            self.log.close()

    def _announce(self, resume: str | Path | None) -> None:
        if not self.env.is_main:
            return
        cfg = self.config
        save_config(cfg, self.output_dir / CONFIG_FILE)
        self.log.info(self.dataset.summary())
        trainable = sum(p.numel() for p in self.net.parameters() if p.requires_grad)
        self.log.info(
            f"{cfg.name}: {cfg.model.backbone}/{cfg.model.attention} {tuple(cfg.model.input_size)}, "
            f"{trainable / 1e6:.2f}M trainable parameters, {self.env.world_size} process(es) on "
            f"{self.env.device}, amp {self.use_amp}, {len(self.loader)} batches/epoch"
        )
        if resume is not None:
            self.log.info(f"resumed from {resume} after epoch {self.start_epoch}")

    def _epoch(self, epoch: int) -> EpochStats:
        lr = self.schedule.step(self.optimizer, epoch)
        self.loader.set_epoch(epoch)
        stats = self.train_epoch(epoch, lr)
        self.log.epoch(stats)
        if self.env.is_main and (epoch + 1) % self.config.train.checkpoint_every == 0:
            path = self.output_dir / CHECKPOINT_FILE.format(epoch=epoch + 1)
            save_checkpoint(self._checkpoint(epoch + 1), path)
            prune_checkpoints(self.output_dir, self.config.train.keep_checkpoints)
            self.log.info(f"saved {path}")
        return stats

    def _finish(self, history: list[EpochStats]) -> TrainResult:
        metrics = None
        if self.config.train.evaluate_at_end:
            metrics = plain_data(self.evaluate())
            self.log.info(f"evaluation: {headline_metrics(metrics)}")
        epoch = max(self.start_epoch, self.config.train.epochs)
        final = save_checkpoint(self._checkpoint(epoch, metrics), self.output_dir / FINAL_CHECKPOINT)
        self.log.info(f"saved {final}")
        return TrainResult(self.output_dir, final, history, metrics)


def train(
    config: TrainConfig,
    data_root: str | Path,
    output_dir: str | Path,
    *,
    resume: str | Path | None = None,
    device: str = "auto",
    progress: bool = True,
) -> TrainResult:
    """Train one recipe, joining the torchrun process group when launched by ``torchrun``."""
    env = init_distributed(device)
    try:
        return Trainer(config, data_root, output_dir, env, progress=progress).run(resume)
    finally:
        cleanup(env)
