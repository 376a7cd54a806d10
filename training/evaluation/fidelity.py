"""How far an export's runtimes agree: embeddings of the same crops, and the ranking they give.

Used for the int8 model (``reid-train export --int8``): the mean cosine similarity between its and the
float model's embeddings of a dataset's query and gallery images, and rank-1 and mAP of each.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from model import load_embedder
from training.datasets.base import ReidDataset
from training.evaluation.metrics import evaluate_ranking

BATCH = 64


def embed_records(embedder, paths: Sequence[str]) -> np.ndarray:
    """Embeddings of image files, in batches: (N, D) float32, L2-normalised."""
    return np.concatenate([embedder.embed(list(paths[i : i + BATCH])) for i in range(0, len(paths), BATCH)])


def _ids(records) -> tuple[np.ndarray, np.ndarray]:
    return np.array([r[1] for r in records]), np.array([r[2] for r in records])


def ranking(query: np.ndarray, gallery: np.ndarray, dataset: ReidDataset) -> dict[str, float]:
    """Rank-1 and mAP (in points, 0-100) of the cosine ranking of the gallery for every query."""
    (q_pids, q_cams), (g_pids, g_cams) = _ids(dataset.query), _ids(dataset.gallery)
    result = evaluate_ranking(1.0 - query @ gallery.T, q_pids, g_pids, q_cams, g_cams)
    return {"rank1": 100.0 * float(result["cmc"][0]), "mAP": 100.0 * float(result["mAP"])}


def first_hits(query: np.ndarray, gallery: np.ndarray, dataset: ReidDataset) -> np.ndarray:
    """Per query, whether the most similar valid gallery image is the same person (the rank-1 rules:
    junk images and the same person on the same camera do not count)."""
    (q_pids, q_cams), (g_pids, g_cams) = _ids(dataset.query), _ids(dataset.gallery)
    similarity = query @ gallery.T
    invalid = (g_pids[None] == -1) | ((g_pids[None] == q_pids[:, None]) & (g_cams[None] == q_cams[:, None]))
    similarity[invalid] = -np.inf
    return g_pids[similarity.argmax(axis=1)] == q_pids


def compare_runtimes(
    model_dir: str | Path, dataset: ReidDataset, reference: str = "onnx", candidate: str = "onnx-int8"
) -> dict:
    """Cosine similarity of ``candidate``'s embeddings to ``reference``'s, and both rankings.

    Returns ``images``, ``mean_cosine``, ``min_cosine``, ``reference`` and ``candidate`` (rank-1 and
    mAP in points), their differences ``delta_rank1`` and ``delta_mAP`` (candidate less reference), and
    ``rank1_gained`` and ``rank1_lost``: the queries whose first match became right, or wrong.
    """
    paths = [r[0] for r in dataset.query] + [r[0] for r in dataset.gallery]
    split = len(dataset.query)
    embedded = {}
    for runtime in (reference, candidate):
        embedded[runtime] = embed_records(load_embedder(model_dir, device="cpu", runtime=runtime), paths)
    cosines = (embedded[reference] * embedded[candidate]).sum(axis=1)
    scores = {rt: ranking(e[:split], e[split:], dataset) for rt, e in embedded.items()}
    before, after = (
        first_hits(embedded[rt][:split], embedded[rt][split:], dataset) for rt in (reference, candidate)
    )
    return {
        "images": len(paths),
        "mean_cosine": float(cosines.mean()),
        "min_cosine": float(cosines.min()),
        "reference": scores[reference],
        "candidate": scores[candidate],
        "delta_rank1": scores[candidate]["rank1"] - scores[reference]["rank1"],
        "delta_mAP": scores[candidate]["mAP"] - scores[reference]["mAP"],
        "rank1_gained": int((after & ~before).sum()),
        "rank1_lost": int((before & ~after).sum()),
    }
