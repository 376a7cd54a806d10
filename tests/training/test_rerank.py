"""Behaviour of k-reciprocal re-ranking."""

from __future__ import annotations

import numpy as np
import pytest

from training.evaluation import compute_distance, evaluate_ranking, re_rank


def _blocks(query: np.ndarray, gallery: np.ndarray, metric: str = "euclidean"):
    return (
        compute_distance(query, gallery, metric),
        compute_distance(query, query, metric),
        compute_distance(gallery, gallery, metric),
    )


def _dense_re_rank(q_g, q_q, g_g, k1, k2, lam):
    """The algorithm as the paper states it, on the full matrix with plain loops."""
    full = np.block([[q_q, q_g], [q_g.T, g_g]]).astype(np.float64) ** 2
    full /= full.max(axis=1, keepdims=True)
    n, nq = len(full), len(q_q)
    rank = np.argsort(full, axis=1, kind="stable")

    def reciprocal(i: int, k: int) -> set[int]:
        return {int(j) for j in rank[i, : k + 1] if i in rank[j, : k + 1]}

    v = np.zeros_like(full)
    for i in range(n):
        base = reciprocal(i, k1)
        members = set(base)
        for c in base:
            half = reciprocal(c, int(np.around(k1 / 2)))
            if len(half & base) > 2 / 3 * len(half):
                members |= half
        idx = np.array(sorted(members))
        w = np.exp(-full[i, idx])
        v[i, idx] = w / w.sum()
    if k2 > 1:
        v = np.stack([v[rank[i, :k2]].mean(axis=0) for i in range(n)])
    overlap = np.array([[np.minimum(v[i], v[j]).sum() for j in range(nq, n)] for i in range(nq)])
    jaccard = 1 - overlap / (2 - overlap)
    return (1 - lam) * jaccard + lam * full[:nq, nq:]


def test_re_ranking_promotes_a_true_match_ranked_second() -> None:
    query = np.array([[0.0, 0.0]])
    gallery = np.array(
        [[0.5, 0.0], [-0.6, 0.0], [-0.65, 0.05], [-0.7, 0.0], [0.8, 0.0], [0.8, 0.1], [0.85, -0.05]]
    )
    g_pids = [2, 1, 1, 1, 2, 2, 2]
    q_g, q_q, g_g = _blocks(query, gallery)
    before = evaluate_ranking(q_g, [1], g_pids, [0], [1] * 7, max_rank=3)
    after_dist = re_rank(q_g, q_q, g_g, k1=3, k2=1, lambda_value=0.3)
    after = evaluate_ranking(after_dist, [1], g_pids, [0], [1] * 7, max_rank=3)
    assert np.argsort(q_g[0])[:2].tolist() == [0, 1]
    assert before["cmc"][0] == 0.0
    assert int(np.argmin(after_dist[0])) == 1
    assert after["cmc"][0] == 1.0
    assert after["mAP"] > before["mAP"]


def test_output_shape_dtype_and_finiteness() -> None:
    rng = np.random.default_rng(0)
    q_g, q_q, g_g = _blocks(rng.normal(size=(7, 16)), rng.normal(size=(30, 16)), "cosine")
    out = re_rank(q_g, q_q, g_g, k1=5, k2=3)
    assert out.shape == (7, 30)
    assert out.dtype == np.float32
    assert np.isfinite(out).all()
    assert (out >= 0).all() and (out <= 1 + 1e-6).all()


def test_lambda_one_keeps_the_original_order_and_values() -> None:
    rng = np.random.default_rng(1)
    q_g, q_q, g_g = _blocks(rng.normal(size=(5, 8)), rng.normal(size=(40, 8)))
    out = re_rank(q_g, q_q, g_g, k1=6, k2=2, lambda_value=1.0)
    row_max = np.maximum(np.square(q_q).max(axis=1), np.square(q_g).max(axis=1))
    np.testing.assert_allclose(out, np.square(q_g) / row_max[:, None], rtol=1e-6)
    np.testing.assert_array_equal(np.argsort(out, axis=1), np.argsort(q_g, axis=1))


def test_matches_a_plain_dense_implementation() -> None:
    rng = np.random.default_rng(2)
    centres = rng.normal(size=(6, 12))
    query = centres[rng.integers(0, 6, 8)] + 0.6 * rng.normal(size=(8, 12))
    gallery = centres[rng.integers(0, 6, 50)] + 0.6 * rng.normal(size=(50, 12))
    q_g, q_q, g_g = _blocks(query, gallery)
    for k1, k2, lam in ((6, 3, 0.3), (5, 1, 0.5), (20, 6, 0.3)):
        expected = _dense_re_rank(q_g, q_q, g_g, k1, k2, lam)
        got = re_rank(q_g, q_q, g_g, k1=k1, k2=k2, lambda_value=lam, block_rows=7, max_pairs=500)
        np.testing.assert_allclose(got, expected, atol=2e-5)


def test_small_sets_cap_k1_and_k2() -> None:
    rng = np.random.default_rng(3)
    q_g, q_q, g_g = _blocks(rng.normal(size=(2, 4)), rng.normal(size=(4, 4)))
    np.testing.assert_allclose(
        re_rank(q_g, q_q, g_g, k1=20, k2=6), re_rank(q_g, q_q, g_g, k1=5, k2=6), atol=1e-7
    )


def test_bad_arguments_are_rejected() -> None:
    q_g, q_q, g_g = np.zeros((2, 3)), np.zeros((2, 2)), np.zeros((3, 3))
    with pytest.raises(ValueError, match="shapes"):
        re_rank(q_g, q_q, np.zeros((2, 2)))
    with pytest.raises(ValueError, match="k1"):
        re_rank(q_g, q_q, g_g, k1=0)
    with pytest.raises(ValueError, match="lambda"):
        re_rank(q_g, q_q, g_g, k1=2, k2=1, lambda_value=1.5)
