"""PK identity sampler: batch composition, epoch coverage, replacement, resumable state, DDP split."""

from __future__ import annotations

from collections import Counter

import pytest

from training.sampler import DistributedPKSampler, PKSampler

# 10 identities: id 3 has a single image, id 7 two, the others 5 to 8.
COUNTS = {0: 5, 1: 6, 2: 7, 3: 1, 4: 8, 5: 5, 6: 6, 7: 2, 8: 7, 9: 5}
LABELS = [pid for pid, count in COUNTS.items() for _ in range(count)]


def batch_ids(batch: list[tuple[int, int]]) -> list[int]:
    return [LABELS[index] for index, _ in batch]


def test_batches_are_p_identities_times_k_images() -> None:
    sampler = PKSampler(LABELS, batch_size=8, num_instances=4, seed=1)
    batches = list(sampler)
    assert len(batches) == len(sampler) == 10 // 2
    for batch in batches:
        ids = batch_ids(batch)
        assert len(ids) == 8
        assert Counter(ids) == {ids[0]: 4, ids[4]: 4}
        assert ids[:4] == [ids[0]] * 4 and ids[4:] == [ids[4]] * 4


def test_every_identity_once_per_epoch() -> None:
    sampler = PKSampler(LABELS, batch_size=12, num_instances=4, seed=3)
    for epoch in range(5):
        sampler.set_epoch(epoch)
        samples = sampler.epoch_samples()
        assert Counter(LABELS[i] for i, _ in samples) == {pid: 4 for pid in COUNTS}
        seen = [pid for batch in sampler for pid in set(batch_ids(batch))]
        assert len(seen) == len(set(seen)) == len(sampler) * 3


def test_small_identities_are_sampled_with_replacement() -> None:
    sampler = PKSampler(LABELS, batch_size=8, num_instances=4, seed=0)
    by_id: dict[int, list[int]] = {}
    for index, _ in sampler.epoch_samples():
        by_id.setdefault(LABELS[index], []).append(index)
    assert len(set(by_id[3])) == 1
    assert len(set(by_id[7])) <= 2
    for pid, indices in by_id.items():
        if COUNTS[pid] >= 4:
            assert len(set(indices)) == 4, f"id {pid} should be drawn without replacement"


def test_order_depends_only_on_seed_and_epoch() -> None:
    first = PKSampler(LABELS, batch_size=8, num_instances=4, seed=5)
    second = PKSampler(LABELS, batch_size=8, num_instances=4, seed=5)
    first.set_epoch(2)
    second.load_state_dict(first.state_dict())
    assert list(first) == list(second)
    second.set_epoch(3)
    assert list(first) != list(second)
    seeds = [seed for batch in first for _, seed in batch]
    assert len(set(seeds)) == len(seeds), "augmentation seeds must differ per sample"


@pytest.mark.parametrize("world_size", [2, 4])
def test_distributed_ranks_get_disjoint_identities_and_equal_batches(world_size: int) -> None:
    labels = [pid for pid in range(37) for _ in range(3 + pid % 4)]
    global_sampler = PKSampler(labels, batch_size=32, num_instances=4, seed=9)
    global_sampler.set_epoch(4)
    ranks = [
        DistributedPKSampler(labels, 32, 4, seed=9, rank=rank, world_size=world_size)
        for rank in range(world_size)
    ]
    for sampler in ranks:
        sampler.set_epoch(4)
    per_rank = [list(sampler) for sampler in ranks]
    assert {len(batches) for batches in per_rank} == {len(global_sampler)}
    epoch_ids = [{labels[i] for batch in batches for i, _ in batch} for batches in per_rank]
    for a in range(world_size):
        for b in range(a + 1, world_size):
            assert not epoch_ids[a] & epoch_ids[b]
    for step, global_batch in enumerate(global_sampler):
        shards = [per_rank[rank][step] for rank in range(world_size)]
        assert all(len(shard) == 32 // world_size for shard in shards)
        assert [sample for shard in shards for sample in shard] == global_batch


def test_invalid_settings_are_rejected() -> None:
    with pytest.raises(ValueError, match="multiple"):
        PKSampler(LABELS, batch_size=10, num_instances=4)
    with pytest.raises(ValueError, match="ranks"):
        PKSampler(LABELS, batch_size=12, num_instances=4, rank=0, world_size=2)
    with pytest.raises(ValueError, match="identities"):
        PKSampler(LABELS, batch_size=64, num_instances=4)
