"""End to end on CPU: synthetic data, train ResNet-18 + RGA-SC at 64x32; beat chance and the untrained net."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from model import build_model
from training.config import load_config
from training.datasets import build_dataset
from training.datasets.synthetic import make_synthetic
from training.evaluation.report import evaluate_model
from training.trainer import train

CONFIG = Path(__file__).resolve().parents[2] / "training" / "configs" / "synthetic.yaml"


def bn_rank1(report: dict) -> float:
    return float(report["results"]["bn"]["cmc"][0])


@pytest.mark.slow
def test_training_beats_chance_and_the_untrained_network(tmp_path: Path) -> None:
    root = make_synthetic(tmp_path / "synthetic", ids=40, cameras=4, images_per_camera=4, image_size=(64, 32))
    overrides = [
        "train.epochs=80",
        "optim.milestones=[60]",
        "train.checkpoint_every=1000",
        "eval.num_rank_lists=4",
    ]
    config = load_config(CONFIG, overrides)
    dataset = build_dataset("market1501", root)

    torch.manual_seed(config.train.seed)
    untrained = build_model("resnet18", "rgasc", (64, 32), num_classes=dataset.num_train_ids)
    before = bn_rank1(evaluate_model(untrained, dataset, tmp_path / "untrained", num_rank_lists=0))

    result = train(config, root, tmp_path / "run", device="cpu", progress=False)
    after = bn_rank1(result.metrics)
    chance = 1 / len({pid for _, pid, _ in dataset.query})
    throughput = sum(s.images for s in result.history) / sum(s.seconds for s in result.history)
    print(
        f"rank-1 untrained {before:.3f} trained {after:.3f} chance {chance:.3f}; {throughput:.1f} train img/s"
    )

    assert after >= 0.6 and after >= 6 * chance
    assert after >= before + 0.2
    assert result.history[-1].loss < result.history[0].loss and result.history[-1].accuracy > 0.5
    saved = torch.load(result.final_checkpoint, weights_only=True)
    assert saved["metrics"] == result.metrics and saved["epoch"] == 80
    for name in ("metrics.json", "cmc.png", "rank_lists.png"):
        assert (tmp_path / "run" / "eval" / name).is_file()
