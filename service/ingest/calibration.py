"""Calibrating the linking threshold on a store's labelled sample (``ROOT/<person>/<camera>_<n>.jpg``).

Every crop is embedded with the service's model and clustered the way re-linking clusters (average
linkage on mean crop similarity); the threshold that maximises pairwise F1 against the sample's
people is the one to use. Without capture times the place rules cannot help here, so the estimate is
conservative: in the store they only refuse wrong links.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from model import Embedder
from model.layouts import FolderImage, LayoutError, scan_person_folders
from service.common.errors import InvalidInputError
from service.ingest.clustering import cut_tree, linkage_tree

EMBED_BATCH = 32
DEFAULT_THRESHOLDS = tuple(round(t, 3) for t in np.arange(0.05, 0.951, 0.025))


@dataclass(frozen=True)
class CurvePoint:
    """Pairwise precision, recall and F1 of the clustering at one threshold, and how many clusters."""

    threshold: float
    precision: float
    recall: float
    f1: float
    clusters: int


@dataclass(frozen=True)
class Calibration:
    """The sample's size, the whole curve and its best point."""

    crops: int
    people: int
    curve: list[CurvePoint]

    @property
    def best(self) -> CurvePoint:
        """The point with the highest F1 (the higher threshold on a tie)."""
        return max(self.curve, key=lambda point: (point.f1, point.threshold))


def _pairs(counts: Sequence[int] | np.ndarray) -> int:
    values = np.asarray(counts, dtype=np.int64)
    return int((values * (values - 1) // 2).sum())


def pairwise_scores(labels: Sequence[int], people: Sequence[str]) -> tuple[float, float, float]:
    """Pairwise precision, recall and F1 of predicted clusters against true people."""
    together = Counter(zip(labels, people, strict=True))
    true_pairs = _pairs(list(together.values()))
    predicted = _pairs(list(Counter(labels).values()))
    actual = _pairs(list(Counter(people).values()))
    precision = true_pairs / predicted if predicted else 1.0
    recall = true_pairs / actual if actual else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def read_sample(root: Path) -> list[FolderImage]:
    """The labelled crops of a sample folder; at least two people with two crops each."""
    if not Path(root).is_dir():
        raise InvalidInputError(f"{root}: not a folder")
    try:
        images = scan_person_folders(Path(root))
    except LayoutError as exc:
        raise InvalidInputError(str(exc)) from exc
    people = Counter(image.person for image in images)
    if sum(1 for count in people.values() if count >= 2) < 2:
        raise InvalidInputError(
            f"{root}: need at least two people with two crops each in ROOT/<person>/<camera>_<n>.jpg"
        )
    return images


def embed_sample(embedder: Embedder, images: Sequence[FolderImage], progress: bool = True) -> np.ndarray:
    """Embeddings of the sample's crops, in batches, with a progress bar."""
    parts = []
    for start in tqdm(
        range(0, len(images), EMBED_BATCH), desc="embedding", unit="batch", disable=not progress
    ):
        parts.append(embedder.embed([image.path for image in images[start : start + EMBED_BATCH]]))
    return np.concatenate(parts)


def sweep(
    embeddings: np.ndarray, people: Sequence[str], thresholds: Sequence[float] = DEFAULT_THRESHOLDS
) -> Calibration:
    """Cluster once and cut the tree at every threshold."""
    tree = linkage_tree(embeddings, np.ones(len(embeddings)))
    curve = []
    for threshold in thresholds:
        labels = cut_tree(tree, float(threshold))
        precision, recall, f1 = pairwise_scores(labels.tolist(), people)
        curve.append(CurvePoint(float(threshold), precision, recall, f1, int(labels.max()) + 1))
    return Calibration(len(people), len(set(people)), curve)


def plot_curve(calibration: Calibration, path: Path) -> Path:
    """Draw precision and recall against the threshold, and the precision/recall curve, to a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    thresholds = [p.threshold for p in calibration.curve]
    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    for name in ("precision", "recall", "f1"):
        left.plot(thresholds, [getattr(p, name) for p in calibration.curve], label=name)
    best = calibration.best
    left.axvline(best.threshold, color="grey", linestyle="--", label=f"best {best.threshold:.3f}")
    left.set(xlabel="linking threshold (mean crop similarity)", ylabel="pairwise score", ylim=(0, 1.02))
    left.legend()
    right.plot([p.recall for p in calibration.curve], [p.precision for p in calibration.curve], marker=".")
    right.scatter([best.recall], [best.precision], color="red", zorder=3, label=f"F1 {best.f1:.3f}")
    right.set(xlabel="recall", ylabel="precision", xlim=(0, 1.02), ylim=(0, 1.02))
    right.legend()
    figure.suptitle(f"{calibration.crops} crops of {calibration.people} people")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path
