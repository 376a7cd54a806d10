"""Pseudo-identities from features: k-reciprocal Jaccard distances, DBSCAN, and how good the clusters are.

DBSCAN (scikit-learn, on the precomputed Jaccard distance) leaves points that belong to no dense
region as outliers (label -1); they sit out the epoch's training, as in Cluster Contrast.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.cluster import DBSCAN

from training import defaults
from training.evaluation.distances import compute_distance
from training.evaluation.rerank import k_reciprocal_jaccard

OUTLIER = -1


@dataclass(frozen=True)
class ClusterStats:
    """One clustering: clusters, clustered images, outliers, and purity when true labels happen to exist.

    Purity: the share of clustered images whose cluster's most common true label is their own.
    """

    clusters: int
    clustered: int
    outliers: int
    purity: float | None = None
    true_ids: int | None = None


def camera_centred(features: np.ndarray, cameras: np.ndarray) -> np.ndarray:
    """L2-normalised features less their camera's mean: what every crop of a camera shares is taken out."""
    normalised = features / np.maximum(np.linalg.norm(features, axis=1, keepdims=True), 1e-12)
    centred = normalised.copy()
    for camera in np.unique(cameras):
        members = cameras == camera
        centred[members] -= normalised[members].mean(axis=0)
    return centred


def jaccard_distance(
    features: np.ndarray, k1: int = defaults.ADAPT_K1, k2: int = defaults.ADAPT_K2
) -> np.ndarray:
    """The (N, N) k-reciprocal Jaccard distance of L2-normalised features (euclidean neighbours)."""
    normalised = features / np.maximum(np.linalg.norm(features, axis=1, keepdims=True), 1e-12)
    return k_reciprocal_jaccard(compute_distance(normalised, normalised, "euclidean"), k1, k2)


def pseudo_labels(
    distance: np.ndarray, eps: float = defaults.ADAPT_EPS, min_samples: int = defaults.ADAPT_MIN_SAMPLES
) -> np.ndarray:
    """DBSCAN cluster of each item (0..C-1 in order of first appearance) or -1 for an outlier."""
    raw = DBSCAN(eps=eps, min_samples=min_samples, metric="precomputed").fit_predict(
        np.asarray(distance, dtype=np.float64)
    )
    labels = np.full(len(raw), OUTLIER, dtype=np.int64)
    mapping: dict[int, int] = {}
    for position, value in enumerate(raw):
        if value >= 0:
            labels[position] = mapping.setdefault(int(value), len(mapping))
    return labels


def cluster_features(
    features: np.ndarray,
    *,
    k1: int = defaults.ADAPT_K1,
    k2: int = defaults.ADAPT_K2,
    eps: float = defaults.ADAPT_EPS,
    min_samples: int = defaults.ADAPT_MIN_SAMPLES,
) -> np.ndarray:
    """Pseudo-labels of features: Jaccard distance, then DBSCAN (-1 for outliers)."""
    return pseudo_labels(jaccard_distance(features, k1, k2), eps, min_samples)


def cluster_stats(labels: np.ndarray, truth: Sequence[int | None] | None = None) -> ClusterStats:
    """Counts of a clustering; purity and the number of true ids when every item has a true label."""
    labels = np.asarray(labels)
    clustered = labels != OUTLIER
    stats = ClusterStats(
        clusters=len(set(labels[clustered].tolist())),
        clustered=int(clustered.sum()),
        outliers=int((~clustered).sum()),
    )
    if truth is None or any(label is None for label in truth):
        return stats
    members: dict[int, Counter] = {}
    for cluster, label in zip(labels.tolist(), truth, strict=True):
        if cluster != OUTLIER:
            members.setdefault(cluster, Counter())[label] += 1
    majority = sum(counts.most_common(1)[0][1] for counts in members.values())
    purity = majority / stats.clustered if stats.clustered else 0.0
    return ClusterStats(stats.clusters, stats.clustered, stats.outliers, purity, len(set(truth)))


def centroids(features: np.ndarray, labels: np.ndarray, count: int) -> np.ndarray:
    """(count, D) L2-normalised mean feature of each cluster 0..count-1 (outliers ignored)."""
    sums = np.zeros((count, features.shape[1]), dtype=np.float64)
    clustered = labels != OUTLIER
    np.add.at(sums, labels[clustered], features[clustered])
    sums /= np.maximum(np.linalg.norm(sums, axis=1, keepdims=True), 1e-12)
    return sums.astype(np.float32)
