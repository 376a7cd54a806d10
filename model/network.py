"""The re-id network: torchvision ResNet with last stride 1, an RGA module per stage, BN-neck."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models import resnet

from model.config import ModelConfig
from model.rga import RGAModule

RESNET_BUILDERS = {
    "resnet18": resnet.resnet18,
    "resnet34": resnet.resnet34,
    "resnet50": resnet.resnet50,
}
STAGE_STRIDES = (4, 8, 16, 16)


def set_last_stride_one(layer: nn.Sequential) -> None:
    """Make the first block of a ResNet stage keep its input resolution (last stride 1)."""
    for module in layer[0].modules():
        if isinstance(module, nn.Conv2d) and module.stride == (2, 2):
            module.stride = (1, 1)


class RGABackbone(nn.Module):
    """ResNet trunk with an optional RGA module after each of the four stages."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        trunk = RESNET_BUILDERS[config.backbone](weights=None)
        set_last_stride_one(trunk.layer4)
        self.conv1, self.bn1, self.relu, self.maxpool = trunk.conv1, trunk.bn1, trunk.relu, trunk.maxpool
        self.layer1, self.layer2, self.layer3, self.layer4 = (
            trunk.layer1,
            trunk.layer2,
            trunk.layer3,
            trunk.layer4,
        )
        self.out_channels = trunk.fc.in_features
        height, width = config.input_size
        for index, stride in enumerate(STAGE_STRIDES, start=1):
            channels = 64 * 2 ** (index - 1) * type(getattr(self, f"layer{index}")[-1]).expansion
            if config.attention == "none":
                module: nn.Module = nn.Identity()
            else:
                module = RGAModule(
                    channels,
                    (height // stride) * (width // stride),
                    use_spatial=config.use_spatial,
                    use_channel=config.use_channel,
                    cha_ratio=config.channel_ratio,
                    spa_ratio=config.spatial_ratio,
                    down_ratio=config.down_ratio,
                )
            setattr(self, f"rga_att{index}", module)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.rga_att1(self.layer1(x))
        x = self.rga_att2(self.layer2(x))
        x = self.rga_att3(self.layer3(x))
        return self.rga_att4(self.layer4(x))


class ReIDNet(nn.Module):
    """Backbone, global average pooling, BN-neck (bias frozen at 0) and an optional classifier.

    Train mode returns ``(pooled, bn_feature, logits)``; eval mode returns the BN-neck feature.
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.input_size = config.input_size
        self.backbone = RGABackbone(config)
        self.feature_dim = self.backbone.out_channels
        self.feat_bn = nn.BatchNorm1d(self.feature_dim)
        nn.init.ones_(self.feat_bn.weight)
        nn.init.zeros_(self.feat_bn.bias)
        self.feat_bn.bias.requires_grad_(False)
        self.cls: nn.Linear | None = None
        if config.num_classes > 0:
            self.cls = nn.Linear(self.feature_dim, config.num_classes, bias=False)
            nn.init.normal_(self.cls.weight, std=0.001)

    def check_input(self, x: torch.Tensor) -> None:
        """Refuse an input whose spatial size differs from the size the RGA modules were built for."""
        if tuple(x.shape[-2:]) != tuple(self.input_size) or x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(
                f"expected input of shape (N, 3, {self.input_size[0]}, {self.input_size[1]}), "
                f"got {tuple(x.shape)}"
            )

    def features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Pooled pre-BN feature and BN-neck feature, each (N, D)."""
        self.check_input(x)
        pooled = F.adaptive_avg_pool2d(self.backbone(x), 1).flatten(1)
        return pooled, self.feat_bn(pooled)

    def forward(self, x: torch.Tensor):
        pooled, bn_feature = self.features(x)
        if not self.training:
            return bn_feature
        logits = self.cls(bn_feature) if self.cls is not None else None
        return pooled, bn_feature, logits

    @torch.no_grad()
    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """L2-normalised BN-neck embedding, (N, D)."""
        return F.normalize(self.features(x)[1], dim=1)


class EmbeddingNet(nn.Module):
    """Inference-only wrapper: normalised image batch in, L2-normalised embedding out (for export)."""

    def __init__(self, net: ReIDNet) -> None:
        super().__init__()
        self.backbone = net.backbone
        self.feat_bn = net.feat_bn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = self.backbone(x).mean(dim=(2, 3))
        return F.normalize(self.feat_bn(pooled), dim=1)
