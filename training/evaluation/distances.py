"""Query x gallery distance matrices computed in torch, a block of query rows at a time.

Metrics: ``cosine`` = 1 - cos(q, g) on L2-normalised features, in [0, 2] (the paper's choice);
``euclidean`` = the true L2 distance ||q - g||; ``sqeuclidean`` = its square (the paper code's
unused euclidean branch). Results are float32 numpy arrays; rounding below zero is clamped to 0.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F

Metric = Literal["cosine", "euclidean", "sqeuclidean"]
METRICS: tuple[str, ...] = ("cosine", "euclidean", "sqeuclidean")


def _as_tensor(features: np.ndarray | torch.Tensor) -> torch.Tensor:
    tensor = features if isinstance(features, torch.Tensor) else torch.from_numpy(np.asarray(features))
    if tensor.ndim != 2:
        raise ValueError(f"features must be a 2-D (N, D) matrix, got shape {tuple(tensor.shape)}")
    return tensor.detach().to("cpu", torch.float32)


def compute_distance(
    query: np.ndarray | torch.Tensor,
    gallery: np.ndarray | torch.Tensor,
    metric: Metric = "cosine",
    *,
    chunk_size: int = 1024,
) -> np.ndarray:
    """Return the (num_query, num_gallery) float32 distance matrix; smaller means more similar."""
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; expected one of {METRICS}")
    q, g = _as_tensor(query), _as_tensor(gallery)
    if q.shape[1] != g.shape[1]:
        raise ValueError(f"feature sizes differ: query {q.shape[1]}, gallery {g.shape[1]}")
    if metric == "cosine":
        q, g = F.normalize(q, dim=1), F.normalize(g, dim=1)
    out = np.empty((q.shape[0], g.shape[0]), dtype=np.float32)
    out_t = torch.from_numpy(out)
    g_t = g.t().contiguous()
    g_sq = g.pow(2).sum(dim=1)
    with torch.no_grad():
        for lo in range(0, q.shape[0], chunk_size):
            block, rows = q[lo : lo + chunk_size], out_t[lo : lo + chunk_size]
            torch.mm(block, g_t, out=rows)
            if metric == "cosine":
                rows.neg_().add_(1.0).clamp_(0.0, 2.0)
                continue
            rows.mul_(-2.0).add_(block.pow(2).sum(dim=1, keepdim=True)).add_(g_sq[None, :]).clamp_(min=0.0)
            if metric == "euclidean":
                rows.sqrt_()
    return out
