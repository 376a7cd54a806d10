"""The adaptation loop: per epoch, cluster the unlabelled set's features, then train against the memories.

Single process (CPU or one GPU). A run folder holds ``config.yaml``, ``train.log``, TensorBoard scalars
(``adapt/clusters``, ``adapt/outliers``, ``adapt/purity`` when the names carry labels, loss, lr),
``epoch_NNNN.pt`` checkpoints and ``final.pt``. Each epoch is a pure function of the weights at its start,
the recipe's seed and the epoch number, so a resumed run gives the same weights as an uninterrupted one.
Checkpoints record the source checkpoint (path, SHA-256, what it was trained on) and the unlabelled
set's fingerprint; ``reid-train export`` copies both into ``model.json``.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

import model
from model import ReIDNet
from model.config import ModelConfig
from model.device import mixed_precision, resolve_device
from training.adaptation.clustering import (
    OUTLIER,
    ClusterStats,
    camera_centred,
    centroids,
    cluster_stats,
    jaccard_distance,
)
from training.adaptation.clustering import pseudo_labels as dbscan_labels
from training.adaptation.config import AdaptConfig, adapt_config_dict
from training.adaptation.memory import CameraMemory, ClusterMemory
from training.adaptation.unlabelled import UnlabelledSet, read_unlabelled
from training.assembly import build_train_transform, configure_determinism
from training.checkpoint import (
    CHECKPOINT_FILE,
    FINAL_CHECKPOINT,
    CheckpointError,
    build_training_checkpoint,
    load_training_checkpoint,
    plain_data,
    prune_checkpoints,
    read_checkpoint_metadata,
    restore_optimisation,
    restore_rng_state,
    save_checkpoint,
)
from training.config import save_config
from training.evaluation.report import extract_features
from training.optim import WarmupStepSchedule, build_optimizer
from training.run_log import RunLog
from training.sampler import PKSampler, SeededIndex
from training.transforms import TrainTransform

CONFIG_FILE = "config.yaml"
EVAL_DIR = "eval"
ROUND_STRIDE = 1_000_000  # sampler epochs per adaptation epoch: rounds of one epoch never meet the next's


@dataclass(frozen=True)
class AdaptEpoch:
    """One epoch: its clustering, the training that followed, and how long both took."""

    epoch: int
    lr: float
    clusters: int
    clustered: int
    outliers: int
    purity: float | None
    camera_proxies: int
    loss: float
    images: int
    seconds: float


@dataclass
class AdaptResult:
    """What a run produced: its folder, final checkpoint, per-epoch history and evaluation if asked."""

    output_dir: Path
    final_checkpoint: Path
    history: list[AdaptEpoch] = field(default_factory=list)
    metrics: dict[str, Any] | None = None


class PseudoLabelled(Dataset):
    """Clustered images as ``(image, pseudo-label, camera)``, indexed by the sampler's ``(index, seed)``."""

    def __init__(self, records: Sequence[tuple[str, int, int]], transform: TrainTransform) -> None:
        self.records = list(records)
        self.transform = transform

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, item: SeededIndex) -> tuple[torch.Tensor, int, int]:
        index, seed = item
        path, label, camera = self.records[index]
        return self.transform(path, np.random.default_rng(seed)), label, camera


def epoch_batches(
    labels: Sequence[int], batch_size: int, num_instances: int, seed: int, epoch: int, iters: int
) -> list[list[SeededIndex]]:
    """``iters`` PK batches over ``labels`` for ``epoch``: rounds of PK epochs, each every cluster once.

    With fewer clusters than the batch's P, a batch holds every cluster, ``num_instances`` images each.
    """
    clusters = len(set(labels))
    ids_per_batch = min(batch_size // num_instances, clusters)
    sampler = PKSampler(labels, ids_per_batch * num_instances, num_instances, seed=seed)
    batches: list[list[SeededIndex]] = []
    for round_ in range(iters):
        sampler.set_epoch(epoch * ROUND_STRIDE + round_)
        batches.extend(sampler)
        if len(batches) >= iters:
            break
    return batches[:iters]


def file_sha256(path: Path) -> str:
    """SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def source_network(checkpoint: Path) -> ReIDNet:
    """The source checkpoint's network without its classifier (pseudo-identities replace its classes)."""
    source = model.load_checkpoint(checkpoint)
    config = ModelConfig.from_dict({**source.config.to_dict(), "num_classes": 0})
    net = ReIDNet(config)
    state = {key: value for key, value in source.state_dict().items() if not key.startswith("cls.")}
    net.load_state_dict(state)
    return net


def source_provenance(checkpoint: Path) -> dict[str, Any]:
    """Where the adapted weights started: the source file, its checksum and what it was trained on."""
    metadata = read_checkpoint_metadata(checkpoint)
    config = metadata.get("config") or {}
    return {
        "checkpoint": str(checkpoint.resolve()),
        "sha256": file_sha256(checkpoint),
        "recipe": config.get("name"),
        "dataset": metadata.get("dataset"),
        "epoch": metadata.get("epoch"),
    }


class Adapter:
    """One adaptation run of a source checkpoint on a folder of unlabelled crops."""

    def __init__(
        self,
        config: AdaptConfig,
        source_checkpoint: str | Path,
        unlabelled: str | Path,
        output_dir: str | Path,
        *,
        device: str = "auto",
        progress: bool = True,
    ) -> None:
        self.config = config
        self.source_checkpoint = Path(source_checkpoint)
        self.unlabelled_dir = Path(unlabelled)
        self.output_dir = Path(output_dir)
        self.device = resolve_device(device)
        self.progress = progress
        self.amp_dtype = mixed_precision(self.device) if config.train.amp else None

    # ---- set-up

    def _build(self, resume: dict[str, Any] | None) -> None:
        cfg = self.config
        configure_determinism(cfg.train.seed, cfg.train.deterministic)
        self.data: UnlabelledSet = read_unlabelled(self.unlabelled_dir)
        self.source = source_provenance(self.source_checkpoint)
        self.net = source_network(self.source_checkpoint).to(self.device)
        optim = cfg.optim
        self.optimizer = build_optimizer(
            self.net, optim.lr, optim.weight_decay, tuple(optim.betas), optim.eps
        )
        self.schedule = WarmupStepSchedule(
            optim.lr, optim.warmup_epochs, optim.warmup_start_lr, list(optim.milestones), optim.gamma
        )
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.amp_dtype == torch.float16)
        self.transform = build_train_transform(cfg.augment, self.net.input_size)
        mode = cfg.memory.camera
        if mode == "on" and not self.data.cameras_known:
            raise ValueError(
                f"{self.unlabelled_dir}: memory.camera=on needs every file name to give its camera "
                "(exported crops or Market-1501 names) and at least two cameras"
            )
        self.use_cameras = mode == "on" or (mode == "auto" and self.data.cameras_known)
        self.cameras = np.array([image.camera or 0 for image in self.data.images], dtype=np.int64)
        self.start_epoch = 0
        self.history: list[AdaptEpoch] = []
        if resume is not None:
            self._restore(resume)

    def _restore(self, state: dict[str, Any]) -> None:
        recorded = (state.get("adaptation") or {}).get("unlabelled") or {}
        if recorded.get("fingerprint") != self.data.fingerprint:
            raise CheckpointError(
                f"{self.unlabelled_dir} is not the unlabelled set this run started on (fingerprint "
                f"{self.data.fingerprint[:12]} vs {str(recorded.get('fingerprint'))[:12]}); "
                "start a new run or give the same folder"
            )
        source = (state.get("adaptation") or {}).get("source") or {}
        if source.get("sha256") != self.source["sha256"]:
            raise CheckpointError(
                f"{self.source_checkpoint} is not the source checkpoint this run started from"
            )
        restore_optimisation(
            state, self.net, self.optimizer, self.scaler, self.schedule, "this source network"
        )
        self.start_epoch = int(state["epoch"])
        self.history = [AdaptEpoch(**entry) for entry in state["adaptation"].get("history", [])]
        restore_rng_state(state["rng"])

    def _checkpoint(self, epoch: int, metrics: dict[str, Any] | None = None) -> dict[str, Any]:
        return build_training_checkpoint(
            self.net,
            epoch=epoch,
            optimizer=self.optimizer.state_dict(),
            scaler=self.scaler.state_dict(),
            scheduler=self.schedule.state_dict(),
            sampler={"seed": self.config.train.seed, "epoch": epoch},
            config=adapt_config_dict(self.config),
            dataset=None,
            adaptation={
                "source": self.source,
                "unlabelled": self.data.provenance(),
                "camera_aware": self.use_cameras,
                "history": [asdict(entry) for entry in self.history],
            },
            metrics=plain_data(metrics) if metrics is not None else None,
        )

    # ---- one epoch

    def features(self, epoch: int) -> np.ndarray:
        """BN-neck features of every unlabelled image (eval mode), as the service would embed them."""
        feats = extract_features(
            self.net,
            self.data.paths,
            batch_size=self.config.data.feature_batch_size,
            device=self.device,
            desc=f"features {epoch + 1}/{self.config.train.epochs}",
        )
        return feats["bn"]

    def cluster(self, features: np.ndarray) -> tuple[np.ndarray, ClusterStats]:
        """Pseudo-labels of this epoch and their statistics (purity only when labels happen to exist)."""
        c = self.config.cluster
        if c.camera_centre and self.use_cameras:
            features = camera_centred(features, self.cameras)
        labels = dbscan_labels(jaccard_distance(features, c.k1, c.k2), c.eps, c.min_samples)
        truth = [image.label for image in self.data.images] if self.data.labels_known else None
        return labels, cluster_stats(labels, truth)

    def _memories(
        self, features: np.ndarray, labels: np.ndarray, count: int
    ) -> tuple[ClusterMemory, CameraMemory | None]:
        m = self.config.memory
        memory = ClusterMemory(
            torch.from_numpy(centroids(features, labels, count)).to(self.device),
            m.temperature,
            m.momentum,
            m.update,
        )
        if not self.use_cameras:
            return memory, None
        proxies = CameraMemory(
            features, labels, self.cameras, m.camera_temperature, m.momentum, m.hard_negatives, self.device
        )
        return memory, proxies

    def _loader(self, labels: np.ndarray, epoch: int) -> DataLoader:
        cfg = self.config
        clustered = np.flatnonzero(labels != OUTLIER)
        records = [
            (self.data.images[i].path, int(labels[i]), int(self.data.images[i].camera or 0))
            for i in clustered
        ]
        batches = epoch_batches(
            [label for _, label, _ in records],
            cfg.sampler.batch_size,
            cfg.sampler.num_instances,
            cfg.train.seed,
            epoch,
            cfg.train.iters,
        )
        return DataLoader(
            PseudoLabelled(records, self.transform),
            batch_sampler=batches,
            num_workers=cfg.data.num_workers,
            pin_memory=self.device.type == "cuda",
        )

    def train_epoch(self, epoch: int) -> AdaptEpoch:
        """Cluster, build the memories, then ``train.iters`` steps of the contrastive losses."""
        started = time.perf_counter()
        lr = self.schedule.step(self.optimizer, epoch)
        features = self.features(epoch)
        labels, stats = self.cluster(features)
        if stats.clusters < 2:
            raise ValueError(
                f"epoch {epoch + 1}: DBSCAN found {stats.clusters} cluster(s) in {len(labels)} images; "
                f"raise cluster.eps (now {self.config.cluster.eps}) or lower cluster.min_samples"
            )
        memory, proxies = self._memories(features, labels, stats.clusters)
        loader = self._loader(labels, epoch)
        self.net.train()
        weight = self.config.memory.camera_weight
        total, images = 0.0, 0
        bar = tqdm(
            loader,
            desc=f"adapt {epoch + 1}/{self.config.train.epochs}",
            disable=not self.progress,
            leave=False,
            dynamic_ncols=True,
        )
        for step, (batch, targets, cameras) in enumerate(bar, start=1):
            batch = batch.to(self.device, non_blocking=True)
            targets, cameras = targets.to(self.device), cameras.to(self.device)
            with torch.autocast(
                self.device.type, dtype=self.amp_dtype or torch.float32, enabled=self.amp_dtype is not None
            ):
                _, embedded, _ = self.net(batch)
            loss = memory.loss(embedded, targets)
            if proxies is not None and weight > 0:
                loss = loss + weight * proxies.loss(embedded, targets, cameras)
            self.optimizer.zero_grad(set_to_none=True)
            self.scaler.scale(loss).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()
            total += float(loss.detach()) * len(targets)
            images += len(targets)
            if self.progress:
                bar.set_postfix(loss=f"{total / images:.3f}", refresh=step == len(loader))
        bar.close()
        return AdaptEpoch(
            epoch=epoch,
            lr=lr,
            clusters=stats.clusters,
            clustered=stats.clustered,
            outliers=stats.outliers,
            purity=stats.purity,
            camera_proxies=len(proxies) if proxies is not None else 0,
            loss=total / max(images, 1),
            images=images,
            seconds=time.perf_counter() - started,
        )

    # ---- the run

    def run(
        self, resume: str | Path | None = None, evaluate_on: tuple[str, Path] | None = None
    ) -> AdaptResult:
        """Adapt from the source (or from ``resume``) to ``train.epochs``; save ``final.pt``; evaluate."""
        state = load_training_checkpoint(resume) if resume is not None else None
        self._build(state)
        del state
        self.output_dir.mkdir(parents=True, exist_ok=True)
        log = RunLog(self.output_dir, True)
        try:
            self._announce(log, resume)
            for epoch in range(self.start_epoch, self.config.train.epochs):
                entry = self.train_epoch(epoch)
                self.history.append(entry)
                self._log_epoch(log, entry)
                if (epoch + 1) % self.config.train.checkpoint_every == 0:
                    path = self.output_dir / CHECKPOINT_FILE.format(epoch=epoch + 1)
                    save_checkpoint(self._checkpoint(epoch + 1), path)
                    prune_checkpoints(self.output_dir, self.config.train.keep_checkpoints)
            metrics = self._evaluate(log, evaluate_on) if evaluate_on is not None else None
            epochs = max(self.start_epoch, self.config.train.epochs)
            final = save_checkpoint(self._checkpoint(epochs, metrics), self.output_dir / FINAL_CHECKPOINT)
            log.info(f"saved {final}")
            return AdaptResult(self.output_dir, final, list(self.history), metrics)
        finally:
            log.close()

    def _announce(self, log: RunLog, resume: str | Path | None) -> None:
        cfg = self.config
        save_config(cfg, self.output_dir / CONFIG_FILE)
        data = self.data.provenance()
        log.info(
            f"{cfg.name}: adapting {self.source_checkpoint} ({self.net.config.backbone}/"
            f"{self.net.config.attention} {tuple(self.net.input_size)}) on {data['images']} unlabelled "
            f"images in {self.unlabelled_dir} (fingerprint {self.data.fingerprint[:12]}, "
            f"{data['cameras']} cameras named), camera-aware {self.use_cameras}, "
            f"purity {'on' if self.data.labels_known else 'off'}, {self.device}"
        )
        if resume is not None:
            log.info(f"resumed from {resume} after epoch {self.start_epoch}")

    def _log_epoch(self, log: RunLog, entry: AdaptEpoch) -> None:
        purity = f" purity {entry.purity:.3f}" if entry.purity is not None else ""
        log.info(
            f"epoch {entry.epoch + 1}: lr {entry.lr:.2e} clusters {entry.clusters} "
            f"({entry.clustered} images, {entry.outliers} outliers){purity} loss {entry.loss:.4f} "
            f"{entry.images / max(entry.seconds, 1e-9):.1f} img/s"
        )
        if log.writer is None:
            return
        step = entry.epoch + 1
        for name in ("clusters", "outliers", "loss", "lr"):
            log.writer.add_scalar(f"adapt/{name}", getattr(entry, name), step)
        if entry.purity is not None:
            log.writer.add_scalar("adapt/purity", entry.purity, step)
        log.writer.flush()

    def _evaluate(self, log: RunLog, evaluate_on: tuple[str, Path]) -> dict[str, Any]:
        from training.datasets import build_dataset
        from training.evaluation.report import evaluate_model
        from training.summaries import headline_metrics

        name, root = evaluate_on
        self.net.eval()
        report = evaluate_model(
            self.net, build_dataset(name, root), self.output_dir / EVAL_DIR, device=str(self.device)
        )
        log.info(f"evaluation on {name} {root}: {headline_metrics(report)}")
        return report


def adapt(
    config: AdaptConfig,
    source_checkpoint: str | Path,
    unlabelled: str | Path,
    output_dir: str | Path,
    *,
    resume: str | Path | None = None,
    device: str = "auto",
    progress: bool = True,
    evaluate_on: tuple[str, Path] | None = None,
) -> AdaptResult:
    """Adapt ``source_checkpoint`` to the crops under ``unlabelled`` without labels; see the module doc."""
    adapter = Adapter(config, source_checkpoint, unlabelled, output_dir, device=device, progress=progress)
    return adapter.run(resume, evaluate_on)
