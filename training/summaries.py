"""Summaries of a run: per-epoch running sums and averages, and the headline numbers of an evaluation."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from training.losses import LossOutput


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
class RunningSums:
    """Image-weighted sums of the loss parts and the image count, in one float64 tensor (one all-reduce)."""

    PARTS: ClassVar[tuple[str, ...]] = ("loss", "ce", "triplet", "accuracy")

    values: torch.Tensor

    @classmethod
    def zeros(cls, device: torch.device) -> RunningSums:
        """Empty sums on ``device``: one slot per part, then the image count."""
        return cls(torch.zeros(len(cls.PARTS) + 1, dtype=torch.float64, device=device))

    def add(self, out: LossOutput, count: int) -> None:
        """Add one batch of ``count`` images, each part weighted by the batch size."""
        parts = torch.stack([out.total.detach(), out.ce, out.triplet, out.accuracy]).double() * count
        self.values[: len(self.PARTS)] += parts
        self.values[len(self.PARTS)] += count

    @property
    def images(self) -> float:
        """Images summed so far."""
        return float(self.values[len(self.PARTS)])

    def mean(self, part: str) -> float:
        """Average of one part (``loss``, ``ce``, ``triplet`` or ``accuracy``) over the images so far."""
        return float(self.values[self.PARTS.index(part)]) / max(self.images, 1.0)

    def stats(self, epoch: int, lr: float, seconds: float) -> EpochStats:
        """The epoch's averages, learning rate, image count and duration."""
        return EpochStats(
            epoch=epoch,
            lr=lr,
            loss=self.mean("loss"),
            ce=self.mean("ce"),
            triplet=self.mean("triplet"),
            accuracy=self.mean("accuracy"),
            images=int(self.images),
            seconds=seconds,
        )


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
