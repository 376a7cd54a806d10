"""Response bodies of the occupancy endpoints (the stream's events carry ``OccupancyOut``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

EVENT_NAME = "occupancy"


class ZoneOccupancyOut(BaseModel):
    """Visitors present in one zone now."""

    zone_id: int
    name: str
    present: int


class OccupancyOut(BaseModel):
    """Visitors present per zone: each visitor seen within REID_DENSITY_GAP_S, in the zone of their
    latest sighting."""

    store_id: int
    at: datetime = Field(description="the server time the figures are for")
    seq: int = Field(description="the store's change counter they were read at (also the event id)")
    total: int
    include_staff: bool
    zones: list[ZoneOccupancyOut]


def stream_responses() -> dict[int | str, dict[str, Any]]:
    """The OpenAPI answer of the live stream: ``text/event-stream`` whose ``schema`` describes one event
    (OpenAPI 3.1 has no ``itemSchema``; tools read an event stream's schema per event), its ``data`` a
    JSON ``OccupancyOut``. Comments (the heartbeat) and the opening ``retry`` carry no event."""
    event = {
        "type": "object",
        "required": ["event", "data"],
        "properties": {
            "event": {"type": "string", "enum": [EVENT_NAME]},
            "data": {
                "type": "string",
                "contentMediaType": "application/json",
                "contentSchema": {"$ref": "#/components/schemas/OccupancyOut"},
            },
            "id": {"type": "string", "description": "the store's change counter (seq)"},
            "retry": {"type": "integer", "minimum": 0},
        },
    }
    description = (
        "text/event-stream: `retry`, then an `occupancy` event (data: OccupancyOut as JSON, id: the "
        "store's change counter) now and at every change, a `: heartbeat` comment when idle"
    )
    return {200: {"description": description, "content": {"text/event-stream": {"schema": event}}}}
