"""Who is in the store now: each visitor seen within the presence gap, in the zone of their latest
sighting (a visitor counts as present until the density gap has passed since they were last seen)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.common.timeparse import from_ms
from service.storage.counting import counted_sightings
from service.storage.models import Sighting, Store, Zone


@dataclass(frozen=True)
class ZoneOccupancy:
    """Visitors present in one zone now."""

    zone_id: int
    name: str
    present: int


@dataclass(frozen=True)
class Occupancy:
    """Visitors present per zone at one moment, and the store's change counter it was read at."""

    store_id: int
    at: datetime
    seq: int
    total: int
    zones: list[ZoneOccupancy]
    include_staff: bool
    next_change_ms: int | None  # when the first visitor present now stops counting, unless seen again

    @property
    def counts(self) -> tuple[tuple[int, int], ...]:
        """What an update is about: the zones and their counts."""
        return tuple((z.zone_id, z.present) for z in self.zones)


def current_occupancy(
    session: Session, store_id: int, now_ms: int, gap_ms: int, include_staff: bool = False
) -> Occupancy:
    """Occupancy of every zone of the store at ``now_ms``."""
    seq = session.scalar(select(Store.ingest_seq).where(Store.id == store_id)) or 0
    names = dict(
        session.execute(select(Zone.id, Zone.name).where(Zone.store_id == store_id).order_by(Zone.id)).all()
    )
    rows = session.execute(
        select(Sighting.visitor_id, Sighting.zone_id, Sighting.captured_ms, Sighting.id).where(
            *counted_sightings(store_id, include_staff), Sighting.captured_ms > now_ms - gap_ms
        )
    )
    latest: dict[int, tuple[int, int, int]] = {}
    for visitor, zone, ms, sighting in rows:
        if visitor not in latest or (ms, sighting) > latest[visitor][:2]:
            latest[visitor] = (ms, sighting, zone)
    present = dict.fromkeys(names, 0)
    for _, _, zone in latest.values():
        if zone in present:
            present[zone] += 1
    expiry = min((ms + gap_ms for ms, _, _ in latest.values()), default=None)
    zones = [ZoneOccupancy(zone, names[zone], count) for zone, count in present.items()]
    return Occupancy(store_id, from_ms(now_ms), int(seq), sum(present.values()), zones, include_staff, expiry)
