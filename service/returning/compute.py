"""Returning shoppers per local day, by appearance across days.

Visitors are linked within hours (the visitor window), so a shopper who comes back another day is a new
visitor. For each visitor of a day (staff left out), the mean of their crops that day is searched in the
store's index among the sightings of earlier days still kept (retention); each candidate visitor found
at or above the store's linking threshold is compared as linking does (the mean similarity of the two
visitors' crops), and the visitor counts as returning when one reaches the threshold. No link is stored:
the figures are computed per request, and only counts leave the service.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from service.common.timeparse import from_ms
from service.storage.counting import counted_sightings
from service.storage.models import Sighting
from service.storage.staff import vector
from service.vectors.base import VectorFilter
from service.vectors.sync import IndexSync

CANDIDATES = 16
CROPS_PER_VISITOR = 64
CHUNK = 500


@dataclass(frozen=True)
class ReturningDay:
    """One local day: its visitors and how many of them were seen on an earlier day."""

    day: date
    start_ms: int
    end_ms: int
    visitors: int
    returning: int

    @property
    def start(self) -> datetime:
        """The day's start (clipped to the window)."""
        return from_ms(self.start_ms)

    @property
    def end(self) -> datetime:
        """The day's end (clipped to the window)."""
        return from_ms(self.end_ms)

    @property
    def share(self) -> float:
        """Returning visitors over visitors."""
        return self.returning / self.visitors if self.visitors else 0.0


@dataclass(frozen=True)
class Matching:
    """How visitors are compared: the index, the model, the threshold and the oldest sighting kept."""

    sync: IndexSync
    model_version: str
    threshold: float
    kept_from_ms: int


def _means(
    session: Session, store_id: int, visitor_ids: list[int], lo: int, hi: int, model: str
) -> dict[int, np.ndarray]:
    """Each visitor's mean crop over ``[lo, hi)`` (their most recent crops there, current model)."""
    crops: dict[int, list[np.ndarray]] = defaultdict(list)
    for start in range(0, len(visitor_ids), CHUNK):
        rows = session.execute(
            select(Sighting.visitor_id, Sighting.embedding)
            .where(
                Sighting.store_id == store_id,
                Sighting.visitor_id.in_(visitor_ids[start : start + CHUNK]),
                Sighting.model_version == model,
                Sighting.captured_ms >= lo,
                Sighting.captured_ms < hi,
            )
            .order_by(Sighting.visitor_id, Sighting.captured_ms.desc())
        )
        for visitor, blob in rows:
            if len(crops[visitor]) < CROPS_PER_VISITOR:
                crops[visitor].append(vector(blob))
    return {visitor: np.mean(vectors, axis=0) for visitor, vectors in crops.items()}


def returning_day(session: Session, store_id: int, lo: int, hi: int, matching: Matching) -> tuple[int, int]:
    """(visitors, returning) of the day ``[lo, hi)``."""
    counted = counted_sightings(store_id)
    visitors = sorted(
        session.scalars(
            select(Sighting.visitor_id)
            .where(*counted, Sighting.captured_ms >= lo, Sighting.captured_ms < hi)
            .distinct()
        ).all()
    )
    if not visitors or lo <= matching.kept_from_ms:
        return len(visitors), 0
    today = _means(session, store_id, visitors, lo, hi, matching.model_version)
    if not today:
        return len(visitors), 0
    order = sorted(today)
    queries = np.stack([today[v] for v in order]).astype(np.float32)
    where = VectorFilter(store_id, min_ms=matching.kept_from_ms, max_ms=lo)
    hits = matching.sync.search(store_id, queries, CANDIDATES, where)
    wanted = {h.sighting_id for found in hits for h in found if h.similarity >= matching.threshold}
    if not wanted:
        return len(visitors), 0
    owners = dict(
        session.execute(
            select(Sighting.id, Sighting.visitor_id).where(*counted, Sighting.id.in_(sorted(wanted)))
        ).all()
    )
    candidates = {
        visitor: {owners[h.sighting_id] for h in found if h.sighting_id in owners} - {visitor}
        for visitor, found in zip(order, hits, strict=True)
    }
    earlier_ids = sorted(set().union(*candidates.values()))
    earlier = _means(session, store_id, earlier_ids, matching.kept_from_ms, lo, matching.model_version)
    returning = sum(
        any(c in earlier and float(today[v] @ earlier[c]) >= matching.threshold for c in found)
        for v, found in candidates.items()
    )
    return len(visitors), returning
