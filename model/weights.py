"""Weights I/O: ImageNet backbones, the paper's released checkpoints and this project's own."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from pathlib import Path

import torch

from model.config import ModelConfig
from model.defaults import INPUT_SIZE
from model.network import ReIDNet

CHECKPOINT_FORMAT = "rga-reid/1"
TRUNK_PREFIXES = ("conv1.", "bn1.", "layer1.", "layer2.", "layer3.", "layer4.")
RESNET_LAYOUTS = {
    ((2, 2, 2, 2), False): "resnet18",
    ((3, 4, 6, 3), False): "resnet34",
    ((3, 4, 6, 3), True): "resnet50",
}
MAX_LISTED_KEYS = 12


class WeightsError(ValueError):
    """A weights or checkpoint file that is missing, unreadable or does not fit the network."""


class MissingWeightsFileError(WeightsError):
    """The weights or checkpoint file does not exist."""


def _list_keys(keys: list[str]) -> str:
    shown = ", ".join(keys[:MAX_LISTED_KEYS])
    more = len(keys) - MAX_LISTED_KEYS
    return shown + (f" (and {more} more)" if more > 0 else "")


def read_weights_file(path: str | Path, what: str = "weights") -> dict:
    """Load a weights or checkpoint file on the CPU as plain tensors and containers (``weights_only``).

    The one reader of torch files: errors name the file and ``what`` it should hold.
    """
    path = Path(path)
    if not path.is_file():
        raise MissingWeightsFileError(f"{path}: {what} file not found")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise WeightsError(f"{path}: cannot read {what} (truncated or not a PyTorch file): {exc}") from exc
    if not isinstance(payload, Mapping):
        raise WeightsError(f"{path}: expected a state dict or checkpoint dict, got {type(payload).__name__}")
    return dict(payload)


def strip_prefix(state: Mapping[str, torch.Tensor], prefix: str = "module.") -> dict[str, torch.Tensor]:
    """Remove a DataParallel/DDP key prefix where present."""
    return {(k[len(prefix) :] if k.startswith(prefix) else k): v for k, v in state.items()}


def check_fits(
    expected: Mapping[str, torch.Tensor], state: Mapping[str, torch.Tensor], source: Path, what: str
) -> None:
    """Raise a WeightsError listing missing, unexpected and mis-shaped keys of ``state``."""
    missing = [k for k in expected if k not in state and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in state if k not in expected]
    wrong_shape = [
        f"{k} {tuple(state[k].shape)} != {tuple(v.shape)}"
        for k, v in expected.items()
        if k in state and tuple(state[k].shape) != tuple(v.shape)
    ]
    problems = []
    if missing:
        problems.append(f"missing keys: {_list_keys(missing)}")
    if unexpected:
        problems.append(f"unexpected keys: {_list_keys(unexpected)}")
    if wrong_shape:
        problems.append(f"wrong shapes: {_list_keys(wrong_shape)}")
    if problems:
        raise WeightsError(f"{source}: does not fit {what}; " + "; ".join(problems))


def load_fitting(module: torch.nn.Module, state: Mapping[str, torch.Tensor], source: Path, what: str) -> None:
    """Strictly load ``state`` into ``module`` (old files without BN step counters are accepted)."""
    expected = module.state_dict()
    check_fits(expected, state, source, what)
    module.load_state_dict({k: state.get(k, v) for k, v in expected.items()}, strict=True)


def load_imagenet_backbone(net: ReIDNet, path: str | Path) -> None:
    """Copy a torchvision-named ImageNet ResNet state dict into the trunk (RGA modules untouched)."""
    path = Path(path)
    state = read_weights_file(path)
    state = strip_prefix(state.get("state_dict", state))
    trunk_state = {k: v for k, v in state.items() if k.startswith(TRUNK_PREFIXES)}
    if not trunk_state:
        raise WeightsError(f"{path}: no ResNet trunk keys (conv1.*, layer1.* ...) found")
    trunk = {k: v for k, v in net.backbone.state_dict().items() if k.startswith(TRUNK_PREFIXES)}
    check_fits(trunk, trunk_state, path, f"a {net.config.backbone} backbone")
    net.backbone.load_state_dict(trunk_state, strict=False)


def checkpoint_payload(net: ReIDNet) -> dict:
    """The dict this project saves for a network: format tag, architecture and weights."""
    return {
        "format": CHECKPOINT_FORMAT,
        "model_config": net.config.to_dict(),
        "state_dict": {k: v.detach().cpu() for k, v in net.state_dict().items()},
    }


def _block_counts(state: Mapping[str, torch.Tensor]) -> tuple[int, ...]:
    counts = []
    for index in range(1, 5):
        blocks = {int(m.group(1)) for k in state if (m := re.match(rf"backbone\.layer{index}\.(\d+)\.", k))}
        counts.append(len(blocks))
    return tuple(counts)


def infer_paper_config(
    state: Mapping[str, torch.Tensor], source: Path, input_size: tuple[int, int] | None
) -> ModelConfig:
    """Work out backbone, attention, classes and input size from the paper code's state dict keys."""
    bottleneck = "backbone.layer1.0.conv3.weight" in state
    backbone = RESNET_LAYOUTS.get((_block_counts(state), bottleneck))
    if backbone is None:
        raise WeightsError(f"{source}: backbone layout {_block_counts(state)} is not ResNet-18/34/50")
    spatial = "backbone.rga_att1.theta_spatial.0.weight" in state
    channel = "backbone.rga_att1.theta_channel.0.weight" in state
    attention = {(True, True): "rgasc", (True, False): "rgas", (False, True): "rgac"}.get(
        (spatial, channel), "none"
    )
    if attention == "none":
        size = input_size or INPUT_SIZE
    else:
        key = (
            "backbone.rga_att1.gg_spatial.0.weight" if spatial else "backbone.rga_att1.theta_channel.0.weight"
        )
        positions = state[key].shape[1] // (2 if spatial else 1)
        size = input_size or _size_from_positions(positions, source)
        if (size[0] // 4) * (size[1] // 4) != positions:
            raise WeightsError(
                f"{source}: RGA modules were built for {positions} stage-1 positions, not {size}"
            )
    classes = int(state["cls.weight"].shape[0]) if "cls.weight" in state else 0
    return ModelConfig(backbone, attention, tuple(size), classes)


def _size_from_positions(positions: int, source: Path) -> tuple[int, int]:
    quarter_width = math.isqrt(positions // 2)
    if 2 * quarter_width * quarter_width != positions:
        raise WeightsError(
            f"{source}: cannot infer the input size from {positions} positions; pass input_size"
        )
    return (8 * quarter_width, 4 * quarter_width)


def load_checkpoint(
    path: str | Path, input_size: tuple[int, int] | None = None, map_location: str = "cpu"
) -> ReIDNet:
    """Load this project's checkpoint or the paper code's ``checkpoint_N.pth.tar`` into an eval-mode net."""
    path = Path(path)
    payload = read_weights_file(path)
    if payload.get("format") == CHECKPOINT_FORMAT:
        config = ModelConfig.from_dict(payload["model_config"])
        state = payload["state_dict"]
    else:
        state = strip_prefix(payload.get("state_dict", payload))
        if not any(k.startswith("backbone.") for k in state):
            raise WeightsError(f"{path}: neither an rga-reid checkpoint nor an RGA paper checkpoint")
        config = infer_paper_config(state, path, input_size)
    net = ReIDNet(config)
    load_fitting(net, state, path, f"{config.backbone}/{config.attention} network")
    return net.to(map_location).eval()
