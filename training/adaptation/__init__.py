"""Unsupervised domain adaptation from a store's own unlabelled crops (``reid-train adapt``).

Each epoch extracts features of every unlabelled image, builds k-reciprocal Jaccard distances
(``training.evaluation.rerank``), clusters them with DBSCAN (outliers left out), and trains against a
cluster-level contrastive memory (Cluster Contrast), plus camera-aware proxies when cameras are known.
"""

from training.adaptation.clustering import ClusterStats, cluster_features, cluster_stats, pseudo_labels
from training.adaptation.config import AdaptConfig, load_adapt_config
from training.adaptation.loop import AdaptResult, adapt
from training.adaptation.memory import CameraMemory, ClusterMemory
from training.adaptation.unlabelled import UnlabelledImage, UnlabelledSet, read_unlabelled

__all__ = [
    "AdaptConfig",
    "AdaptResult",
    "CameraMemory",
    "ClusterMemory",
    "ClusterStats",
    "UnlabelledImage",
    "UnlabelledSet",
    "adapt",
    "cluster_features",
    "cluster_stats",
    "load_adapt_config",
    "pseudo_labels",
    "read_unlabelled",
]
