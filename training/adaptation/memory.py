"""Contrastive memories over pseudo-identities: one entry per cluster, and per cluster and camera.

``ClusterMemory`` is Cluster Contrast's (Dai et al., ACCV 2022): logits are the similarities of a batch's
L2-normalised features to every cluster's entry over a temperature, the loss is cross entropy on the
pseudo-label, and each cluster's entry then moves towards the batch's hardest instance of it
(``update="hard"``: the least similar) or its batch mean, keeping ``momentum`` of the old entry.

``CameraMemory`` is CAP's camera-aware proxies (Wang et al., AAAI 2021): one entry per cluster and camera;
an intra-camera loss ranks the sample's own proxy first among its camera's proxies, and an inter-camera
loss pulls all proxies of its cluster (whatever the camera) above the hardest proxies of other clusters,
so a person is one cluster across cameras rather than one per camera's lighting.

Entries are replaced, never written in place, so a loss computed before the update can still backpropagate.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from training import defaults

UPDATES = ("hard", "mean")


def _move(entries: torch.Tensor, rows: torch.Tensor, towards: torch.Tensor, momentum: float) -> torch.Tensor:
    """``entries`` with each of ``rows`` replaced by the normalised blend of itself and ``towards``."""
    blended = F.normalize(momentum * entries[rows] + (1.0 - momentum) * towards, dim=1)
    return entries.index_copy(0, rows, blended)


class ClusterMemory:
    """One L2-normalised entry per cluster; cross entropy of features against all of them."""

    def __init__(
        self,
        centroids: torch.Tensor,
        temperature: float = defaults.ADAPT_TEMPERATURE,
        momentum: float = defaults.ADAPT_MOMENTUM,
        update: str = defaults.ADAPT_MEMORY_UPDATE,
    ) -> None:
        if update not in UPDATES:
            raise ValueError(f"unknown memory update {update!r}; expected one of {UPDATES}")
        self.entries = F.normalize(centroids.float(), dim=1)
        self.temperature = temperature
        self.momentum = momentum
        self.update = update

    def __len__(self) -> int:
        return self.entries.shape[0]

    def loss(self, features: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Cross entropy of the batch against every cluster; then the batch's clusters are updated."""
        features = F.normalize(features.float(), dim=1)
        loss = F.cross_entropy(features @ self.entries.t() / self.temperature, targets)
        self._update(features.detach(), targets)
        return loss

    @torch.no_grad()
    def _update(self, features: torch.Tensor, targets: torch.Tensor) -> None:
        classes = torch.unique(targets)
        towards = torch.empty(len(classes), features.shape[1], device=features.device)
        for row, cluster in enumerate(classes):
            members = features[targets == cluster]
            if self.update == "hard":
                towards[row] = members[torch.argmin(members @ self.entries[cluster])]
            else:
                towards[row] = members.mean(dim=0)
        self.entries = _move(self.entries, classes, towards, self.momentum)


class CameraMemory:
    """One L2-normalised proxy per (cluster, camera) seen together; CAP's intra- and inter-camera losses."""

    def __init__(
        self,
        features: np.ndarray,
        labels: np.ndarray,
        cameras: np.ndarray,
        temperature: float = defaults.ADAPT_CAMERA_TEMPERATURE,
        momentum: float = defaults.ADAPT_MOMENTUM,
        hard_negatives: int = defaults.ADAPT_HARD_NEGATIVES,
        device: torch.device | str = "cpu",
    ) -> None:
        clustered = labels >= 0
        pairs = sorted({(int(y), int(c)) for y, c in zip(labels[clustered], cameras[clustered], strict=True)})
        self.index = np.full((int(labels.max()) + 1, int(cameras.max()) + 1), -1, dtype=np.int64)
        for position, (cluster, camera) in enumerate(pairs):
            self.index[cluster, camera] = position
        proxies = np.zeros((len(pairs), features.shape[1]), dtype=np.float64)
        rows = self.index[labels[clustered], cameras[clustered]]
        np.add.at(proxies, rows, features[clustered])
        self.entries = F.normalize(torch.from_numpy(proxies).float(), dim=1).to(device)
        self.cluster = torch.tensor([p[0] for p in pairs], dtype=torch.long, device=device)
        self.camera = torch.tensor([p[1] for p in pairs], dtype=torch.long, device=device)
        self.lookup = torch.from_numpy(self.index).to(device)
        self.temperature = temperature
        self.momentum = momentum
        self.hard_negatives = hard_negatives

    def __len__(self) -> int:
        return self.entries.shape[0]

    def loss(self, features: torch.Tensor, targets: torch.Tensor, cameras: torch.Tensor) -> torch.Tensor:
        """Intra-camera cross entropy plus half the inter-camera loss; then the batch's proxies move."""
        features = F.normalize(features.float(), dim=1)
        own = self.lookup[targets, cameras]
        logits = features @ self.entries.t() / self.temperature
        other_camera = self.camera[None, :] != cameras[:, None]
        intra = F.cross_entropy(logits.masked_fill(other_camera, float("-inf")), own)
        positive = self.cluster[None, :] == targets[:, None]
        negatives = logits.masked_fill(positive, float("-inf"))
        hardest = negatives.topk(min(self.hard_negatives, len(self)), dim=1).values
        candidates = torch.cat([logits.masked_fill(~positive, float("-inf")), hardest], dim=1)
        log_norm = torch.logsumexp(candidates, dim=1, keepdim=True)
        log_prob = (logits - log_norm).masked_fill(~positive, 0.0)
        inter = -(log_prob.sum(dim=1) / positive.sum(dim=1)).mean()
        self._update(features.detach(), own)
        return intra + 0.5 * inter

    @torch.no_grad()
    def _update(self, features: torch.Tensor, own: torch.Tensor) -> None:
        proxies, position = torch.unique(own, return_inverse=True)
        sums = torch.zeros(len(proxies), features.shape[1], device=features.device)
        sums.index_add_(0, position, features)
        self.entries = _move(self.entries, proxies, F.normalize(sums, dim=1), self.momentum)
