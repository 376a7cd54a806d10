"""Losses against hand computation: label-smoothed CE, batch-hard triplet, accuracy and their sum."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from training.losses import (
    ReIDLoss,
    batch_hard_triplet,
    cross_entropy_label_smoothing,
    euclidean_distances,
    top1_accuracy,
)


def test_label_smoothing_matches_the_formula() -> None:
    logits = torch.tensor([[2.0, 0.5, -1.0], [0.0, 1.0, 3.0]])
    targets = torch.tensor([0, 1])
    eps, classes = 0.1, 3
    expected = 0.0
    for row, target in zip(logits.tolist(), targets.tolist(), strict=True):
        log_z = math.log(sum(math.exp(v) for v in row))
        for k, value in enumerate(row):
            q = (1 - eps) * (k == target) + eps / classes
            expected -= q * (value - log_z)
    expected /= 2
    assert cross_entropy_label_smoothing(logits, targets, eps).item() == pytest.approx(expected, rel=1e-6)


def test_zero_smoothing_is_plain_cross_entropy() -> None:
    logits = torch.randn(6, 5, generator=torch.Generator().manual_seed(0))
    targets = torch.tensor([0, 1, 2, 3, 4, 0])
    ours = cross_entropy_label_smoothing(logits, targets, 0.0)
    assert ours.item() == pytest.approx(F.cross_entropy(logits, targets).item(), rel=1e-6)


def test_batch_hard_triplet_on_a_hand_case() -> None:
    # Points on a line; ids {0, 1} and {3, 7}. Distances: d01=1 d03=3 d07=7 d13=2 d17=6 d37=4.
    # Margin 0.3, anchor (d_ap, d_an) -> loss: 0 (1, 3) -> 0; 1 (1, 2) -> 0; 3 (4, 2) -> 2.3; 7 (4, 6) -> 0
    features = torch.tensor([[0.0], [1.0], [3.0], [7.0]])
    targets = torch.tensor([0, 0, 1, 1])
    assert batch_hard_triplet(features, targets, margin=0.3).item() == pytest.approx(2.3 / 4, rel=1e-6)
    assert batch_hard_triplet(features, targets, margin=5.0).item() == pytest.approx(
        (3 + 4 + 7 + 3) / 4, rel=1e-6
    )


def test_distances_are_euclidean_with_clamped_self_distance() -> None:
    features = torch.tensor([[3.0, 4.0], [0.0, 0.0], [3.0, 0.0]])
    dist = euclidean_distances(features)
    expected = torch.tensor([[1e-6, 5.0, 4.0], [5.0, 1e-6, 3.0], [4.0, 3.0, 1e-6]])
    torch.testing.assert_close(dist, expected, rtol=1e-5, atol=1e-6)


def test_triplet_gradient_is_finite_for_identical_features() -> None:
    features = torch.ones(4, 3, requires_grad=True)
    batch_hard_triplet(features, torch.tensor([0, 0, 1, 1])).backward()
    assert torch.isfinite(features.grad).all()


def test_reid_loss_weights_parts_and_reports_accuracy() -> None:
    generator = torch.Generator().manual_seed(1)
    pooled = torch.randn(8, 16, generator=generator)
    logits = torch.randn(8, 4, generator=generator)
    targets = torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])
    out = ReIDLoss(label_smoothing=0.1, margin=0.3, ce_weight=0.5, triplet_weight=2.0)(
        pooled, logits, targets
    )
    ce = cross_entropy_label_smoothing(logits, targets, 0.1)
    triplet = batch_hard_triplet(pooled, targets, 0.3)
    assert out.total.item() == pytest.approx(0.5 * ce.item() + 2.0 * triplet.item(), rel=1e-6)
    assert out.accuracy.item() == pytest.approx(top1_accuracy(logits, targets).item())


def test_top1_accuracy() -> None:
    logits = torch.tensor([[1.0, 0.0], [0.0, 1.0], [2.0, 1.0], [0.0, 3.0]])
    assert top1_accuracy(logits, torch.tensor([0, 1, 1, 0])).item() == pytest.approx(0.5)
