"""Customer density per zone and time bucket, computed in portable SQL (SQLite and PostgreSQL).

A visitor's *visit* to a zone is a run of their sightings there whose consecutive gaps are below the
density gap; they count as present from the first to the last sighting of the visit. Per bucket:
distinct visitors and sightings seen in it, entries (visits starting in it) and their mean dwell,
and occupancy: the mean (time-weighted) and the maximum number of visitors present.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import BigInteger, and_, case, func, literal, or_, select, union, union_all
from sqlalchemy.orm import Session

from service.common.errors import LimitExceededError
from service.common.timeparse import from_ms, to_ms
from service.storage.models import Sighting, Zone

DAY_S = 86400


class TooManyBucketsError(LimitExceededError):
    """The requested window holds more buckets than allowed."""


@dataclass(frozen=True)
class Bucket:
    """One time bucket, clipped to the requested window (epoch ms, half-open)."""

    index: int
    start_ms: int
    end_ms: int


@dataclass
class ZoneBucket:
    """Density figures of one zone in one bucket."""

    start: datetime
    end: datetime
    unique_visitors: int = 0
    sightings: int = 0
    entries: int = 0
    mean_dwell_s: float | None = None
    occupancy_mean: float = 0.0
    occupancy_max: int = 0


@dataclass(frozen=True)
class ZoneTotals:
    """Density figures of one zone over the whole window (unique visitors are not a sum over buckets)."""

    unique_visitors: int = 0
    sightings: int = 0
    entries: int = 0
    mean_dwell_s: float | None = None
    occupancy_mean: float = 0.0
    occupancy_max: int = 0


@dataclass
class ZoneDensity:
    """A zone's buckets and its totals over the whole window."""

    zone_id: int
    name: str
    buckets: list[ZoneBucket] = field(default_factory=list)
    totals: ZoneTotals = field(default_factory=ZoneTotals)


def bucket_edges(
    start: datetime, end: datetime, bucket_s: float, tz: ZoneInfo, max_buckets: int
) -> list[Bucket]:
    """Buckets aligned to the store's local clock (whole days to local midnights), clipped to the window."""
    if bucket_s % DAY_S == 0:
        days = int(bucket_s // DAY_S)
        first_day = start.astimezone(tz).date()
        span = (end.astimezone(tz).date() - first_day).days + 1
        if math.ceil(span / days) > max_buckets:
            raise TooManyBucketsError(
                f"{math.ceil(span / days)} buckets requested; the limit is {max_buckets}"
            )
        edges = [
            _local_midnight(first_day + timedelta(days=days * k), tz)
            for k in range(math.ceil(span / days) + 1)
        ]
    else:
        step = int(round(bucket_s * 1000))
        offset = int(start.astimezone(tz).utcoffset().total_seconds() * 1000)
        first = (to_ms(start) + offset) // step * step - offset
        count = math.ceil((to_ms(end) - first) / step)
        if count > max_buckets:
            raise TooManyBucketsError(f"{count} buckets requested; the limit is {max_buckets}")
        edges = [first + step * k for k in range(count + 1)]
    lo, hi = to_ms(start), to_ms(end)
    buckets = []
    for left, right in zip(edges, edges[1:], strict=False):
        if right > lo and left < hi:
            buckets.append(Bucket(len(buckets), max(left, lo), min(right, hi)))
    return buckets


def _local_midnight(day: date, tz: ZoneInfo) -> int:
    return to_ms(datetime.combine(day, time(0), tzinfo=tz))


def _buckets_cte(buckets: list[Bucket]):
    rows = [
        select(
            literal(b.index, BigInteger).label("idx"),
            literal(b.start_ms, BigInteger).label("b0"),
            literal(b.end_ms, BigInteger).label("b1"),
        )
        for b in buckets
    ]
    return (union_all(*rows) if len(rows) > 1 else rows[0]).cte("buckets")


def _visits_cte(store_id: int, lo: int, hi: int, gap_ms: int, zone_id: int | None):
    where = [
        Sighting.store_id == store_id,
        Sighting.captured_ms >= lo - gap_ms,
        Sighting.captured_ms < hi + gap_ms,
    ]
    if zone_id is not None:
        where.append(Sighting.zone_id == zone_id)
    person = (Sighting.zone_id, Sighting.visitor_id)
    ordered = (
        select(
            Sighting.zone_id,
            Sighting.visitor_id,
            Sighting.captured_ms.label("ms"),
            Sighting.id.label("sid"),
            func.lag(Sighting.captured_ms)
            .over(partition_by=person, order_by=(Sighting.captured_ms, Sighting.id))
            .label("prev"),
        )
        .where(*where)
        .cte("ordered")
    )
    new_visit = case((or_(ordered.c.prev.is_(None), ordered.c.ms - ordered.c.prev >= gap_ms), 1), else_=0)
    numbered = select(
        ordered.c.zone_id,
        ordered.c.visitor_id,
        ordered.c.ms,
        func.sum(new_visit)
        .over(
            partition_by=(ordered.c.zone_id, ordered.c.visitor_id),
            order_by=(ordered.c.ms, ordered.c.sid),
            rows=(None, 0),
        )
        .label("visit"),
    ).cte("numbered")
    return (
        select(
            numbered.c.zone_id,
            numbered.c.visitor_id,
            func.min(numbered.c.ms).label("vstart"),
            func.max(numbered.c.ms).label("vend"),
        )
        .group_by(numbered.c.zone_id, numbered.c.visitor_id, numbered.c.visit)
        .cte("visits")
    )


def _overlap(visits, buckets):
    right = case((visits.c.vend < buckets.c.b1, visits.c.vend), else_=buckets.c.b1)
    left = case((visits.c.vstart > buckets.c.b0, visits.c.vstart), else_=buckets.c.b0)
    return right - left


def _occupancy_max(session: Session, visits, buckets) -> dict[tuple[int, int], int]:
    at_start = select(buckets.c.idx, visits.c.zone_id, buckets.c.b0.label("p")).join_from(
        visits, buckets, and_(visits.c.vstart <= buckets.c.b0, visits.c.vend >= buckets.c.b0)
    )
    at_entry = select(buckets.c.idx, visits.c.zone_id, visits.c.vstart.label("p")).join_from(
        visits, buckets, and_(visits.c.vstart >= buckets.c.b0, visits.c.vstart < buckets.c.b1)
    )
    points = union(at_start, at_entry).subquery("points")
    present = (
        select(points.c.idx, points.c.zone_id, func.count().label("n"))
        .join_from(
            points,
            visits,
            and_(
                visits.c.zone_id == points.c.zone_id,
                visits.c.vstart <= points.c.p,
                visits.c.vend >= points.c.p,
            ),
        )
        .group_by(points.c.idx, points.c.zone_id, points.c.p)
        .subquery("present")
    )
    rows = session.execute(
        select(present.c.idx, present.c.zone_id, func.max(present.c.n)).group_by(
            present.c.idx, present.c.zone_id
        )
    )
    return {(int(i), int(z)): int(n) for i, z, n in rows}


def compute_density(
    session: Session,
    store_id: int,
    tz: ZoneInfo,
    start: datetime,
    end: datetime,
    bucket_s: float,
    gap_s: float,
    max_buckets: int,
    zone_id: int | None = None,
) -> list[ZoneDensity]:
    """Density per zone of a store over ``[start, end)`` in buckets of ``bucket_s`` seconds."""
    buckets = bucket_edges(start, end, bucket_s, tz, max_buckets)
    lo, hi, gap_ms = to_ms(start), to_ms(end), int(round(gap_s * 1000))
    zone_query = select(Zone.id, Zone.name).where(Zone.store_id == store_id).order_by(Zone.id)
    if zone_id is not None:
        zone_query = zone_query.where(Zone.id == zone_id)
    zones = {
        z.id: ZoneDensity(z.id, z.name, [ZoneBucket(from_ms(b.start_ms), from_ms(b.end_ms)) for b in buckets])
        for z in session.execute(zone_query)
    }
    if not buckets or not zones:
        return list(zones.values())
    table = _buckets_cte(buckets)
    visits = _visits_cte(store_id, lo, hi, gap_ms, zone_id)
    seen = [Sighting.store_id == store_id, Sighting.captured_ms >= lo, Sighting.captured_ms < hi]
    if zone_id is not None:
        seen.append(Sighting.zone_id == zone_id)

    counts = session.execute(
        select(table.c.idx, Sighting.zone_id, func.count(), func.count(func.distinct(Sighting.visitor_id)))
        .join_from(
            Sighting, table, and_(Sighting.captured_ms >= table.c.b0, Sighting.captured_ms < table.c.b1)
        )
        .where(*seen)
        .group_by(table.c.idx, Sighting.zone_id)
    )
    for idx, zone, sightings, unique in counts:
        cell = zones[zone].buckets[idx]
        cell.sightings, cell.unique_visitors = int(sightings), int(unique)

    entries = session.execute(
        select(table.c.idx, visits.c.zone_id, func.count(), func.avg(visits.c.vend - visits.c.vstart))
        .join_from(visits, table, and_(visits.c.vstart >= table.c.b0, visits.c.vstart < table.c.b1))
        .group_by(table.c.idx, visits.c.zone_id)
    )
    for idx, zone, count, dwell_ms in entries:
        cell = zones[zone].buckets[idx]
        cell.entries, cell.mean_dwell_s = int(count), float(dwell_ms) / 1000.0

    overlap = session.execute(
        select(table.c.idx, visits.c.zone_id, func.sum(_overlap(visits, table)))
        .join_from(visits, table, and_(visits.c.vstart < table.c.b1, visits.c.vend > table.c.b0))
        .group_by(table.c.idx, visits.c.zone_id)
    )
    for idx, zone, present_ms in overlap:
        bucket = buckets[idx]
        zones[zone].buckets[idx].occupancy_mean = float(present_ms) / (bucket.end_ms - bucket.start_ms)

    for (idx, zone), peak in _occupancy_max(session, visits, table).items():
        zones[zone].buckets[idx].occupancy_max = peak

    totals = session.execute(
        select(Sighting.zone_id, func.count(), func.count(func.distinct(Sighting.visitor_id)))
        .where(*seen)
        .group_by(Sighting.zone_id)
    )
    unique_totals = {zone: (int(s), int(u)) for zone, s, u in totals}
    for zone in zones.values():
        zone.totals = _totals(zone, buckets, unique_totals.get(zone.zone_id, (0, 0)), hi - lo)
    return list(zones.values())


def _totals(zone: ZoneDensity, buckets: list[Bucket], seen: tuple[int, int], window_ms: int) -> ZoneTotals:
    entries = sum(b.entries for b in zone.buckets)
    dwell = sum((b.mean_dwell_s or 0.0) * b.entries for b in zone.buckets)
    present = sum(
        c.occupancy_mean * (b.end_ms - b.start_ms) for c, b in zip(zone.buckets, buckets, strict=True)
    )
    return ZoneTotals(
        unique_visitors=seen[1],
        sightings=seen[0],
        entries=entries,
        mean_dwell_s=dwell / entries if entries else None,
        occupancy_mean=present / window_ms if window_ms else 0.0,
        occupancy_max=max((b.occupancy_max for b in zone.buckets), default=0),
    )
