"""Zone-to-zone flows within visits to the store, in one SQL pass and a walk over its boundary rows.

A *store visit* is a run of one visitor's sightings (any zone) less than the store visit gap apart;
visits are cut at the window's edges. Within a visit, each change of zone between two consecutive
sightings is a transition, timed from the last sighting in the zone left to the first in the zone
entered. SQL orders each visitor's sightings once and returns only the rows where a visit starts or
ends or the zone changes (the first row of every stay in a zone); the counts, medians, first and last
zones and the zones each visit reached come from those.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np
from sqlalchemy import case, func, or_, select
from sqlalchemy.orm import Session

from service.storage.counting import counted_sightings
from service.storage.models import Sighting, Zone


@dataclass(frozen=True)
class Transition:
    """Moves from one zone to another within visits: how many, and the median time between them."""

    from_zone_id: int
    to_zone_id: int
    count: int
    median_transit_s: float


@dataclass
class ZoneFlow:
    """One zone's part in the visits: how many reached it, began in it and ended in it."""

    zone_id: int
    name: str
    visits: int = 0
    first: int = 0
    last: int = 0


@dataclass(frozen=True)
class Funnel:
    """The share of visits that reached a chosen zone."""

    zone_id: int
    name: str
    visits: int
    reached: int
    share: float


@dataclass
class Flows:
    """Flows of one store over a window."""

    visits: int = 0
    visitors: int = 0
    zones: list[ZoneFlow] = field(default_factory=list)
    transitions: list[Transition] = field(default_factory=list)
    funnel: Funnel | None = None


def _boundary_rows(session: Session, store_id: int, lo: int, hi: int, gap_ms: int, include_staff: bool):
    order = (Sighting.captured_ms, Sighting.zone_id)
    ordered = (
        select(
            Sighting.visitor_id,
            Sighting.zone_id,
            Sighting.captured_ms.label("ms"),
            func.lag(Sighting.captured_ms)
            .over(partition_by=Sighting.visitor_id, order_by=order)
            .label("prev_ms"),
            func.lag(Sighting.zone_id)
            .over(partition_by=Sighting.visitor_id, order_by=order)
            .label("prev_zone"),
            func.lead(Sighting.captured_ms)
            .over(partition_by=Sighting.visitor_id, order_by=order)
            .label("next_ms"),
        )
        .where(
            *counted_sightings(store_id, include_staff), Sighting.captured_ms >= lo, Sighting.captured_ms < hi
        )
        .subquery("ordered")
    )
    starts = or_(ordered.c.prev_ms.is_(None), ordered.c.ms - ordered.c.prev_ms >= gap_ms)
    ends = or_(ordered.c.next_ms.is_(None), ordered.c.next_ms - ordered.c.ms >= gap_ms)
    moved = ordered.c.zone_id != ordered.c.prev_zone
    return session.execute(
        select(
            ordered.c.visitor_id,
            ordered.c.zone_id,
            ordered.c.ms,
            ordered.c.prev_zone,
            ordered.c.prev_ms,
            case((starts, 1), else_=0),
            case((ends, 1), else_=0),
        )
        .where(or_(starts, ends, moved))
        .order_by(ordered.c.visitor_id, ordered.c.ms, ordered.c.zone_id)
    ).all()


def compute_flows(
    session: Session,
    store_id: int,
    lo: int,
    hi: int,
    gap_ms: int,
    funnel_zone: int | None = None,
    include_staff: bool = False,
) -> Flows:
    """Flows of the store's visits over ``[lo, hi)`` (epoch ms)."""
    names = dict(
        session.execute(select(Zone.id, Zone.name).where(Zone.store_id == store_id).order_by(Zone.id)).all()
    )
    zones = {zone: ZoneFlow(zone, name) for zone, name in names.items()}
    times: dict[tuple[int, int], list[int]] = defaultdict(list)
    visitors: set[int] = set()
    visits = 0
    reached: set[int] = set()
    for visitor, zone, ms, prev_zone, prev_ms, is_start, is_end in _boundary_rows(
        session, store_id, lo, hi, gap_ms, include_staff
    ):
        if is_start:
            visits += 1
            visitors.add(visitor)
            reached = set()
            zones[zone].first += 1
        elif zone != prev_zone:
            times[(prev_zone, zone)].append(ms - prev_ms)
        if zone not in reached:
            reached.add(zone)
            zones[zone].visits += 1
        if is_end:
            zones[zone].last += 1
    transitions = [
        Transition(a, b, len(spans), float(np.median(spans)) / 1000.0)
        for (a, b), spans in sorted(times.items(), key=lambda item: (-len(item[1]), item[0]))
    ]
    funnel = None
    if funnel_zone is not None:
        hit = zones[funnel_zone].visits
        funnel = Funnel(funnel_zone, names[funnel_zone], visits, hit, hit / visits if visits else 0.0)
    return Flows(visits, len(visitors), list(zones.values()), transitions, funnel)
