"""Adam over trainable parameters and the paper's per-epoch warm-up + step learning-rate schedule."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from training import defaults


def build_optimizer(
    net: nn.Module,
    lr: float = defaults.LR,
    weight_decay: float = defaults.WEIGHT_DECAY,
    betas: tuple[float, float] = defaults.BETAS,
    eps: float = defaults.EPS,
) -> torch.optim.Adam:
    """Adam with coupled L2 decay on every parameter that requires grad (frozen BN-neck bias excluded)."""
    params = [p for p in net.parameters() if p.requires_grad]
    return torch.optim.Adam(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)


@dataclass
class WarmupStepSchedule:
    """Linear warm-up from ``warmup_start_lr`` to ``base_lr``, then x ``gamma`` at each milestone.

    ``lr(e) = start + (base - start) * e / warmup`` for ``e < warmup``, else ``base * gamma ** #{m <= e}``.
    """

    base_lr: float = defaults.LR
    warmup_epochs: int = defaults.WARMUP_EPOCHS
    warmup_start_lr: float = defaults.WARMUP_START_LR
    milestones: Sequence[int] = field(default_factory=lambda: list(defaults.MILESTONES))
    gamma: float = defaults.GAMMA
    last_epoch: int = -1

    def lr_at(self, epoch: int) -> float:
        """Learning rate used during 0-based ``epoch``."""
        if epoch < self.warmup_epochs:
            return self.warmup_start_lr + (self.base_lr - self.warmup_start_lr) * epoch / self.warmup_epochs
        return self.base_lr * self.gamma ** bisect_right(sorted(self.milestones), epoch)

    def step(self, optimizer: torch.optim.Optimizer, epoch: int) -> float:
        """Set every parameter group's lr for ``epoch`` and return it."""
        lr = self.lr_at(epoch)
        for group in optimizer.param_groups:
            group["lr"] = lr
        self.last_epoch = epoch
        return lr

    def state_dict(self) -> dict[str, Any]:
        """Schedule parameters and the last epoch set."""
        return {
            "base_lr": self.base_lr,
            "warmup_epochs": self.warmup_epochs,
            "warmup_start_lr": self.warmup_start_lr,
            "milestones": list(self.milestones),
            "gamma": self.gamma,
            "last_epoch": self.last_epoch,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the last epoch (the schedule itself comes from the configuration)."""
        self.last_epoch = int(state["last_epoch"])
