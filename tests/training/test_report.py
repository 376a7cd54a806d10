"""Behaviour of feature extraction and the evaluation report."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from training.evaluation import evaluate_model, extract_features

COLOURS = {1: (200, 30, 30), 2: (30, 200, 30), 3: (30, 30, 200), 4: (200, 200, 30)}


class MeanColourNet(nn.Module):
    """Stand-in network: pooled = mean colour of the left half, bn = mean colour of the whole image."""

    input_size = (16, 8)

    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(1))

    def features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        pooled = x[..., : x.shape[-1] // 2].mean(dim=(2, 3)) * self.scale
        return pooled, x.mean(dim=(2, 3)) * self.scale + 0.01


@dataclass
class Split:
    query: list[tuple[str, int, int]] = field(default_factory=list)
    gallery: list[tuple[str, int, int]] = field(default_factory=list)


def _write(path: Path, colour: tuple[int, int, int], seed: int, split_colour: bool = False) -> str:
    rng = np.random.default_rng(seed)
    pixels = np.clip(np.array(colour) + rng.integers(-20, 20, (24, 12, 3)), 0, 255).astype(np.uint8)
    if split_colour:
        pixels[:, 6:] = 255 - pixels[:, 6:]
    Image.fromarray(pixels).save(path)
    return str(path)


def _split(tmp_path: Path) -> Split:
    split = Split()
    for pid, colour in COLOURS.items():
        split.query.append((_write(tmp_path / f"q{pid}.png", colour, pid), pid, 0))
        for k in range(3):
            split.gallery.append((_write(tmp_path / f"g{pid}_{k}.png", colour, 10 * pid + k), pid, 1 + k % 2))
    split.gallery.append((_write(tmp_path / "same_cam.png", COLOURS[1], 99), 1, 0))
    split.gallery.append((_write(tmp_path / "junk.png", COLOURS[2], 98), -1, 1))
    return split


def test_extract_features_returns_both_features_per_image(tmp_path: Path) -> None:
    paths = [_write(tmp_path / f"{i}.png", COLOURS[1 + i % 4], i) for i in range(5)]
    feats = extract_features(MeanColourNet(), paths, batch_size=2)
    assert set(feats) == {"bn", "pooled"}
    assert feats["bn"].shape == (5, 3) and feats["pooled"].shape == (5, 3)
    assert feats["bn"].dtype == np.float32


def test_flip_averages_image_and_mirror(tmp_path: Path) -> None:
    image = _write(tmp_path / "a.png", COLOURS[1], 0, split_colour=True)
    mirror = tmp_path / "mirror.png"
    Image.open(image).transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(mirror)
    net = MeanColourNet()
    plain = extract_features(net, [image, str(mirror)])["pooled"]
    flipped = extract_features(net, [image], flip=True)["pooled"]
    assert not np.allclose(plain[0], plain[1])
    np.testing.assert_allclose(flipped[0], plain.mean(axis=0), atol=1e-5)


def test_extraction_restores_training_mode(tmp_path: Path) -> None:
    net = MeanColourNet().train()
    extract_features(net, [_write(tmp_path / "a.png", COLOURS[1], 0)])
    assert net.training


def test_evaluate_model_writes_metrics_and_figures(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    split = _split(tmp_path)
    out = tmp_path / "report"
    report = evaluate_model(
        MeanColourNet(), split, out, batch_size=4, rerank=True, num_rank_lists=3, max_rank=10
    )
    printed = capsys.readouterr().out
    assert "bn+rerank" in printed and "mAP-int" in printed
    saved = json.loads((out / "metrics.json").read_text())
    assert saved == report
    assert set(saved["results"]) == {"bn", "pooled", "bn+rerank", "pooled+rerank"}
    bn = saved["results"]["bn"]
    assert bn["cmc"][0] == 1.0 and bn["mAP"] == pytest.approx(1.0)
    assert bn["num_valid_queries"] == 4 and bn["num_skipped_queries"] == 0
    assert len(bn["cmc"]) == 10
    for name in ("cmc.png", "rank_lists.png"):
        with Image.open(out / name) as img:
            assert img.size[0] > 100 and img.size[1] > 100


def test_real_network_contract(tmp_path: Path) -> None:
    build = pytest.importorskip("model.build")
    net = build.build_model(backbone="resnet18", attention="rgasc", input_size=(64, 32))
    paths = [_write(tmp_path / f"{i}.png", COLOURS[1 + i], i) for i in range(3)]
    feats = extract_features(net, paths, batch_size=2, flip=True)
    assert feats["bn"].shape[0] == 3 and feats["pooled"].shape == feats["bn"].shape
    assert np.isfinite(feats["bn"]).all()
