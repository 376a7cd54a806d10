"""Re-id ranking metrics: CMC, mAP (non-interpolated and sklearn-0.18 interpolated) and mINP.

Benchmark rules: for each query, gallery images of the same person seen by the same camera are
removed from its ranking, and so are junk gallery images (person id -1). Queries left with no
correct gallery match are skipped and counted.

Ties: the gallery is ordered by a stable sort of the distances, so equal distances keep gallery
order (lower gallery index ranks first). CMC, mAP and mINP use that order; the interpolated AP
groups tied distances into one threshold, as scikit-learn's precision-recall curve does.

Implementation: each chunk of query rows is sorted once as 64-bit keys (row, distance code,
gallery index), which makes the flattened chunk one sorted array; everything after the sort works
on the few matching gallery items per query with binary searches, never on all gallery items.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import torch

ArrayLike = np.ndarray | torch.Tensor
CODE_BITS = 32
MAX_RANK = 50


@dataclass(frozen=True)
class _Matches:
    """All same-person (query, gallery) pairs, sorted by query, with their same-camera flag."""

    q_idx: np.ndarray
    g_idx: np.ndarray
    same_cam: np.ndarray


@dataclass(frozen=True)
class _ChunkScores:
    """Per-query scores for the queries of one chunk that have a valid match."""

    query: np.ndarray
    first_rank: np.ndarray
    ap: np.ndarray
    inp: np.ndarray
    ap_interp: np.ndarray


def _to_numpy(array: ArrayLike) -> np.ndarray:
    if isinstance(array, torch.Tensor):
        return array.detach().cpu().numpy()
    return np.asarray(array)


def _find_matches(
    q_pids: np.ndarray, g_pids: np.ndarray, q_camids: np.ndarray, g_camids: np.ndarray
) -> _Matches:
    order = np.argsort(g_pids, kind="stable")
    uniq, starts, counts = np.unique(g_pids[order], return_index=True, return_counts=True)
    slot = np.clip(np.searchsorted(uniq, q_pids), 0, max(len(uniq) - 1, 0))
    found = (uniq[slot] == q_pids) if len(uniq) else np.zeros(len(q_pids), dtype=bool)
    per_query = np.where(found, counts[slot] if len(uniq) else 0, 0)
    q_idx = np.repeat(np.arange(len(q_pids)), per_query)
    offsets = np.arange(len(q_idx)) - np.repeat(np.cumsum(per_query) - per_query, per_query)
    g_idx = order[np.repeat(starts[slot] if len(uniq) else per_query, per_query) + offsets]
    return _Matches(q_idx, g_idx, g_camids[g_idx] == q_camids[q_idx])


def _distance_codes(chunk: np.ndarray) -> np.ndarray:
    """Order-preserving unsigned codes below 2**32 of a block of distances (equal distances, equal codes)."""
    if chunk.dtype == np.float32:
        signed = (chunk + np.float32(0.0)).view(np.int32)
        flip = signed >> 31
        flip |= np.int32(-(2**31))
        signed ^= flip
        return signed.view(np.uint32)
    return np.unique(chunk, return_inverse=True)[1].reshape(chunk.shape).astype(np.uint32)


def _index_in_run(sorted_rows: np.ndarray) -> np.ndarray:
    """0-based position of each entry inside its run of equal values."""
    starts = np.ones(len(sorted_rows), dtype=bool)
    starts[1:] = sorted_rows[1:] != sorted_rows[:-1]
    first = np.maximum.accumulate(np.where(starts, np.arange(len(sorted_rows)), 0))
    return np.arange(len(sorted_rows)) - first


def _count_before(sorted_flat: np.ndarray, positions: np.ndarray, row_starts: np.ndarray) -> np.ndarray:
    return np.searchsorted(sorted_flat, positions) - np.searchsorted(sorted_flat, row_starts)


def _score_chunk(
    distmat: np.ndarray, start: int, stop: int, matches: _Matches, index_bits: int
) -> _ChunkScores:
    """Sort one chunk of query rows and score its queries from their matching gallery items."""
    rows, width = stop - start, distmat.shape[1]
    codes = _distance_codes(distmat[start:stop])
    keys = codes.astype(np.uint64)
    keys <<= np.uint64(index_bits)
    keys |= np.arange(width, dtype=np.uint64)[None, :]
    keys |= (np.arange(rows, dtype=np.uint64) << np.uint64(CODE_BITS + index_bits))[:, None]
    keys.sort(axis=1)
    flat = keys.ravel()

    lo, hi = np.searchsorted(matches.q_idx, [start, stop])
    local = matches.q_idx[lo:hi] - start
    g_idx = matches.g_idx[lo:hi]
    item_keys = codes[local, g_idx].astype(np.uint64) << np.uint64(index_bits)
    item_keys |= g_idx.astype(np.uint64) | (local.astype(np.uint64) << np.uint64(CODE_BITS + index_bits))
    pos = np.searchsorted(flat, item_keys)
    value_keys = (item_keys >> np.uint64(index_bits)) << np.uint64(index_bits)
    group_lo = np.searchsorted(flat, value_keys)
    group_hi = np.searchsorted(flat, value_keys + np.uint64(1 << index_bits)) - 1

    same_cam = matches.same_cam[lo:hi]
    junk_flat = np.sort(pos[same_cam])
    good = ~same_cam
    sort_good = np.argsort(pos[good], kind="stable")
    good_pos, good_lo, good_hi = pos[good][sort_good], group_lo[good][sort_good], group_hi[good][sort_good]
    good_row = local[good][sort_good]
    row_start = good_row * width

    valid_rank = good_pos - row_start + 1 - _count_before(junk_flat, good_pos, row_start)
    index_in_row = _index_in_run(good_row) + 1
    queries, first, num_pos = np.unique(good_row, return_index=True, return_counts=True)
    last = first + num_pos - 1

    valid_before = good_lo - row_start - _count_before(junk_flat, good_lo, row_start)
    valid_upto = good_hi - row_start + 1 - _count_before(junk_flat, good_hi + 1, row_start)
    good_before = _count_before(good_pos, good_lo, row_start)
    good_upto = _count_before(good_pos, good_hi + 1, row_start)
    prev_precision = np.where(valid_before == 0, 1.0, good_before / np.maximum(valid_before, 1))
    trapezoid = (prev_precision + good_upto / valid_upto) / 2.0

    ap = np.add.reduceat(index_in_row / valid_rank, first) / num_pos if len(first) else np.zeros(0)
    ap_interp = np.add.reduceat(trapezoid, first) / num_pos if len(first) else np.zeros(0)
    return _ChunkScores(
        query=queries + start,
        first_rank=valid_rank[first],
        ap=ap,
        inp=num_pos / valid_rank[last] if len(first) else np.zeros(0),
        ap_interp=ap_interp,
    )


def _chunk_bounds(
    num_query: int, num_gallery: int, chunk_elements: int, index_bits: int
) -> list[tuple[int, int]]:
    max_rows = (1 << (64 - CODE_BITS - index_bits)) - 1
    max_rows = min(max_rows, ((1 << CODE_BITS) - 1) // max(num_gallery, 1))
    rows = max(1, min(chunk_elements // max(num_gallery, 1), max_rows))
    return [(lo, min(lo + rows, num_query)) for lo in range(0, num_query, rows)]


def _validate(distmat: np.ndarray, q_pids: np.ndarray, g_pids: np.ndarray, q_camids, g_camids) -> None:
    if distmat.ndim != 2 or distmat.shape != (len(q_pids), len(g_pids)):
        raise ValueError(
            f"distmat shape {distmat.shape} does not match {len(q_pids)} queries x {len(g_pids)} gallery"
        )
    if len(q_camids) != len(q_pids) or len(g_camids) != len(g_pids):
        raise ValueError("camera ids must have one entry per query / gallery image")
    if not np.issubdtype(distmat.dtype, np.floating):
        raise ValueError(f"distmat must hold floating-point distances, got {distmat.dtype}")
    if np.isnan(distmat).any():
        raise ValueError("distmat contains NaN")


def evaluate_ranking(
    distmat: ArrayLike,
    q_pids: ArrayLike,
    g_pids: ArrayLike,
    q_camids: ArrayLike,
    g_camids: ArrayLike,
    max_rank: int = MAX_RANK,
    *,
    chunk_elements: int = 1 << 22,
    num_threads: int | None = None,
) -> dict:
    """Return CMC (max_rank long), mAP, mINP and sklearn-0.18 interpolated mAP of a query x gallery ranking.

    Smaller distance means more similar. float32 is the fast path; other float dtypes are exact, but slower.
    """
    dist = _to_numpy(distmat)
    if dist.dtype == np.float16:
        dist = dist.astype(np.float32)
    q_pids, g_pids = _to_numpy(q_pids).astype(np.int64), _to_numpy(g_pids).astype(np.int64)
    q_camids, g_camids = _to_numpy(q_camids).astype(np.int64), _to_numpy(g_camids).astype(np.int64)
    _validate(dist, q_pids, g_pids, q_camids, g_camids)
    if max_rank < 1:
        raise ValueError("max_rank must be at least 1")

    keep = g_pids != -1
    if not keep.all():
        dist, g_pids, g_camids = dist[:, keep], g_pids[keep], g_camids[keep]
    num_query, num_gallery = dist.shape
    index_bits = max(1, (num_gallery - 1).bit_length())
    if index_bits > 64 - CODE_BITS - 1:
        raise ValueError(f"gallery of {num_gallery} images is too large")

    matches = _find_matches(q_pids, g_pids, q_camids, g_camids)
    bounds = _chunk_bounds(num_query, num_gallery, chunk_elements, index_bits)
    workers = max(1, min(num_threads or os.cpu_count() or 1, len(bounds)))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        parts = list(pool.map(lambda b: _score_chunk(dist, b[0], b[1], matches, index_bits), bounds))

    first_rank = np.concatenate([p.first_rank for p in parts])
    num_valid = len(first_rank)
    if num_valid == 0:
        raise ValueError("no query has a valid match in the gallery")
    hits = np.bincount(np.minimum(first_rank, max_rank + 1) - 1, minlength=max_rank + 1)[:max_rank]
    return {
        "cmc": np.cumsum(hits) / num_valid,
        "mAP": float(np.concatenate([p.ap for p in parts]).mean()),
        "mINP": float(np.concatenate([p.inp for p in parts]).mean()),
        "mAP_paper_interpolated": float(np.concatenate([p.ap_interp for p in parts]).mean()),
        "num_valid_queries": int(num_valid),
        "num_skipped_queries": int(num_query - num_valid),
    }
