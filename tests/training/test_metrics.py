"""Behaviour of the ranking metrics: CMC, mAP, mINP and the sklearn-0.18 interpolated mAP."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import average_precision_score

from training.evaluation import evaluate_ranking


def _one_query(
    dist_row: list[float], g_pids: list[int], g_camids: list[int] | None = None, max_rank: int = 5
):
    """Evaluate a single query of pid 1 seen by camera 0."""
    g_camids = g_camids if g_camids is not None else [1] * len(g_pids)
    return evaluate_ranking(
        np.array([dist_row], dtype=np.float32), [1], g_pids, [0], g_camids, max_rank=max_rank
    )


def _interpolated_ap(labels: np.ndarray, scores: np.ndarray) -> float:
    """scikit-learn 0.18's AP spelled out: PR curve over distinct thresholds, then trapezoids."""
    thresholds = np.unique(scores)[::-1]
    total = labels.sum()
    precision, recall = [], []
    for t in thresholds:
        selected = scores >= t
        tp = labels[selected].sum()
        precision.append(tp / selected.sum())
        recall.append(tp / total)
        if tp == total:
            break
    recall_pts = [0.0, *recall]
    precision_pts = [1.0, *precision]
    area = 0.0
    for i in range(1, len(recall_pts)):
        area += (recall_pts[i] - recall_pts[i - 1]) * (precision_pts[i] + precision_pts[i - 1]) / 2
    return area


def _reference(distmat, q_pids, g_pids, q_camids, g_camids, max_rank):
    """Per-query loop with stable sort, sklearn's (non-interpolated) AP and the interpolated AP."""
    cmc, aps, inps, iaps = np.zeros(max_rank), [], [], []
    for i in range(len(q_pids)):
        keep = ~(((g_pids == q_pids[i]) & (g_camids == q_camids[i])) | (g_pids == -1))
        dist, labels = distmat[i][keep], (g_pids[keep] == q_pids[i]).astype(int)
        if labels.sum() == 0:
            continue
        order = np.argsort(dist, kind="stable")
        ranks = np.flatnonzero(labels[order]) + 1
        cmc[ranks[0] - 1 :] += 1
        aps.append(average_precision_score(labels, -dist))
        inps.append(len(ranks) / ranks[-1])
        iaps.append(_interpolated_ap(labels, -dist))
    n = len(aps)
    return cmc / n, float(np.mean(aps)), float(np.mean(inps)), float(np.mean(iaps)), n


def _random_case(rng: np.random.Generator, num_q: int, num_g: int, num_ids: int, num_cams: int = 3):
    q_pids = rng.integers(0, num_ids, num_q)
    g_pids = rng.integers(0, num_ids, num_g)
    q_camids = rng.integers(0, num_cams, num_q)
    g_camids = rng.integers(0, num_cams, num_g)
    return q_pids, g_pids, q_camids, g_camids


def test_perfect_ranking_scores_one() -> None:
    result = _one_query([0.1, 0.2, 0.8, 0.9], [1, 1, 2, 3])
    assert result["cmc"][0] == 1.0
    assert result["mAP"] == 1.0
    assert result["mINP"] == 1.0
    assert result["mAP_paper_interpolated"] == 1.0
    assert result["num_valid_queries"] == 1 and result["num_skipped_queries"] == 0


def test_reversed_ranking() -> None:
    result = _one_query([0.9, 0.8, 0.1, 0.2], [1, 1, 2, 3])
    np.testing.assert_allclose(result["cmc"], [0, 0, 1, 1, 1])
    assert result["mAP"] == pytest.approx((1 / 3 + 2 / 4) / 2)
    assert result["mINP"] == pytest.approx(2 / 4)
    assert result["mAP_paper_interpolated"] == pytest.approx(
        0.5 * (0 + 1 / 3) / 2 + 0.5 * (1 / 3 + 2 / 4) / 2
    )


def test_cmc_is_cumulative_and_has_max_rank_entries() -> None:
    result = _one_query([0.3, 0.1, 0.2, 0.4], [1, 2, 3, 1], max_rank=6)
    assert result["cmc"].shape == (6,)
    np.testing.assert_allclose(result["cmc"], [0, 0, 1, 1, 1, 1])


def test_ties_are_broken_by_gallery_order() -> None:
    first = _one_query([0.5, 0.5, 0.9], [1, 2, 3])
    second = _one_query([0.5, 0.5, 0.9], [2, 1, 3])
    assert first["cmc"][0] == 1.0 and first["mAP"] == 1.0
    assert second["cmc"][0] == 0.0 and second["mAP"] == pytest.approx(0.5)


def test_interpolated_ap_groups_tied_distances() -> None:
    result = _one_query([0.5, 0.5, 0.9], [2, 1, 3])
    assert result["mAP_paper_interpolated"] == pytest.approx(1.0 * (1.0 + 0.5) / 2)
    labels, scores = np.array([0, 1, 0]), -np.array([0.5, 0.5, 0.9])
    assert result["mAP_paper_interpolated"] == pytest.approx(_interpolated_ap(labels, scores))


def test_same_camera_matches_are_excluded() -> None:
    result = _one_query([0.1, 0.2, 0.3], [1, 2, 1], g_camids=[0, 1, 1])
    np.testing.assert_allclose(result["cmc"][:3], [0, 1, 1])
    assert result["mAP"] == pytest.approx(0.5)
    assert result["mINP"] == pytest.approx(0.5)


def test_query_without_valid_match_is_skipped_and_counted() -> None:
    distmat = np.array([[0.1, 0.2, 0.3], [0.3, 0.2, 0.1]], dtype=np.float32)
    result = evaluate_ranking(distmat, [1, 7], [1, 2, 7], [0, 0], [1, 1, 0], max_rank=3)
    assert result["num_valid_queries"] == 1
    assert result["num_skipped_queries"] == 1
    assert result["mAP"] == 1.0


def test_no_valid_query_at_all_is_an_error() -> None:
    with pytest.raises(ValueError, match="no query"):
        evaluate_ranking(np.zeros((1, 2), dtype=np.float32), [5], [1, 2], [0], [0, 0])


def test_junk_gallery_images_are_ignored() -> None:
    with_junk = _one_query([0.1, 0.2, 0.3, 0.4], [-1, 2, 1, -1])
    without = _one_query([0.2, 0.3], [2, 1])
    assert with_junk["mAP"] == pytest.approx(0.5)
    np.testing.assert_allclose(with_junk["cmc"], without["cmc"])


def test_minp_by_hand() -> None:
    distmat = np.array([[0.1, 0.2, 0.3, 0.4, 0.5], [0.5, 0.1, 0.2, 0.4, 0.3]], dtype=np.float32)
    result = evaluate_ranking(distmat, [1, 2], [1, 2, 1, 2, 3], [0, 0], [1, 1, 1, 1, 1], max_rank=5)
    # query 1: positives at ranks 1 and 3 -> 2/3; query 2: positives at ranks 1 and 4 -> 2/4
    assert result["mINP"] == pytest.approx((2 / 3 + 2 / 4) / 2)


def test_map_matches_sklearn_on_random_cases() -> None:
    rng = np.random.default_rng(0)
    q_pids, g_pids, q_camids, g_camids = _random_case(rng, 60, 300, 25)
    g_pids[rng.random(300) < 0.05] = -1
    distmat = rng.random((60, 300)).astype(np.float32)
    cmc, m_ap, m_inp, m_iap, n = _reference(distmat, q_pids, g_pids, q_camids, g_camids, 20)
    result = evaluate_ranking(distmat, q_pids, g_pids, q_camids, g_camids, max_rank=20)
    assert result["num_valid_queries"] == n
    np.testing.assert_allclose(result["cmc"], cmc)
    assert result["mAP"] == pytest.approx(m_ap, abs=1e-12)
    assert result["mINP"] == pytest.approx(m_inp, abs=1e-12)
    assert result["mAP_paper_interpolated"] == pytest.approx(m_iap, abs=1e-12)
    assert result["mAP_paper_interpolated"] < result["mAP"]


def test_interpolated_map_matches_direct_curve_with_many_ties() -> None:
    rng = np.random.default_rng(1)
    q_pids, g_pids, q_camids, g_camids = _random_case(rng, 40, 120, 10)
    distmat = rng.integers(0, 6, (40, 120)).astype(np.float32) / 4
    _, _, _, m_iap, n = _reference(distmat, q_pids, g_pids, q_camids, g_camids, 10)
    result = evaluate_ranking(distmat, q_pids, g_pids, q_camids, g_camids, max_rank=10)
    assert result["num_valid_queries"] == n
    assert result["mAP_paper_interpolated"] == pytest.approx(m_iap, abs=1e-12)


def test_chunking_threads_and_dtypes_agree() -> None:
    rng = np.random.default_rng(2)
    q_pids, g_pids, q_camids, g_camids = _random_case(rng, 50, 200, 20)
    distmat = (rng.integers(0, 50, (50, 200)) / 7).astype(np.float32)
    base = evaluate_ranking(distmat, q_pids, g_pids, q_camids, g_camids, max_rank=10)
    variants = [
        evaluate_ranking(
            distmat, q_pids, g_pids, q_camids, g_camids, max_rank=10, chunk_elements=450, num_threads=2
        ),
        evaluate_ranking(distmat.astype(np.float64), q_pids, g_pids, q_camids, g_camids, max_rank=10),
        evaluate_ranking(
            torch.from_numpy(distmat), *map(torch.from_numpy, (q_pids, g_pids, q_camids, g_camids)), 10
        ),
    ]
    for other in variants:
        np.testing.assert_allclose(other["cmc"], base["cmc"])
        for key in ("mAP", "mINP", "mAP_paper_interpolated"):
            assert other[key] == pytest.approx(base[key], abs=1e-12)


def test_shape_mismatch_is_rejected() -> None:
    with pytest.raises(ValueError, match="shape"):
        evaluate_ranking(np.zeros((2, 3), dtype=np.float32), [1], [1, 2, 3], [0], [0, 0, 0])
