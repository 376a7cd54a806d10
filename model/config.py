"""The architecture description shared by checkpoints, exports and the service."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from model import defaults

BACKBONES = ("resnet18", "resnet34", "resnet50")
ATTENTIONS = ("rgasc", "rgas", "rgac", "none")


@dataclass(frozen=True)
class ModelConfig:
    """What is needed to rebuild a network: backbone, attention variant, input size, classes."""

    backbone: str = defaults.BACKBONE
    attention: str = defaults.ATTENTION
    input_size: tuple[int, int] = defaults.INPUT_SIZE
    num_classes: int = 0
    channel_ratio: int = defaults.CHANNEL_RATIO
    spatial_ratio: int = defaults.SPATIAL_RATIO
    down_ratio: int = defaults.DOWN_RATIO

    def __post_init__(self) -> None:
        if self.backbone not in BACKBONES:
            raise ValueError(f"unknown backbone {self.backbone!r}; choose one of {', '.join(BACKBONES)}")
        if self.attention not in ATTENTIONS:
            raise ValueError(f"unknown attention {self.attention!r}; choose one of {', '.join(ATTENTIONS)}")
        height, width = (int(v) for v in self.input_size)
        if height < 32 or width < 32 or height % 16 or width % 16:
            raise ValueError(f"input size {self.input_size} must be multiples of 16, at least 32x32")
        object.__setattr__(self, "input_size", (height, width))
        if self.num_classes < 0:
            raise ValueError("num_classes must be >= 0")

    @property
    def use_spatial(self) -> bool:
        return self.attention in ("rgasc", "rgas")

    @property
    def use_channel(self) -> bool:
        return self.attention in ("rgasc", "rgac")

    def to_dict(self) -> dict:
        data = asdict(self)
        data["input_size"] = list(self.input_size)
        return data

    @classmethod
    def from_dict(cls, data: dict) -> ModelConfig:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        if "input_size" in known:
            known["input_size"] = tuple(known["input_size"])
        return cls(**known)
