"""Train and test image transforms; every random draw comes from an explicit numpy Generator.

Decoding, resizing and normalisation are :mod:`model.preprocess`'s, so evaluation matches the service.
"""

# Train follows the paper: Random2DTranslation (p 0.5), horizontal flip, ToTensor, ImageNet normalisation,
# random erasing on the normalised tensor (fill 0). The paper erased inside the trainer; we erase per
# sample in the data pipeline, which is equivalent.

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from model.preprocess import load_image, normalize_image, resize_rgb
from training import defaults


def random_2d_translation(
    image: np.ndarray,
    size: tuple[int, int],
    rng: np.random.Generator,
    prob: float = defaults.TRANSLATE_PROB,
    scale: float = defaults.TRANSLATE_SCALE,
) -> np.ndarray:
    """With probability ``prob`` enlarge by ``scale`` and crop ``size`` at random; else resize to ``size``."""
    height, width = size
    if rng.random() >= prob:
        return resize_rgb(image, size)
    big_h, big_w = round(height * scale), round(width * scale)
    enlarged = resize_rgb(image, (big_h, big_w))
    x1 = round(rng.uniform(0, big_w - width))
    y1 = round(rng.uniform(0, big_h - height))
    return enlarged[y1 : y1 + height, x1 : x1 + width]


def random_erasing(
    tensor: torch.Tensor,
    rng: np.random.Generator,
    prob: float = defaults.ERASE_PROB,
    area: tuple[float, float] = defaults.ERASE_AREA,
    min_aspect: float = defaults.ERASE_MIN_ASPECT,
    attempts: int = defaults.ERASE_ATTEMPTS,
    fill: float = defaults.ERASE_FILL,
) -> torch.Tensor:
    """Erase one random rectangle of a (C, H, W) tensor in place with ``fill``, with probability ``prob``."""
    if rng.random() >= prob:
        return tensor
    _, height, width = tensor.shape
    for _ in range(attempts):
        target = rng.uniform(area[0], area[1]) * height * width
        aspect = rng.uniform(min_aspect, 1.0 / min_aspect)
        h = round(math.sqrt(target * aspect))
        w = round(math.sqrt(target / aspect))
        if w < width and h < height:
            top = int(rng.integers(0, height - h + 1))
            left = int(rng.integers(0, width - w + 1))
            tensor[:, top : top + h, left : left + w] = fill
            return tensor
    return tensor


@dataclass(frozen=True)
class TrainTransform:
    """Paper train augmentation; call with an image path or array and a per-sample Generator."""

    input_size: tuple[int, int]
    translate_prob: float = defaults.TRANSLATE_PROB
    translate_scale: float = defaults.TRANSLATE_SCALE
    flip_prob: float = defaults.FLIP_PROB
    erase_prob: float = defaults.ERASE_PROB
    erase_area: tuple[float, float] = defaults.ERASE_AREA
    erase_min_aspect: float = defaults.ERASE_MIN_ASPECT
    erase_attempts: int = defaults.ERASE_ATTEMPTS

    def __call__(self, source: str | Path | np.ndarray, rng: np.random.Generator) -> torch.Tensor:
        image = load_image(source)
        image = random_2d_translation(image, self.input_size, rng, self.translate_prob, self.translate_scale)
        if rng.random() < self.flip_prob:
            image = image[:, ::-1]
        tensor = normalize_image(image)
        return random_erasing(
            tensor, rng, self.erase_prob, self.erase_area, self.erase_min_aspect, self.erase_attempts
        )


@dataclass(frozen=True)
class EvalTransform:
    """Deterministic test transform: decode, bilinear resize to the input size, normalise."""

    input_size: tuple[int, int]

    def __call__(self, source: str | Path | np.ndarray) -> torch.Tensor:
        return normalize_image(resize_rgb(load_image(source), self.input_size))
