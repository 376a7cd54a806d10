"""The PK-sampled training Dataset and DataLoader over ``(image_path, person_id, camera_id)`` records."""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from training.datasets.base import ImageRecord
from training.sampler import PKSampler, SeededIndex
from training.transforms import TrainTransform


class TrainImages(Dataset):
    """Training images indexed by ``(index, augmentation_seed)`` pairs from a :class:`PKSampler`."""

    def __init__(self, records: Sequence[ImageRecord], transform: TrainTransform) -> None:
        self.records = list(records)
        self.transform = transform

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, item: SeededIndex) -> tuple[torch.Tensor, int]:
        index, seed = item
        path, pid, _ = self.records[index]
        return self.transform(path, np.random.default_rng(seed)), int(pid)


def epoch_worker_seed(seed: int, epoch: int, rank: int) -> int:
    """Seed of the DataLoader's worker-seed generator for one epoch on one rank."""
    return int(np.random.SeedSequence([seed, epoch, rank]).generate_state(1, dtype=np.uint64)[0] >> 1)


def seed_worker(worker_id: int) -> None:
    """Seed python ``random`` and numpy in a loader worker from the torch seed the DataLoader assigned."""
    worker_seed = torch.initial_seed() % 2**32
    random.seed(worker_seed)
    np.random.seed(worker_seed)


class TrainLoader:
    """A DataLoader over a PK sampler whose order and worker seeds are set per epoch."""

    def __init__(
        self, dataset: TrainImages, sampler: PKSampler, num_workers: int = 0, pin_memory: bool = False
    ) -> None:
        self.sampler = sampler
        self.generator = torch.Generator()
        self.loader = DataLoader(
            dataset,
            batch_sampler=sampler,
            num_workers=num_workers,
            pin_memory=pin_memory,
            worker_init_fn=seed_worker if num_workers > 0 else None,
            generator=self.generator,
            persistent_workers=False,
        )

    def set_epoch(self, epoch: int) -> None:
        """Fix the sampler order and the worker seeds for ``epoch``."""
        self.sampler.set_epoch(epoch)
        self.generator.manual_seed(epoch_worker_seed(self.sampler.seed, epoch, self.sampler.rank))

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        return iter(self.loader)

    def __len__(self) -> int:
        return len(self.sampler)


def build_train_loader(
    records: Sequence[ImageRecord],
    transform: TrainTransform,
    batch_size: int,
    num_instances: int,
    seed: int,
    rank: int = 0,
    world_size: int = 1,
    num_workers: int = 0,
    pin_memory: bool = False,
) -> TrainLoader:
    """PK-sampled train loader; ``batch_size`` is global and split over ``world_size`` ranks."""
    labels = [int(pid) for _, pid, _ in records]
    sampler = PKSampler(labels, batch_size, num_instances, seed=seed, rank=rank, world_size=world_size)
    return TrainLoader(
        TrainImages(records, transform), sampler, num_workers=num_workers, pin_memory=pin_memory
    )
