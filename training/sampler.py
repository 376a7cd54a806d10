"""PK identity sampling (P identities x K images per batch), single-process and distributed.

Yields ``(dataset_index, augmentation_seed)`` pairs; an epoch is a pure function of ``(seed, epoch)``.
"""

# Tying each sample's augmentation seed to its position in the epoch (not to a loader worker) makes
# runs reproducible whatever the number of workers, and resuming only needs the epoch number.

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch.distributed as dist
from torch.utils.data import Sampler

SeededIndex = tuple[int, int]


class PKSampler(Sampler[list[SeededIndex]]):
    """Batch sampler of P = ``batch_size // num_instances`` ids x K = ``num_instances`` images.

    With ``world_size`` > 1 each global batch is split by identity: disjoint ids, equal batch counts.
    """

    # As the paper's RandomIdentitySampler: ids shuffled, K images each drawn without replacement
    # (with replacement when an id has fewer than K), every id once per epoch, last partial batch dropped.

    def __init__(
        self,
        labels: Sequence[int],
        batch_size: int,
        num_instances: int,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        if num_instances <= 0 or batch_size % num_instances:
            raise ValueError(
                f"batch_size {batch_size} must be a positive multiple of num_instances {num_instances}"
            )
        ids_per_batch = batch_size // num_instances
        if world_size <= 0 or not 0 <= rank < world_size or ids_per_batch % world_size:
            raise ValueError(
                f"{ids_per_batch} identities per batch cannot be split over {world_size} ranks (rank {rank})"
            )
        groups: dict[int, list[int]] = defaultdict(list)
        for index, label in enumerate(labels):
            groups[int(label)].append(index)
        self.identities = sorted(groups)
        self.index_groups = [np.asarray(groups[pid], dtype=np.int64) for pid in self.identities]
        if len(self.identities) < ids_per_batch:
            raise ValueError(
                f"only {len(self.identities)} training identities, fewer than {ids_per_batch} per batch"
            )
        self.batch_size = batch_size
        self.num_instances = num_instances
        self.ids_per_batch = ids_per_batch
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose order the next iteration produces."""
        self.epoch = epoch

    def _rng(self) -> np.random.Generator:
        return np.random.default_rng([self.seed, self.epoch])

    def epoch_samples(self) -> list[SeededIndex]:
        """All samples of the epoch in order, every identity once as K consecutive entries (all ranks)."""
        rng = self._rng()
        order = rng.permutation(len(self.identities))
        samples: list[SeededIndex] = []
        for position in order:
            group = self.index_groups[position]
            picks = rng.choice(group, size=self.num_instances, replace=len(group) < self.num_instances)
            seeds = rng.integers(0, 2**62, size=self.num_instances)
            samples.extend((int(i), int(s)) for i, s in zip(picks, seeds, strict=True))
        return samples

    def __iter__(self) -> Iterator[list[SeededIndex]]:
        samples = self.epoch_samples()
        per_rank = self.batch_size // self.world_size
        for batch in range(len(self)):
            start = batch * self.batch_size + self.rank * per_rank
            yield samples[start : start + per_rank]

    def __len__(self) -> int:
        return len(self.identities) // self.ids_per_batch

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to reproduce the sampler's future batches."""
        return {"seed": self.seed, "epoch": self.epoch, "world_size": self.world_size}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the seed and epoch saved by :meth:`state_dict`."""
        self.seed = int(state["seed"])
        self.epoch = int(state["epoch"])


class DistributedPKSampler(PKSampler):
    """:class:`PKSampler` whose rank and world size default to the initialised process group."""

    def __init__(
        self,
        labels: Sequence[int],
        batch_size: int,
        num_instances: int,
        seed: int = 0,
        rank: int | None = None,
        world_size: int | None = None,
    ) -> None:
        initialised = dist.is_available() and dist.is_initialized()
        if rank is None:
            rank = dist.get_rank() if initialised else 0
        if world_size is None:
            world_size = dist.get_world_size() if initialised else 1
        super().__init__(labels, batch_size, num_instances, seed=seed, rank=rank, world_size=world_size)
