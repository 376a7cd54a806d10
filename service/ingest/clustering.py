"""Average-linkage clustering of link units under cannot-link constraints (SciPy's hierarchical clustering).

The similarity of two units is the mean cosine similarity of their crops, computed from embedding sums;
clusters merge while the mean similarity between them is at least the threshold. Pairs that cannot be
one person get a distance so large that no cluster holding both can form below any threshold.
"""

from __future__ import annotations

import numpy as np
from scipy.cluster.hierarchy import fcluster, linkage
from scipy.spatial.distance import squareform


def mean_similarity(totals: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Mean pairwise crop similarity between units, from each unit's embedding sum and crop count."""
    totals = np.asarray(totals, dtype=np.float64)
    counts = np.asarray(counts, dtype=np.float64)
    return (totals @ totals.T) / np.outer(counts, counts)


def linkage_tree(
    totals: np.ndarray,
    counts: np.ndarray,
    cannot_link: np.ndarray | None = None,
    penalty: np.ndarray | None = None,
) -> np.ndarray:
    """SciPy's average-linkage tree over units (at least two), cannot-link pairs kept apart.

    ``penalty`` is added to the distance of each pair (the time prior: pairs far apart in time must look
    more alike to be one person).
    """
    count = len(counts)
    distance = np.clip(1.0 - mean_similarity(totals, counts), 0.0, 2.0)
    if penalty is not None:
        distance = distance + penalty
    if cannot_link is not None and cannot_link.any():
        distance[cannot_link] = 4.0 * count * count
    np.fill_diagonal(distance, 0.0)
    return linkage(squareform(distance, checks=False), method="average")


def cut_tree(tree: np.ndarray, threshold: float) -> np.ndarray:
    """Cluster labels (0..k-1, by first appearance) where mean similarity is at least ``threshold``."""
    raw = fcluster(tree, t=1.0 - threshold, criterion="distance")
    _, first, labels = np.unique(raw, return_index=True, return_inverse=True)
    rank = np.argsort(np.argsort(first))
    return rank[labels].astype(np.int64)


def cluster_units(
    totals: np.ndarray,
    counts: np.ndarray,
    threshold: float,
    cannot_link: np.ndarray | None = None,
    penalty: np.ndarray | None = None,
) -> np.ndarray:
    """Cluster labels (0..k-1, in order of first appearance) for units given their embedding sums."""
    count = len(counts)
    if count < 2:
        return np.zeros(count, dtype=np.int64)
    return cut_tree(linkage_tree(totals, counts, cannot_link, penalty), threshold)
