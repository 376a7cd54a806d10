"""Unsupervised adaptation: Jaccard distances and DBSCAN on a tiny set, the memories, the unlabelled
folder, and a resumed run that matches an uninterrupted one (with the export's provenance)."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import model
from model.crop_export import export_name, parse_export_name
from training.adaptation import (
    CameraMemory,
    ClusterMemory,
    adapt,
    cluster_features,
    cluster_stats,
    load_adapt_config,
    read_unlabelled,
)
from training.adaptation.clustering import OUTLIER, camera_centred, jaccard_distance
from training.checkpoint import CheckpointError, read_checkpoint_file
from training.cli import main as reid_train
from training.datasets.synthetic import make_synthetic
from training.evaluation.rerank import k_reciprocal_jaccard

TINY = [
    "data.num_workers=0",
    "cluster.k1=6",
    "cluster.k2=2",
    "cluster.eps=0.6",
    "cluster.min_samples=2",
    "sampler.batch_size=16",
    "sampler.num_instances=4",
    "train.iters=2",
    "train.epochs=2",
    "train.amp=false",
    "optim.milestones=[1]",
]


def blobs(groups: int = 5, per_group: int = 10, outliers: int = 2, seed: int = 0) -> tuple[np.ndarray, list]:
    """Well separated groups of 16-d points plus a few points far from everything."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(groups, 16)) * 4
    points = [c + 0.1 * rng.normal(size=(per_group, 16)) for c in centres]
    lonely = rng.normal(size=(outliers, 16)) * 4
    labels = [g for g in range(groups) for _ in range(per_group)] + [100 + k for k in range(outliers)]
    return np.concatenate([*points, lonely]).astype(np.float32), labels


def test_clustering_a_tiny_set_finds_its_groups_and_leaves_the_strays_out():
    features, truth = blobs()
    distance = jaccard_distance(features, k1=9, k2=1)
    assert distance.shape == (52, 52) and np.allclose(distance, distance.T, atol=1e-6)
    assert distance.min() >= 0 and distance.max() <= 1 and np.all(np.diag(distance) == 0)
    same = np.equal.outer(truth, truth)
    assert distance[same & ~np.eye(52, dtype=bool)].max() < distance[~same].min()

    labels = cluster_features(features, k1=9, k2=1, eps=0.5, min_samples=3)
    assert sorted(set(labels[:50].tolist())) == [0, 1, 2, 3, 4]
    assert labels[50:].tolist() == [OUTLIER, OUTLIER]
    stats = cluster_stats(labels, truth)
    assert (stats.clusters, stats.clustered, stats.outliers, stats.purity) == (5, 50, 2, 1.0)
    assert cluster_stats(labels, [*truth[:-1], None]).purity is None  # purity only when every label exists


def test_camera_centring_takes_out_what_a_camera_puts_on_everyone():
    features, truth = blobs(groups=4, per_group=8, outliers=0)
    cameras = np.tile([0, 1], 16)
    cast = np.where(cameras[:, None] == 1, 6.0, 0.0) * np.eye(16, dtype=np.float32)[0]
    shifted = features + cast  # camera 1 adds the same colour cast to every crop it sees
    centred = camera_centred(shifted, cameras)
    assert np.allclose(centred[cameras == 0].mean(axis=0), 0, atol=1e-6)
    assert np.allclose(centred[cameras == 1].mean(axis=0), 0, atol=1e-6)
    labels = cluster_features(centred, k1=7, k2=1, eps=0.5, min_samples=3)
    assert cluster_stats(labels, truth).purity == 1.0 and cluster_stats(labels).clusters == 4


def test_jaccard_refuses_what_is_not_one_set_to_itself():
    with pytest.raises(ValueError):
        k_reciprocal_jaccard(np.zeros((3, 4)))
    assert k_reciprocal_jaccard(np.zeros((1, 1))).tolist() == [[0.0]]


def test_memories_pull_features_to_their_cluster_and_backpropagate():
    torch.manual_seed(0)
    centroids = torch.nn.functional.normalize(torch.randn(4, 8), dim=1)
    memory = ClusterMemory(centroids.clone(), temperature=0.1, momentum=0.5, update="hard")
    before = memory.entries.clone()
    features = (centroids[[0, 0, 1, 1]] + 0.05 * torch.randn(4, 8)).requires_grad_()
    targets = torch.tensor([0, 0, 1, 1])
    loss = memory.loss(features, targets)
    loss.backward()
    assert torch.isfinite(loss) and features.grad is not None
    assert not torch.allclose(memory.entries[:2], before[:2]) and torch.equal(memory.entries[2:], before[2:])
    assert torch.allclose(memory.entries.norm(dim=1), torch.ones(4))

    numpy_features = torch.nn.functional.normalize(torch.randn(12, 8), dim=1).numpy()
    labels, cameras = np.repeat([0, 1, 2], 4), np.tile([0, 0, 1, 1], 3)
    proxies = CameraMemory(numpy_features, labels, cameras, hard_negatives=3)
    assert len(proxies) == 6
    batch = torch.from_numpy(numpy_features[:6]).clone().requires_grad_()
    camera_loss = proxies.loss(batch, torch.from_numpy(labels[:6]), torch.from_numpy(cameras[:6]))
    camera_loss.backward()
    assert torch.isfinite(camera_loss) and batch.grad is not None


def test_unlabelled_folders_give_cameras_from_names_and_a_fingerprint(tmp_path: Path):
    when = datetime(2026, 11, 25, 10, 0, 0, 250000, tzinfo=UTC)
    name = export_name(7, when, 1)
    assert name == "cam7_20261125T100000.250Z_1.png"
    assert parse_export_name(name).camera == 7 and parse_export_name(name).captured_at == when
    assert parse_export_name("0002_c1s1_000451_03.jpg") is None
    (tmp_path / "day1").mkdir()
    image = np.zeros((8, 4, 3), np.uint8)
    Image.fromarray(image).save(tmp_path / "day1" / name)
    Image.fromarray(image).save(tmp_path / export_name(3, when))
    Image.fromarray(image).save(tmp_path / "0002_c2s1_000451_03.jpg")
    (tmp_path / "notes.txt").write_text("not an image")
    found = read_unlabelled(tmp_path)
    assert [(Path(i.path).name, i.camera, i.label) for i in found.images] == [
        ("0002_c2s1_000451_03.jpg", 0, 2),
        ("cam3_20261125T100000.250Z_0.png", 1, None),
        ("cam7_20261125T100000.250Z_1.png", 2, None),
    ]
    assert found.cameras_known and not found.labels_known
    before = found.fingerprint
    Image.fromarray(image + 1).save(tmp_path / export_name(3, when))
    assert read_unlabelled(tmp_path).fingerprint != before
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no .jpg"):
        read_unlabelled(tmp_path / "empty")
    with pytest.raises(FileNotFoundError):
        read_unlabelled(tmp_path / "missing")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    """A tiny synthetic store and an untrained source checkpoint (at this size it clusters people well)."""
    root = tmp_path_factory.mktemp("adapt")
    make_synthetic(root / "data", ids=8, cameras=2, images_per_camera=4, seed=3, image_size=(64, 32))
    torch.manual_seed(0)
    net = model.build_model("resnet18", "rgasc", (64, 32), num_classes=4)
    torch.save(model.checkpoint_payload(net), root / "source.pt")
    return root


def test_a_resumed_adaptation_matches_an_uninterrupted_one_and_the_export_records_its_sources(
    tiny: Path, tmp_path: Path
):
    unlabelled = tiny / "data" / "bounding_box_train"
    config = load_adapt_config(None, TINY)
    straight = adapt(
        config, tiny / "source.pt", unlabelled, tmp_path / "straight", device="cpu", progress=False
    )
    assert [e.epoch for e in straight.history] == [0, 1]
    assert all(e.purity is not None and e.clusters >= 2 and e.camera_proxies > 0 for e in straight.history)
    assert (tmp_path / "straight" / "tensorboard").is_dir()

    first = load_adapt_config(None, [*TINY, "train.epochs=1"])
    adapt(first, tiny / "source.pt", unlabelled, tmp_path / "halves", device="cpu", progress=False)
    checkpoint = tmp_path / "halves" / "epoch_0001.pt"
    resumed = adapt(
        config,
        tiny / "source.pt",
        unlabelled,
        tmp_path / "halves",
        resume=checkpoint,
        device="cpu",
        progress=False,
    )
    assert [e.epoch for e in resumed.history] == [0, 1]
    a = read_checkpoint_file(straight.final_checkpoint)["state_dict"]
    b = read_checkpoint_file(resumed.final_checkpoint)["state_dict"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)

    changed = tmp_path / "changed"
    shutil.copytree(unlabelled, changed)
    next(changed.iterdir()).unlink()
    with pytest.raises(CheckpointError, match="not the unlabelled set"):
        adapt(config, tiny / "source.pt", changed, tmp_path / "other", resume=checkpoint, progress=False)

    export = tmp_path / "export"
    assert reid_train(["export", "--checkpoint", str(straight.final_checkpoint), "--out", str(export)]) == 0
    provenance = json.loads((export / "model.json").read_text())["provenance"]
    assert provenance["source_checkpoint"] == str((tiny / "source.pt").resolve())
    assert provenance["unlabelled_fingerprint"] == read_unlabelled(unlabelled).fingerprint
    assert provenance["adaptation"]["unlabelled"]["images"] == 32
    assert model.load_embedder(export, device="cpu").dim == 512
