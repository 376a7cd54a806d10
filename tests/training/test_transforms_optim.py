"""Train/test transforms (shape, normalisation, translation, flip, erasing), optimiser and lr schedule."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from model import build_model
from model.preprocess import IMAGENET_MEAN, preprocess, resize_rgb
from training.optim import WarmupStepSchedule, build_optimizer
from training.transforms import EvalTransform, TrainTransform, random_2d_translation, random_erasing

SIZE = (64, 32)


def make_image(height: int = 100, width: int = 45, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def test_test_transform_matches_model_preprocess(tmp_path) -> None:
    from PIL import Image

    path = tmp_path / "person.png"
    Image.fromarray(make_image()).save(path)
    ours = EvalTransform(SIZE)(path)
    assert ours.shape == (3, *SIZE) and ours.dtype == torch.float32
    torch.testing.assert_close(ours, preprocess([path], SIZE)[0], rtol=0, atol=0)


def test_normalisation_maps_the_imagenet_mean_colour_to_zero() -> None:
    mean_colour = np.broadcast_to(np.round(np.array(IMAGENET_MEAN) * 255).astype(np.uint8), (*SIZE, 3)).copy()
    tensor = EvalTransform(SIZE)(mean_colour)
    assert tensor.abs().max().item() < 0.01


def test_train_transform_shape_and_reproducibility() -> None:
    transform = TrainTransform(SIZE)
    image = make_image()
    outputs = [transform(image, np.random.default_rng(seed)) for seed in (7, 7, 8)]
    assert outputs[0].shape == (3, *SIZE) and outputs[0].dtype == torch.float32
    assert torch.equal(outputs[0], outputs[1])
    assert not torch.equal(outputs[0], outputs[2])


def test_translation_resizes_or_crops_the_enlarged_image() -> None:
    image = make_image()
    plain = random_2d_translation(image, SIZE, np.random.default_rng(0), prob=0.0)
    np.testing.assert_array_equal(plain, resize_rgb(image, SIZE))
    enlarged = resize_rgb(image, (72, 36))
    for seed in range(20):
        crop = random_2d_translation(image, SIZE, np.random.default_rng(seed), prob=1.0)
        assert crop.shape == (*SIZE, 3)
        found = any(
            np.array_equal(enlarged[y : y + SIZE[0], x : x + SIZE[1]], crop)
            for y in range(9)
            for x in range(5)
        )
        assert found, "a translated image must be a window of the x1.125 resize"


def test_flip_mirrors_the_image() -> None:
    image = make_image()
    flipped = TrainTransform(SIZE, translate_prob=0.0, flip_prob=1.0, erase_prob=0.0)(
        image, np.random.default_rng(0)
    )
    plain = EvalTransform(SIZE)(image)
    torch.testing.assert_close(flipped, plain.flip(-1))


def test_random_erasing_statistics() -> None:
    height, width = 128, 64
    erased_fraction = []
    for seed in range(400):
        tensor = random_erasing(torch.ones(3, height, width), np.random.default_rng(seed), prob=0.5)
        zeros = tensor[0] == 0
        assert torch.equal(zeros, (tensor == 0).all(dim=0)), "all channels are filled together"
        if zeros.any():
            rows, cols = zeros.any(dim=1).sum().item(), zeros.any(dim=0).sum().item()
            assert rows * cols == zeros.sum().item(), "the erased region is one rectangle"
            assert 0.3 - 0.05 <= rows / cols <= 1 / 0.3 + 0.3
            erased_fraction.append(zeros.float().mean().item())
    assert 0.42 <= len(erased_fraction) / 400 <= 0.58
    assert all(0.015 <= f <= 0.41 for f in erased_fraction)
    assert 0.15 <= float(np.mean(erased_fraction)) <= 0.26


@pytest.mark.parametrize(
    ("epoch", "expected"),
    [
        (0, 8e-6),
        (10, 8e-6 + (8e-4 - 8e-6) * 10 / 20),
        (19, 8e-6 + (8e-4 - 8e-6) * 19 / 20),
        (20, 8e-4),
        (79, 8e-4),
        (80, 4e-4),
        (120, 2e-4),
        (160, 1e-4),
        (359, 6.25e-6),
        (360, 3.125e-6),
        (599, 3.125e-6),
    ],
)
def test_paper_lr_schedule(epoch: int, expected: float) -> None:
    assert WarmupStepSchedule().lr_at(epoch) == pytest.approx(expected, rel=1e-9)


def test_schedule_sets_every_group_before_the_epoch() -> None:
    layer = nn.Linear(2, 2)
    optimizer = torch.optim.Adam([{"params": [layer.weight]}, {"params": [layer.bias]}], lr=0.1)
    schedule = WarmupStepSchedule()
    assert schedule.step(optimizer, 80) == pytest.approx(4e-4)
    assert [group["lr"] for group in optimizer.param_groups] == pytest.approx([4e-4, 4e-4])
    restored = WarmupStepSchedule()
    restored.load_state_dict(schedule.state_dict())
    assert restored.last_epoch == 80


def test_optimizer_is_coupled_adam_without_frozen_parameters() -> None:
    net = build_model("resnet18", "rgasc", SIZE, num_classes=5)
    optimizer = build_optimizer(net)
    assert type(optimizer) is torch.optim.Adam
    group = optimizer.param_groups[0]
    assert group["weight_decay"] == 5e-4 and group["betas"] == (0.9, 0.999) and group["eps"] == 1e-8
    optimised = {id(p) for g in optimizer.param_groups for p in g["params"]}
    assert id(net.feat_bn.bias) not in optimised
    assert id(net.feat_bn.weight) in optimised and id(net.cls.weight) in optimised
    assert len(optimised) == sum(1 for p in net.parameters() if p.requires_grad)
