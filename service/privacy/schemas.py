"""Response bodies of the privacy endpoints."""

from __future__ import annotations

from pydantic import BaseModel


class VisitorDeleted(BaseModel):
    """What a visitor erasure removed."""

    visitor_id: int
    sightings_deleted: int
