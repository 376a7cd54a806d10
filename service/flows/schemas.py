"""Response bodies of the flows endpoint."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


class ZoneFlowOut(BaseModel):
    """One zone's part in the store's visits."""

    zone_id: int
    name: str
    visits: int = Field(description="visits that reached the zone")
    first: int = Field(description="visits that began in the zone")
    last: int = Field(description="visits that ended in the zone")


class TransitionOut(BaseModel):
    """Moves from one zone to another within visits."""

    from_zone_id: int
    to_zone_id: int
    count: int
    median_transit_s: float = Field(
        description="median seconds from the last sighting in the zone left to the first in the zone entered"
    )


class FunnelOut(BaseModel):
    """The share of visits that reached the chosen zone."""

    zone_id: int
    name: str
    visits: int
    reached: int
    share: float


class FlowsOut(BaseModel):
    """Paths between zones within the store's visits over a window."""

    store_id: int
    start: datetime
    end: datetime
    visit_gap_s: float = Field(
        description="a visitor unseen this long has left: the next sighting starts a visit"
    )
    include_staff: bool
    visits: int
    visitors: int
    zones: list[ZoneFlowOut]
    transitions: list[TransitionOut] = Field(description="most frequent first")
    funnel: FunnelOut | None = Field(description="present when zone_id was given")
