"""The paper's architecture defaults, each defined once (training recipe defaults: ``training.defaults``)."""

from __future__ import annotations

# Backbone trunk: ResNet-50 from torchvision with last stride 1.
BACKBONE = "resnet50"
# Attention variant after each ResNet stage: spatial then channel (RGA-SC).
ATTENTION = "rgasc"
# Network input (height, width) in pixels; the RGA modules are built for this size.
INPUT_SIZE: tuple[int, int] = (256, 128)
# RGA channel branch: embedding width = channels // CHANNEL_RATIO.
CHANNEL_RATIO = 8
# RGA spatial branch: embedding width = positions // SPATIAL_RATIO.
SPATIAL_RATIO = 8
# RGA attention head: hidden width = inputs // DOWN_RATIO.
DOWN_RATIO = 8
