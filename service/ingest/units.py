"""Link units: the crops that are one person before any model is asked (a camera track), or one crop alone.

A tracker's id is scoped to its camera and to a stretch of time: crops of one camera with the same
``track_id`` belong together while consecutive crops are less than the track gap apart; a longer gap
starts a new track (trackers reuse their ids).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np


@dataclass
class Unit:
    """Crops linked as a whole: where and when they were seen and the sum of their embeddings."""

    camera_id: int
    zone_id: int
    track_id: str | None
    start_ms: int
    end_ms: int
    total: np.ndarray
    members: list[int] = field(default_factory=list)

    @property
    def count(self) -> int:
        """Number of crops."""
        return len(self.members)

    @property
    def mean(self) -> np.ndarray:
        """The L2-normalised mean embedding."""
        norm = float(np.linalg.norm(self.total))
        return self.total / norm if norm > 0 else self.total

    def add(self, member: int, embedding: np.ndarray, ms: int) -> None:
        """Extend the unit by one crop."""
        self.members.append(member)
        self.total = self.total + embedding
        self.start_ms, self.end_ms = min(self.start_ms, ms), max(self.end_ms, ms)


@dataclass(frozen=True)
class Crops:
    """Crops to group, one entry per crop in parallel sequences."""

    embeddings: np.ndarray
    captured_ms: Sequence[int]
    camera_ids: Sequence[int]
    zone_ids: Sequence[int]
    track_ids: Sequence[str | None]


def group_units(crops: Crops, track_gap_ms: int) -> list[Unit]:
    """Tracked crops grouped per camera track (split at gaps over ``track_gap_ms``), others one by one.

    Units come back ordered by their first crop's time; ``members`` are positions in ``crops``.
    """
    order = sorted(range(len(crops.captured_ms)), key=lambda i: (crops.captured_ms[i], i))
    open_tracks: dict[tuple[int, str], Unit] = {}
    units: list[Unit] = []
    for i in order:
        embedding = np.asarray(crops.embeddings[i], dtype=np.float32)
        ms, camera, track = int(crops.captured_ms[i]), int(crops.camera_ids[i]), crops.track_ids[i]
        key = (camera, track) if track is not None else None
        current = open_tracks.get(key) if key is not None else None
        if current is not None and ms - current.end_ms <= track_gap_ms:
            current.add(i, embedding, ms)
            continue
        unit = Unit(camera, int(crops.zone_ids[i]), track, ms, ms, np.zeros_like(embedding))
        unit.add(i, embedding, ms)
        units.append(unit)
        if key is not None:
            open_tracks[key] = unit
    return units
