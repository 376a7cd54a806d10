"""Evaluate a network on a query/gallery split: features, metrics, table, metrics.json and figures.

Both of the network's features are evaluated, as the paper's code did: ``bn`` (after the BNNeck, the
primary result) and ``pooled`` (before it). With re-ranking, ``<feature>+rerank`` entries are added.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import torch
from tqdm import tqdm

from model.preprocess import preprocess
from training import defaults
from training.evaluation.distances import Metric, compute_distance
from training.evaluation.metrics import MAX_RANK, evaluate_ranking
from training.evaluation.plots import plot_cmc, plot_rank_lists
from training.evaluation.rerank import re_rank

if TYPE_CHECKING:
    from training.datasets.base import ImageRecord

FEATURES = ("bn", "pooled")
PRIMARY = "bn"
TOP_K = 10


class FeatureNetwork(Protocol):
    """What evaluation needs from a network: ``model.ReIDNet`` or any stand-in with its two features."""

    input_size: tuple[int, int]
    training: bool

    def eval(self) -> Any: ...

    def train(self, mode: bool = True) -> Any: ...

    def features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]: ...


class ReidSplit(Protocol):
    """A test split: lists of (image_path, person_id, camera_id)."""

    query: Sequence[ImageRecord]
    gallery: Sequence[ImageRecord]


def _embed(net: FeatureNetwork, batch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    pooled, bn = net.features(batch)
    return pooled.float(), bn.float()


def extract_features(
    net: FeatureNetwork,
    image_paths: Sequence[str | Path],
    *,
    batch_size: int = defaults.FEATURE_BATCH_SIZE,
    device: str | torch.device = "cpu",
    flip: bool = False,
    desc: str = "features",
) -> dict[str, np.ndarray]:
    """Return {"bn": (N, D), "pooled": (N, D)} float32 features; flip averages with the mirrored image."""
    if len(image_paths) == 0:
        raise ValueError("no images to extract features from")
    was_training = net.training
    net.eval()
    chunks: dict[str, list[np.ndarray]] = {"bn": [], "pooled": []}
    try:
        with torch.inference_mode():
            for lo in tqdm(range(0, len(image_paths), batch_size), desc=desc, unit="batch"):
                batch = preprocess(list(image_paths[lo : lo + batch_size]), tuple(net.input_size)).to(device)
                pooled, bn = _embed(net, batch)
                if flip:
                    pooled_f, bn_f = _embed(net, batch.flip(-1))
                    pooled, bn = (pooled + pooled_f) / 2, (bn + bn_f) / 2
                chunks["pooled"].append(pooled.cpu().numpy())
                chunks["bn"].append(bn.cpu().numpy())
    finally:
        net.train(was_training)
    return {name: np.concatenate(parts).astype(np.float32, copy=False) for name, parts in chunks.items()}


def _split(samples: Sequence[ImageRecord]) -> tuple[list[str], np.ndarray, np.ndarray]:
    if len(samples) == 0:
        raise ValueError("empty query or gallery list")
    paths = [str(s[0]) for s in samples]
    return (
        paths,
        np.array([s[1] for s in samples], dtype=np.int64),
        np.array([s[2] for s in samples], dtype=np.int64),
    )


def _ranked_lists(
    distmat: np.ndarray, rows: np.ndarray, ids: tuple[np.ndarray, ...], top_k: int
) -> list[np.ndarray]:
    """Top gallery indices for some queries, leaving out what the metrics ignore (junk, same id + camera)."""
    q_pids, g_pids, q_camids, g_camids = ids
    lists = []
    for i in rows:
        junk = ((g_pids == q_pids[i]) & (g_camids == q_camids[i])) | (g_pids == -1)
        order = np.argsort(np.where(junk, np.inf, distmat[i]), kind="stable")
        lists.append(order[: min(top_k, int((~junk).sum()))])
    return lists


def _jsonable(metrics: dict) -> dict:
    return {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in metrics.items()}


def format_table(results: dict[str, dict]) -> str:
    """A fixed-width table of rank-1/5/10, mAP, mINP and the interpolated mAP, in percent."""
    columns = (
        ("R1", 7),
        ("R5", 7),
        ("R10", 7),
        ("mAP", 7),
        ("mINP", 7),
        ("mAP-int", 9),
        ("valid", 8),
        ("skip", 6),
    )
    header = f"{'feature':<16}" + "".join(f"{name:>{width}}" for name, width in columns)
    lines = [header, "-" * len(header)]
    for name, r in results.items():
        cmc = r["cmc"]
        ranks = [f"{100 * cmc[k - 1]:7.2f}" if len(cmc) >= k else f"{'-':>7}" for k in (1, 5, 10)]
        lines.append(
            f"{name:<16}{''.join(ranks)}{100 * r['mAP']:7.2f}{100 * r['mINP']:7.2f}"
            f"{100 * r['mAP_paper_interpolated']:9.2f}"
            f"{r['num_valid_queries']:8d}{r['num_skipped_queries']:6d}"
        )
    lines.append(
        "mAP-int: interpolated (trapezoidal) AP of scikit-learn 0.18, as the paper's code computed it"
    )
    return "\n".join(lines)


def evaluate_model(
    net: FeatureNetwork,
    dataset: ReidSplit,
    out_dir: str | Path,
    *,
    device: str | torch.device = "cpu",
    batch_size: int = defaults.FEATURE_BATCH_SIZE,
    rerank: bool = defaults.RERANK,
    flip: bool = defaults.FLIP,
    metric: Metric = defaults.METRIC,
    num_rank_lists: int = defaults.NUM_RANK_LISTS,
    max_rank: int = MAX_RANK,
) -> dict:
    """Evaluate both features (and re-ranked versions); print a table, write metrics.json and figures."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    q_paths, q_pids, q_camids = _split(dataset.query)
    g_paths, g_pids, g_camids = _split(dataset.gallery)
    ids = (q_pids, g_pids, q_camids, g_camids)
    kw = {"batch_size": batch_size, "device": device, "flip": flip}
    q_feats = extract_features(net, q_paths, desc="query", **kw)
    g_feats = extract_features(net, g_paths, desc="gallery", **kw)

    shown = f"{PRIMARY}+rerank" if rerank else PRIMARY
    results: dict[str, dict] = {}
    shown_dist = np.empty(0)
    for name in FEATURES:
        q_g = compute_distance(q_feats[name], g_feats[name], metric)
        results[name] = evaluate_ranking(q_g, *ids, max_rank=max_rank)
        if rerank:
            q_q = compute_distance(q_feats[name], q_feats[name], metric)
            g_g = compute_distance(g_feats[name], g_feats[name], metric)
            q_g_rr = re_rank(q_g, q_q, g_g)
            del q_q, g_g
            results[f"{name}+rerank"] = evaluate_ranking(q_g_rr, *ids, max_rank=max_rank)
            shown_dist = q_g_rr if f"{name}+rerank" == shown else shown_dist
        shown_dist = q_g if name == shown else shown_dist

    print(format_table(results))
    report = {
        "primary": PRIMARY,
        "metric": metric,
        "flip": flip,
        "rerank": rerank,
        "num_query": len(q_paths),
        "num_gallery": len(g_paths),
        "results": {name: _jsonable(r) for name, r in results.items()},
    }
    (out / "metrics.json").write_text(json.dumps(report, indent=2))
    plot_cmc({name: r["cmc"] for name, r in results.items()}, out / "cmc.png")
    if num_rank_lists > 0:
        rows = np.unique(
            np.linspace(0, len(q_paths) - 1, min(num_rank_lists, len(q_paths))).round().astype(int)
        )
        lists = _ranked_lists(shown_dist, rows, ids, TOP_K)
        plot_rank_lists(
            [(q_paths[i], int(q_pids[i])) for i in rows],
            [[(g_paths[j], int(g_pids[j])) for j in order] for order in lists],
            out / "rank_lists.png",
        )
    return report
