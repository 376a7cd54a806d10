"""The training loop: PK batches, CE-LS + triplet, Adam, per-epoch schedule, checkpoints, final evaluation.

Runs single-process or under ``torchrun`` (DistributedDataParallel); only rank 0 writes files and evaluates.
"""

# Differences from the paper on purpose: seeded and deterministic where PyTorch allows (the paper used
# cudnn.benchmark and unseeded `random`); mixed precision on CUDA; under DDP the global batch of 64 is
# split by identity over ranks and each rank computes its own triplet loss (the paper's DataParallel
# gathered the whole batch for the loss).

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from model.device import mixed_precision
from training.assembly import assemble, wrap_distributed
from training.checkpoint import (
    CHECKPOINT_FILE,
    FINAL_CHECKPOINT,
    build_training_checkpoint,
    load_training_checkpoint,
    plain_data,
    prune_checkpoints,
    restore_optimisation,
    restore_rng_state,
    save_checkpoint,
)
from training.config import TrainConfig, config_to_dict, save_config
from training.distributed import DistEnv, all_reduce_sum, barrier, cleanup, init_distributed
from training.run_log import RunLog
from training.summaries import EpochStats, RunningSums, headline_metrics

CONFIG_FILE = "config.yaml"
EVAL_DIR = "eval"

__all__ = ["EpochStats", "TrainResult", "Trainer", "train"]


@dataclass
class TrainResult:
    """What a run produced: its directory, final checkpoint, per-epoch history and test metrics."""

    output_dir: Path
    final_checkpoint: Path | None
    history: list[EpochStats] = field(default_factory=list)
    metrics: dict[str, Any] | None = None


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
        self.amp_dtype = mixed_precision(env.device) if config.train.amp else None
        self.use_amp = self.amp_dtype is not None
        if env.is_main:
            self.output_dir.mkdir(parents=True, exist_ok=True)
        self.log = RunLog(self.output_dir, env.is_main)

    def _build(self, resume: dict[str, Any] | None) -> None:
        parts = assemble(self.config, self.data_root, self.env, load_pretrained=resume is None)
        self.dataset, self.net, self.optimizer = parts.dataset, parts.net, parts.optimizer
        self.schedule, self.scaler, self.criterion = parts.schedule, parts.scaler, parts.criterion
        self.loader = parts.loader
        self.start_epoch = 0
        if resume is not None:
            self._restore(resume)
        self.model = wrap_distributed(self.net, self.env)

    def _restore(self, state: dict[str, Any]) -> None:
        restore_optimisation(
            state, self.net, self.optimizer, self.scaler, self.schedule, "this configuration and dataset"
        )
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
        sums = RunningSums.zeros(device)
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
            with torch.autocast(device.type, dtype=self.amp_dtype or torch.float32, enabled=self.use_amp):
                pooled, _, logits = self.model(images)
            out = self.criterion(pooled, logits, targets)
            self.optimizer.zero_grad(set_to_none=True)
            self.scaler.scale(out.total).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()
            sums.add(out, targets.numel())
            if self.progress:
                bar.set_postfix(
                    loss=f"{sums.mean('loss'):.3f}",
                    acc=f"{sums.mean('accuracy'):.3f}",
                    ips=f"{sums.images * self.env.world_size / (time.perf_counter() - start):.1f}",
                    refresh=step == len(self.loader),
                )
        bar.close()
        total = RunningSums(all_reduce_sum(sums.values, self.env).cpu())
        return total.stats(epoch, lr, time.perf_counter() - start)

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
