"""Where one person can be: never on two cameras that do not overlap at once, nor faster than a walk.

Two sightings of one visitor on different cameras must lie at least the zones' transit time apart,
unless the cameras are marked as overlapping. On one camera, two different tracks at the same time
are two people.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from service.storage.models import CameraOverlap, ZoneTransit

MS_PER_HOUR = 3_600_000.0


@dataclass(frozen=True)
class Span:
    """Where and when a person was seen: a camera (and its zone), a track if any, a time range (ms)."""

    camera_id: int
    zone_id: int
    track_id: str | None
    start_ms: int
    end_ms: int


@dataclass(frozen=True)
class PlaceRules:
    """Overlapping camera pairs and least transit times between zones (both directions)."""

    overlapping: frozenset[tuple[int, int]]
    transit_s: dict[tuple[int, int], float]
    default_transit_s: float

    def least_gap_ms(self, first: Span, second: Span) -> float | None:
        """The least time between one person's sightings on the two spans' cameras; None: no limit."""
        if first.camera_id == second.camera_id or (first.camera_id, second.camera_id) in self.overlapping:
            return None
        seconds = self.transit_s.get((first.zone_id, second.zone_id), self.default_transit_s)
        return seconds * 1000.0

    def conflict(self, first: Span, second: Span) -> bool:
        """Whether one person cannot have made both spans."""
        apart = max(0, max(first.start_ms, second.start_ms) - min(first.end_ms, second.end_ms))
        if first.camera_id == second.camera_id:
            tracked = first.track_id is not None and second.track_id is not None
            return tracked and first.track_id != second.track_id and apart == 0
        least = self.least_gap_ms(first, second)
        return least is not None and (apart < least or apart == 0)

    def conflicts_any(self, span: Span, others: Iterable[Span]) -> bool:
        """Whether ``span`` conflicts with any of ``others``."""
        return any(self.conflict(span, other) for other in others)

    def conflict_matrix(self, spans: Sequence[Span]) -> np.ndarray:
        """Symmetric boolean matrix of pairwise conflicts."""
        count = len(spans)
        matrix = np.zeros((count, count), dtype=bool)
        order = sorted(range(count), key=lambda i: spans[i].start_ms)
        horizon = max([*self.transit_s.values(), self.default_transit_s]) * 1000.0
        for position, i in enumerate(order):
            for j in order[position + 1 :]:
                if spans[j].start_ms - spans[i].end_ms > horizon:
                    break
                if self.conflict(spans[i], spans[j]):
                    matrix[i, j] = matrix[j, i] = True
        return matrix


def hours_apart(first: Span, second: Span) -> float:
    """Hours between two spans (0 when they overlap)."""
    apart = max(0, max(first.start_ms, second.start_ms) - min(first.end_ms, second.end_ms))
    return apart / MS_PER_HOUR


def hours_apart_matrix(spans: Sequence[Span]) -> np.ndarray:
    """Pairwise hours between spans (0 where they overlap)."""
    start = np.array([s.start_ms for s in spans], dtype=np.float64)
    end = np.array([s.end_ms for s in spans], dtype=np.float64)
    return np.maximum(0.0, np.maximum.outer(start, start) - np.minimum.outer(end, end)) / MS_PER_HOUR


def load_place_rules(session: Session, store_id: int, default_transit_s: float) -> PlaceRules:
    """The store's overlapping cameras and zone transit times, read from SQL."""
    overlaps = session.execute(
        select(CameraOverlap.camera_id, CameraOverlap.other_camera_id).where(
            CameraOverlap.store_id == store_id
        )
    ).all()
    transits = session.execute(
        select(ZoneTransit.zone_id, ZoneTransit.other_zone_id, ZoneTransit.min_seconds).where(
            ZoneTransit.store_id == store_id
        )
    ).all()
    pairs = {(a, b) for a, b in overlaps} | {(b, a) for a, b in overlaps}
    times = {(a, b): s for a, b, s in transits} | {(b, a): s for a, b, s in transits}
    return PlaceRules(frozenset(pairs), times, default_transit_s)
