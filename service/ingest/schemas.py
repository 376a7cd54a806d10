"""Response bodies of the ingest endpoints."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


class SightingOut(BaseModel):
    """The outcome of one posted image."""

    sighting_id: int
    visitor_id: int
    new_visitor: bool
    similarity: float | None = Field(
        description="similarity to the matched visitor's best sighting; null if new"
    )
    captured_at: datetime


class SightingsOut(BaseModel):
    """The outcome of a batch of posted images, in upload order."""

    model: str
    sightings: list[SightingOut]
