"""Person re-id evaluation: distances, ranking metrics, k-reciprocal re-ranking and reports."""

from training.evaluation.distances import compute_distance
from training.evaluation.metrics import evaluate_ranking
from training.evaluation.report import evaluate_model, extract_features
from training.evaluation.rerank import re_rank

__all__ = ["compute_distance", "evaluate_model", "evaluate_ranking", "extract_features", "re_rank"]
