"""Response bodies of person search."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel


class MatchOut(BaseModel):
    """One sighting similar to the query photo."""

    sighting_id: int
    visitor_id: int
    zone_id: int
    camera_id: int
    captured_at: datetime
    similarity: float


class LastSeenOut(BaseModel):
    """Where and when a matched visitor was last seen."""

    visitor_id: int
    zone_id: int
    zone_name: str
    camera_id: int
    captured_at: datetime
    best_similarity: float


class MatchesOut(BaseModel):
    """Ranked matches and, per visitor, their last sighting."""

    model: str
    matches: list[MatchOut]
    visitors: list[LastSeenOut]
