"""The one entry point that builds a re-id network from its description."""

from __future__ import annotations

from pathlib import Path

from model import defaults
from model.config import ModelConfig
from model.network import ReIDNet
from model.weights import load_imagenet_backbone


def build_model(
    backbone: str = defaults.BACKBONE,
    attention: str = defaults.ATTENTION,
    input_size: tuple[int, int] = defaults.INPUT_SIZE,
    num_classes: int = 0,
    pretrained: str | Path | None = None,
) -> ReIDNet:
    """Build the re-id network; ``pretrained`` is a local torchvision ImageNet state-dict file."""
    net = ReIDNet(ModelConfig(backbone, attention, tuple(input_size), num_classes))
    if pretrained is not None:
        load_imagenet_backbone(net, pretrained)
    return net
