"""The paper's objective: label-smoothed cross entropy on BN-neck logits + batch-hard triplet loss.

The triplet loss works on the pooled pre-BN feature with plain Euclidean distances (no normalisation).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from training import defaults


def cross_entropy_label_smoothing(
    logits: torch.Tensor, targets: torch.Tensor, epsilon: float = defaults.LABEL_SMOOTHING
) -> torch.Tensor:
    """Mean over the batch of ``sum_k -q_k log softmax(logits)_k`` with smoothed targets ``q``."""
    log_probs = F.log_softmax(logits.float(), dim=1)
    num_classes = logits.shape[1]
    smoothed = F.one_hot(targets, num_classes).to(log_probs.dtype) * (1.0 - epsilon) + epsilon / num_classes
    return (-smoothed * log_probs).sum(dim=1).mean()


def euclidean_distances(features: torch.Tensor) -> torch.Tensor:
    """Pairwise Euclidean distance matrix ``sqrt(clamp(|a|^2 + |b|^2 - 2ab, 1e-12))``."""
    features = features.float()
    squared = features.pow(2).sum(dim=1, keepdim=True)
    dist = squared + squared.t() - 2.0 * features @ features.t()
    return dist.clamp(min=1e-12).sqrt()


def hardest_pairs(dist: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per anchor, the largest same-id distance (self included) and the smallest other-id distance."""
    same = targets.view(-1, 1) == targets.view(1, -1)
    hardest_positive = dist.masked_fill(~same, float("-inf")).amax(dim=1)
    hardest_negative = dist.masked_fill(same, float("inf")).amin(dim=1)
    return hardest_positive, hardest_negative


def batch_hard_triplet(
    features: torch.Tensor, targets: torch.Tensor, margin: float = defaults.TRIPLET_MARGIN
) -> torch.Tensor:
    """``mean(relu(d_ap - d_an + margin))`` over anchors with batch-hard mining (Hermans et al.)."""
    hardest_positive, hardest_negative = hardest_pairs(euclidean_distances(features), targets)
    return F.relu(hardest_positive - hardest_negative + margin).mean()


def top1_accuracy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Fraction of samples whose arg-max logit is the target class."""
    return (logits.argmax(dim=1) == targets).float().mean()


@dataclass
class LossOutput:
    """Total loss and its logged parts (detached scalars except ``total``)."""

    total: torch.Tensor
    ce: torch.Tensor
    triplet: torch.Tensor
    accuracy: torch.Tensor


class ReIDLoss(nn.Module):
    """Weighted sum ``ce_weight * CE_ls(logits) + triplet_weight * Triplet(pooled)`` (paper: 1 : 1)."""

    def __init__(
        self,
        label_smoothing: float = defaults.LABEL_SMOOTHING,
        margin: float = defaults.TRIPLET_MARGIN,
        ce_weight: float = defaults.CE_WEIGHT,
        triplet_weight: float = defaults.TRIPLET_WEIGHT,
    ) -> None:
        super().__init__()
        self.label_smoothing = label_smoothing
        self.margin = margin
        self.ce_weight = ce_weight
        self.triplet_weight = triplet_weight

    def forward(self, pooled: torch.Tensor, logits: torch.Tensor, targets: torch.Tensor) -> LossOutput:
        ce = cross_entropy_label_smoothing(logits, targets, self.label_smoothing)
        triplet = batch_hard_triplet(pooled, targets, self.margin)
        total = self.ce_weight * ce + self.triplet_weight * triplet
        with torch.no_grad():
            accuracy = top1_accuracy(logits, targets)
        return LossOutput(total=total, ce=ce.detach(), triplet=triplet.detach(), accuracy=accuracy)
