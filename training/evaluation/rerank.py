"""k-reciprocal re-ranking (Zhong et al., CVPR 2017) with bounded memory.

Follows the published algorithm: distances are squared and divided by their row maximum; k1-reciprocal
neighbours are expanded by the round(k1/2)-reciprocal sets of candidates that overlap by more than 2/3;
Gaussian-kernel weights form a sparse V; V is averaged over each item's k2 nearest neighbours; the
Jaccard distance uses sum(min(V_q, V_g)); final = (1 - lambda) * jaccard + lambda * normalised original.

Memory: the full (q+g) x (q+g) distance matrix is never built. Rows are produced a block at a time
and reduced to their nearest neighbours, V is a scipy sparse matrix, and the Jaccard sums walk an
inverted index (V by column) in blocks of query rows. Ties in the neighbour ranking go to the lower index.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch

ArrayLike = np.ndarray | torch.Tensor
INDEX_MASK = np.uint64(0xFFFFFFFF)


def _to_numpy(array: ArrayLike) -> np.ndarray:
    if isinstance(array, torch.Tensor):
        return array.detach().cpu().numpy()
    return np.asarray(array)


@dataclass(frozen=True)
class _BlockDistance:
    """The (q+g) x (q+g) matrix [[q_q, q_g], [q_g^T, g_g]] read through its three blocks."""

    q_q: np.ndarray
    q_g: np.ndarray
    g_g: np.ndarray

    @property
    def num_query(self) -> int:
        return self.q_q.shape[0]

    @property
    def size(self) -> int:
        return self.q_q.shape[0] + self.g_g.shape[0]

    def rows(self, lo: int, hi: int) -> np.ndarray:
        """Rows lo..hi (all query rows or all gallery rows) as float32."""
        nq = self.num_query
        if hi <= nq:
            left, right = self.q_q[lo:hi], self.q_g[lo:hi]
        else:
            left, right = self.q_g[:, lo - nq : hi - nq].T, self.g_g[lo - nq : hi - nq]
        return np.concatenate([left, right], axis=1, dtype=np.float32)

    def pairs(self, i: np.ndarray, j: np.ndarray) -> np.ndarray:
        """Entries (i[k], j[k]) as float32."""
        nq, out = self.num_query, np.empty(len(i), dtype=np.float32)
        qi, qj = i < nq, j < nq
        for mask, block, a, b in (
            (qi & qj, self.q_q, i, j),
            (qi & ~qj, self.q_g, i, j - nq),
            (~qi & qj, self.q_g, j, i - nq),
            (~qi & ~qj, self.g_g, i - nq, j - nq),
        ):
            out[mask] = block[a[mask], b[mask]]
        return out


def _row_blocks(num_query: int, size: int, block_rows: int) -> list[tuple[int, int]]:
    query = [(lo, min(lo + block_rows, num_query)) for lo in range(0, num_query, block_rows)]
    gallery = [(lo, min(lo + block_rows, size)) for lo in range(num_query, size, block_rows)]
    return query + gallery


def _nearest(dist: _BlockDistance, count: int, block_rows: int) -> tuple[np.ndarray, np.ndarray]:
    """Each row's `count` nearest columns in order and the row maxima of the squared distances."""
    ranks = np.empty((dist.size, count), dtype=np.int64)
    row_max = np.empty(dist.size, dtype=np.float32)
    columns = np.arange(dist.size, dtype=np.uint64)
    for lo, hi in _row_blocks(dist.num_query, dist.size, block_rows):
        block = np.square(dist.rows(lo, hi))
        peak = block.max(axis=1)
        row_max[lo:hi] = peak
        block /= np.where(peak > 0, peak, 1)[:, None]
        keys = block.view(np.uint32).astype(np.uint64) << np.uint64(32)
        keys |= columns[None, :]
        top = np.partition(keys, count - 1, axis=1)[:, :count]
        top.sort(axis=1)
        ranks[lo:hi] = (top & INDEX_MASK).astype(np.int64)
    return ranks, row_max


def _reciprocal(ranks: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Each row's k nearest neighbours (self included) and which of them hold the row in theirs."""
    forward = ranks[:, : k + 1]
    mutual = (ranks[forward, : k + 1] == np.arange(len(ranks))[:, None, None]).any(axis=2)
    return forward, mutual


def _expanded_sets(ranks: np.ndarray, k1: int, block_rows: int) -> tuple[np.ndarray, np.ndarray]:
    """(row, column) pairs of every row's k-reciprocal set after the 1/2 k1 expansion rule."""
    forward, mutual = _reciprocal(ranks, k1)
    half_forward, half_mutual = _reciprocal(ranks, int(np.around(k1 / 2.0)))
    half_sets = np.where(half_mutual, half_forward, -2)
    half_sizes = half_mutual.sum(axis=1)
    rows_out, cols_out = [], []
    for lo in range(0, len(ranks), block_rows):
        own = np.where(mutual[lo : lo + block_rows], forward[lo : lo + block_rows], -1)
        cand = forward[lo : lo + block_rows]
        cand_sets = half_sets[cand]
        overlap = (cand_sets[:, :, :, None] == own[:, None, None, :]).any(axis=3).sum(axis=2)
        accept = mutual[lo : lo + block_rows] & (overlap > 2.0 / 3.0 * half_sizes[cand])
        extra = np.where(accept[:, :, None], cand_sets, -1).reshape(len(own), -1)
        members = np.sort(np.concatenate([own, extra], axis=1), axis=1)
        keep = members >= 0
        keep[:, 1:] &= members[:, 1:] != members[:, :-1]
        row_idx, col_idx = np.nonzero(keep)
        rows_out.append(row_idx + lo)
        cols_out.append(members[row_idx, col_idx])
    return np.concatenate(rows_out), np.concatenate(cols_out)


def _weights(dist: _BlockDistance, row_max: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> sp.csr_matrix:
    """Sparse V: Gaussian-kernel weights of each row's expanded set, normalised to sum to one."""
    scale = np.where(row_max > 0, row_max, 1)[rows]
    weight = np.exp(-(np.square(dist.pairs(rows, cols)) / scale)).astype(np.float32)
    total = np.bincount(rows, weights=weight, minlength=dist.size)
    weight /= total[rows].astype(np.float32)
    return sp.csr_matrix((weight, (rows, cols)), shape=(dist.size, dist.size), dtype=np.float32)


def _query_expansion(v: sp.csr_matrix, ranks: np.ndarray, k2: int) -> sp.csr_matrix:
    """Replace each row of V by the mean of the rows of its k2 nearest neighbours."""
    size = v.shape[0]
    rows = np.repeat(np.arange(size), k2)
    average = sp.csr_matrix(
        (np.full(size * k2, 1.0 / k2, dtype=np.float32), (rows, ranks[:, :k2].ravel())), shape=(size, size)
    )
    return (average @ v).tocsr()


def _min_overlap(v_query: sp.csr_matrix, v_gallery: sp.csc_matrix, max_pairs: int) -> np.ndarray:
    """sum_k min(V[i, k], V[j, k]) for every query i and gallery j, through V's inverted index."""
    num_query, num_gallery = v_query.shape[0], v_gallery.shape[0]
    out = np.zeros((num_query, num_gallery), dtype=np.float32)
    coo = v_query.tocoo()
    order = np.lexsort((coo.col, coo.row))
    q_row, q_col, q_val = coo.row[order], coo.col[order], coo.data[order]
    starts = v_gallery.indptr[q_col]
    counts = v_gallery.indptr[q_col + 1] - starts
    per_query = np.bincount(q_row, weights=counts, minlength=num_query)
    cum_pairs = np.concatenate([[0], np.cumsum(per_query)])
    lo = 0
    while lo < num_query:
        hi = max(lo + 1, int(np.searchsorted(cum_pairs, cum_pairs[lo] + max_pairs, side="right")) - 1)
        hi = min(hi, num_query)
        a, b = np.searchsorted(q_row, [lo, hi])
        cnt = counts[a:b]
        pair_row = np.repeat(q_row[a:b] - lo, cnt)
        first = np.repeat(starts[a:b] - (np.cumsum(cnt) - cnt), cnt)
        idx = first + np.arange(len(first))
        share = np.minimum(np.repeat(q_val[a:b], cnt), v_gallery.data[idx])
        flat = pair_row * num_gallery + v_gallery.indices[idx]
        out[lo:hi] = np.bincount(flat, weights=share, minlength=(hi - lo) * num_gallery).reshape(hi - lo, -1)
        lo = hi
    return out


def _check_inputs(q_g: np.ndarray, q_q: np.ndarray, g_g: np.ndarray, k1: int, k2: int, lam: float) -> None:
    nq, ng = q_g.shape if q_g.ndim == 2 else (-1, -1)
    if q_g.ndim != 2 or q_q.shape != (nq, nq) or g_g.shape != (ng, ng):
        raise ValueError(f"inconsistent shapes: q_g {q_g.shape}, q_q {q_q.shape}, g_g {g_g.shape}")
    if k1 < 1 or k2 < 1:
        raise ValueError(f"k1 and k2 must be at least 1, got k1={k1}, k2={k2}")
    if not 0.0 <= lam <= 1.0:
        raise ValueError(f"lambda_value must lie in [0, 1], got {lam}")


def re_rank(
    q_g_dist: ArrayLike,
    q_q_dist: ArrayLike,
    g_g_dist: ArrayLike,
    k1: int = 20,
    k2: int = 6,
    lambda_value: float = 0.3,
    *,
    block_rows: int = 256,
    max_pairs: int = 4_000_000,
) -> np.ndarray:
    """Return the re-ranked (num_query, num_gallery) float32 distance from three symmetric distance blocks.

    With lambda_value=1 the result is the original distance squared and divided by each query row's maximum.
    k1 and k2 are capped for sets smaller than k1 + 1 items.
    """
    q_g, q_q, g_g = _to_numpy(q_g_dist), _to_numpy(q_q_dist), _to_numpy(g_g_dist)
    _check_inputs(q_g, q_q, g_g, k1, k2, lambda_value)
    dist = _BlockDistance(q_q, q_g, g_g)
    nq = dist.num_query
    k1, k2 = min(k1, dist.size - 1), min(k2, dist.size)
    ranks, row_max = _nearest(dist, max(k1 + 1, k2), block_rows)
    v = _weights(dist, row_max, *_expanded_sets(ranks, k1, block_rows))
    if k2 > 1:
        v = _query_expansion(v, ranks, k2)
    overlap = _min_overlap(v[:nq], v[nq:].tocsc(), max_pairs)
    jaccard = 1.0 - overlap / (2.0 - overlap)
    original = np.square(q_g, dtype=np.float32) / np.where(row_max[:nq] > 0, row_max[:nq], 1)[:, None]
    jaccard *= np.float32(1.0 - lambda_value)
    jaccard += np.float32(lambda_value) * original
    return jaccard.astype(np.float32, copy=False)


def k_reciprocal_jaccard(
    dist: ArrayLike, k1: int = 20, k2: int = 6, *, block_rows: int = 256, max_pairs: int = 4_000_000
) -> np.ndarray:
    """The (N, N) float32 k-reciprocal Jaccard distance of one set of items to itself, in [0, 1].

    The same neighbour sets, weights and query expansion as :func:`re_rank`, over a single symmetric
    distance matrix (the set is both query and gallery, each item once), with nothing of the original
    distance mixed in: what clustering-based adaptation clusters on. The result is dense (N x N).
    """
    d = _to_numpy(dist)
    if d.ndim != 2 or d.shape[0] != d.shape[1]:
        raise ValueError(f"expected a square distance matrix, got shape {d.shape}")
    if k1 < 1 or k2 < 1:
        raise ValueError(f"k1 and k2 must be at least 1, got k1={k1}, k2={k2}")
    size = d.shape[0]
    if size < 2:
        return np.zeros((size, size), dtype=np.float32)
    block = _BlockDistance(d, np.zeros((size, 0), dtype=np.float32), np.zeros((0, 0), dtype=np.float32))
    k1, k2 = min(k1, size - 1), min(k2, size)
    ranks, row_max = _nearest(block, max(k1 + 1, k2), block_rows)
    v = _weights(block, row_max, *_expanded_sets(ranks, k1, block_rows))
    if k2 > 1:
        v = _query_expansion(v, ranks, k2)
    overlap = _min_overlap(v, v.tocsc(), max_pairs)
    jaccard = 1.0 - overlap / (2.0 - overlap)
    np.clip(jaccard, 0.0, 1.0, out=jaccard)
    np.fill_diagonal(jaccard, 0.0)
    return jaccard.astype(np.float32, copy=False)
