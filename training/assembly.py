"""Build every part of a training run from its recipe: seeds, dataset, network, optimiser, loss, loader."""

from __future__ import annotations

import os
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from model import ReIDNet, build_model
from model.device import mixed_precision
from training.config import AugmentConfig, ConfigError, LossConfig, OptimConfig, TrainConfig
from training.data import TrainLoader, build_train_loader
from training.datasets import ReidDataset, build_dataset
from training.distributed import DistEnv, barrier
from training.losses import ReIDLoss
from training.optim import WarmupStepSchedule, build_optimizer
from training.transforms import TrainTransform


@dataclass
class TrainingParts:
    """Everything a run trains with, built in a fixed order so a seed gives the same run."""

    dataset: ReidDataset
    net: ReIDNet
    optimizer: torch.optim.Optimizer
    schedule: WarmupStepSchedule
    scaler: torch.amp.GradScaler
    criterion: ReIDLoss
    loader: TrainLoader


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


def load_dataset(config: TrainConfig, data_root: Path, env: DistEnv) -> ReidDataset:
    """Rank 0 reads the dataset first (it may extract files on first use), then the other ranks."""
    data = config.data
    dataset = build_dataset(data.dataset, data_root, **data.kwargs) if env.is_main else None
    barrier(env)
    return dataset or build_dataset(data.dataset, data_root, **data.kwargs)


def build_schedule(optim: OptimConfig) -> WarmupStepSchedule:
    """The recipe's warm-up and step learning-rate schedule."""
    return WarmupStepSchedule(
        optim.lr, optim.warmup_epochs, optim.warmup_start_lr, list(optim.milestones), optim.gamma
    )


def build_criterion(loss: LossConfig) -> ReIDLoss:
    """The recipe's weighted cross entropy + triplet loss."""
    return ReIDLoss(loss.label_smoothing, loss.margin, loss.ce_weight, loss.triplet_weight)


def build_train_transform(augment: AugmentConfig, input_size: tuple[int, int]) -> TrainTransform:
    """The recipe's train-time augmentation at the network's input size."""
    return TrainTransform(
        tuple(input_size),
        augment.translate_prob,
        augment.translate_scale,
        augment.flip_prob,
        augment.erase_prob,
        tuple(augment.erase_area),
        augment.erase_min_aspect,
        augment.erase_attempts,
    )


def assemble(config: TrainConfig, data_root: Path, env: DistEnv, *, load_pretrained: bool) -> TrainingParts:
    """Seed, then build a run's parts; ``load_pretrained`` is False when a checkpoint brings the weights."""
    configure_determinism(config.train.seed, config.train.deterministic)
    dataset = load_dataset(config, data_root, env)
    pretrained = resolve_pretrained(config.model.pretrained) if load_pretrained else None
    net = build_model(
        config.model.backbone,
        config.model.attention,
        tuple(config.model.input_size),
        num_classes=dataset.num_train_ids,
        pretrained=pretrained,
    ).to(env.device)
    optim = config.optim
    optimizer = build_optimizer(net, optim.lr, optim.weight_decay, tuple(optim.betas), optim.eps)
    schedule = build_schedule(optim)
    scaler = torch.amp.GradScaler(env.device.type, enabled=mixed_precision(env.device) == torch.float16)
    criterion = build_criterion(config.loss)
    loader = build_train_loader(
        dataset.train,
        build_train_transform(config.augment, config.model.input_size),
        config.sampler.batch_size,
        config.sampler.num_instances,
        seed=config.train.seed,
        rank=env.rank,
        world_size=env.world_size,
        num_workers=config.data.num_workers,
        pin_memory=env.device.type == "cuda",
    )
    return TrainingParts(dataset, net, optimizer, schedule, scaler, criterion, loader)


def wrap_distributed(net: nn.Module, env: DistEnv) -> nn.Module:
    """``net`` itself in a single process, or wrapped in DistributedDataParallel under torchrun."""
    if not env.distributed:
        return net
    device_ids = [env.device.index] if env.device.type == "cuda" else None
    return DistributedDataParallel(net, device_ids=device_ids)
