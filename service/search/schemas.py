"""Response bodies of person search."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


class MatchOut(BaseModel):
    """One sighting similar to the query photo."""

    sighting_id: int
    visitor_id: int
    zone_id: int
    camera_id: int
    camera_name: str
    captured_at: datetime
    similarity: float
    track_id: str | None = Field(None, description="the camera tracker's id the crop was sent with, if any")


class LastSeenOut(BaseModel):
    """Where and when a matched visitor was last seen."""

    visitor_id: int
    zone_id: int
    zone_name: str
    camera_id: int
    camera_name: str
    captured_at: datetime
    best_similarity: float


class MatchesOut(BaseModel):
    """Ranked matches and, per visitor, their last sighting."""

    model: str
    matches: list[MatchOut]
    visitors: list[LastSeenOut]
    other_model_sightings: int = Field(
        0,
        description="sightings in the searched time range and zone embedded by another model version: "
        "no search finds them until they are re-embedded (README: Changing the model)",
    )
