"""The one entry point that builds a re-id network from its description."""

from __future__ import annotations

from pathlib import Path

from model.config import ModelConfig
from model.network import ReIDNet
from model.weights import load_imagenet_backbone


def build_model(
    backbone: str = "resnet50",
    attention: str = "rgasc",
    input_size: tuple[int, int] = (256, 128),
    num_classes: int = 0,
    pretrained: str | Path | None = None,
) -> ReIDNet:
    """Build the re-id network; ``pretrained`` is a local torchvision ImageNet state-dict file."""
    net = ReIDNet(ModelConfig(backbone, attention, tuple(input_size), num_classes))
    if pretrained is not None:
        load_imagenet_backbone(net, pretrained)
    return net
