"""The recipe accepts exactly the architectures the network can be built with."""

from __future__ import annotations

import pytest

from model import ModelConfig, build_model
from training.config import ConfigError, TrainConfig, build_config


@pytest.mark.parametrize("size", [(16, 16), (40, 24), (256, 120)])
def test_an_input_size_the_network_refuses_fails_at_config_time(size: tuple[int, int]) -> None:
    with pytest.raises(ConfigError, match=r"model\.input_size: .*multiples of 16, at least 32x32"):
        build_config({"model": {"input_size": list(size)}})
    with pytest.raises(ValueError, match="multiples of 16"):
        ModelConfig(input_size=size)


@pytest.mark.parametrize(("key", "value"), [("backbone", "vgg"), ("attention", "nonlocal")])
def test_unknown_architecture_names_fail_with_the_networks_message(key: str, value: str) -> None:
    with pytest.raises(ConfigError, match=rf"model\.{key}: .*unknown {key} '{value}'"):
        build_config({"model": {key: value}})


def test_an_accepted_recipe_builds_its_network() -> None:
    recipe = {"model": {"backbone": "resnet18", "attention": "rgas", "input_size": [32, 48]}}
    section = build_config(recipe).model
    net = build_model(section.backbone, section.attention, section.input_size)
    assert net.input_size == (32, 48)


def test_assignment_is_checked_like_loading() -> None:
    section = TrainConfig().model
    with pytest.raises(ValueError, match="multiples of 16"):
        section.input_size = (48, 40)
    section.input_size = (64, 32)
    assert section.input_size == (64, 32)
