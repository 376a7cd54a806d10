"""Resuming is exact: N epochs in one go equal N/2 epochs, a resume, and N/2 more (on CPU)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import model
from training.checkpoint import CheckpointError
from training.config import load_config
from training.datasets.synthetic import make_synthetic
from training.trainer import train

CONFIG = Path(__file__).resolve().parents[2] / "training" / "configs" / "synthetic.yaml"
TINY = [
    "sampler.batch_size=16",
    "train.checkpoint_every=2",
    "train.evaluate_at_end=false",
    "optim.warmup_epochs=1",
    "optim.milestones=[3]",
]


@pytest.fixture(scope="module")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_synthetic(
        tmp_path_factory.mktemp("tiny"), ids=16, cameras=2, images_per_camera=4, image_size=(64, 32)
    )


def tiny_config(epochs: int, workers: int):
    return load_config(CONFIG, [*TINY, f"train.epochs={epochs}", f"data.num_workers={workers}"])


def test_resume_reproduces_an_uninterrupted_run(data_root: Path, tmp_path: Path) -> None:
    full = train(tiny_config(4, workers=2), data_root, tmp_path / "full", device="cpu", progress=False)
    half = train(tiny_config(2, workers=0), data_root, tmp_path / "split", device="cpu", progress=False)
    assert [s.epoch for s in half.history] == [0, 1]
    resumed = train(
        tiny_config(4, workers=0),
        data_root,
        tmp_path / "split",
        resume=half.final_checkpoint,
        device="cpu",
        progress=False,
    )
    assert [s.epoch for s in resumed.history] == [2, 3]
    assert [s.loss for s in resumed.history] == [s.loss for s in full.history[2:]]

    expected = torch.load(full.final_checkpoint, weights_only=False)
    actual = torch.load(resumed.final_checkpoint, weights_only=False)
    assert actual["epoch"] == expected["epoch"] == 4
    for key, tensor in expected["state_dict"].items():
        assert torch.equal(tensor, actual["state_dict"][key]), key
    for index, state in expected["optimizer"]["state"].items():
        assert torch.equal(state["exp_avg"], actual["optimizer"]["state"][index]["exp_avg"])
    assert (tmp_path / "full" / "epoch_0002.pt").is_file() and (tmp_path / "full" / "config.yaml").is_file()

    net = model.load_checkpoint(resumed.final_checkpoint)
    assert net.config.backbone == "resnet18" and not net.training


def test_resume_with_another_architecture_is_a_clear_error(data_root: Path, tmp_path: Path) -> None:
    first = train(tiny_config(1, workers=0), data_root, tmp_path / "a", device="cpu", progress=False)
    other = load_config(CONFIG, [*TINY, "train.epochs=2", "model.attention=none"])
    with pytest.raises(CheckpointError, match="does not match"):
        train(other, data_root, tmp_path / "b", resume=first.final_checkpoint, device="cpu", progress=False)
    with pytest.raises(CheckpointError, match="does not exist"):
        train(other, data_root, tmp_path / "c", resume=tmp_path / "missing.pt", device="cpu", progress=False)
