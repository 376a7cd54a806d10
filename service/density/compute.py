"""Customer density per zone and time bucket (SQLite and PostgreSQL; the SQL and the sweep are in
``figures.py``).

A visitor's *visit* to a zone is a run of their sightings there whose consecutive gaps are below the
density gap; they count as present from the first to the last sighting of the visit. Per bucket:
distinct visitors and sightings seen in it, entries (visits starting in it) and their mean dwell,
and occupancy: the mean (time-weighted) and the maximum number of visitors present. Staff are left
out unless ``include_staff``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.common.errors import InvalidInputError, LimitExceededError
from service.common.timeparse import from_ms, to_ms
from service.density.figures import Figures, Scope, Span, bucket_figures
from service.storage.models import Zone

DAY_S = 86400
MIN_BUCKET_S = 1.0


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
    """Buckets aligned to the store's local clock (whole days to local midnights), clipped to the window.

    ``start`` and ``end`` lie within the range ``parse_timestamp`` accepts; the bucket may be as long as
    any finite number of seconds (a bucket longer than the window gives one or two buckets). The count is
    checked before any edge is made, and no edge beyond the window's last local day is computed, so
    neither a tiny nor a huge bucket costs time or overflows the calendar.
    """
    if not bucket_s >= MIN_BUCKET_S or not math.isfinite(bucket_s):
        raise InvalidInputError(f"bucket: must be a finite number of seconds, at least {MIN_BUCKET_S:g}")
    lo, hi = to_ms(start), to_ms(end)
    if bucket_s % DAY_S == 0:
        days = int(bucket_s // DAY_S)
        first_day = start.astimezone(tz).date()
        span = (end.astimezone(tz).date() - first_day).days + 1
        count = -(-span // days)
        if count > max_buckets:
            raise TooManyBucketsError(f"{count} buckets requested; the limit is {max_buckets}")
        # The edge after the last is local midnight after the window's last day, beyond ``end``: the
        # window's end stands for it (every bucket is clipped to the window anyway).
        edges = [_local_midnight(first_day + timedelta(days=days * k), tz) for k in range(count)] + [hi]
    else:
        step = int(round(bucket_s * 1000))
        offset = int(start.astimezone(tz).utcoffset().total_seconds() * 1000)
        first = (lo + offset) // step * step - offset
        count = -(-(hi - first) // step)
        if count > max_buckets:
            raise TooManyBucketsError(f"{count} buckets requested; the limit is {max_buckets}")
        edges = [first + step * k for k in range(count + 1)]
    buckets = []
    for left, right in zip(edges, edges[1:], strict=False):
        if right > lo and left < hi:
            buckets.append(Bucket(len(buckets), max(left, lo), min(right, hi)))
    return buckets


def _local_midnight(day: date, tz: ZoneInfo) -> int:
    return to_ms(datetime.combine(day, time(0), tzinfo=tz))


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
    include_staff: bool = False,
) -> list[ZoneDensity]:
    """Density per zone of a store over ``[start, end)`` in buckets of ``bucket_s`` seconds."""
    buckets = bucket_edges(start, end, bucket_s, tz, max_buckets)
    lo, hi, gap_ms = to_ms(start), to_ms(end), int(round(gap_s * 1000))
    zones = store_zones(session, store_id, buckets, zone_id)
    if not buckets or not zones:
        return list(zones.values())
    scope = Scope(store_id, zone_id, include_staff)
    spans = [Span(b.start_ms, b.end_ms) for b in buckets]
    figures, unique = bucket_figures(session, scope, list(zones), spans, gap_ms)
    for zone in zones.values():
        fill(zone, figures[zone.zone_id])
        zone.totals = _totals(zone, buckets, unique.get(zone.zone_id, 0), hi - lo)
    return list(zones.values())


def store_zones(
    session: Session, store_id: int, buckets: list[Bucket], zone_id: int | None = None
) -> dict[int, ZoneDensity]:
    """The store's zones (or the one asked for), each with empty buckets."""
    query = select(Zone.id, Zone.name).where(Zone.store_id == store_id).order_by(Zone.id)
    if zone_id is not None:
        query = query.where(Zone.id == zone_id)
    return {
        z.id: ZoneDensity(z.id, z.name, [ZoneBucket(from_ms(b.start_ms), from_ms(b.end_ms)) for b in buckets])
        for z in session.execute(query)
    }


def fill(zone: ZoneDensity, figures: list[Figures]) -> None:
    """Copy a zone's figures into its buckets."""
    for cell, figure in zip(zone.buckets, figures, strict=True):
        cell.sightings, cell.unique_visitors = figure.sightings, figure.unique_visitors
        cell.entries = figure.entries
        cell.mean_dwell_s = figure.dwell_ms / figure.entries / 1000.0 if figure.entries else None
        window = (cell.end - cell.start).total_seconds() * 1000.0
        cell.occupancy_mean = figure.present_ms / window if window else 0.0
        cell.occupancy_max = figure.occupancy_max


def _totals(zone: ZoneDensity, buckets: list[Bucket], unique: int, window_ms: int) -> ZoneTotals:
    entries = sum(b.entries for b in zone.buckets)
    dwell = sum((b.mean_dwell_s or 0.0) * b.entries for b in zone.buckets)
    present = sum(
        c.occupancy_mean * (b.end_ms - b.start_ms) for c, b in zip(zone.buckets, buckets, strict=True)
    )
    return ZoneTotals(
        unique_visitors=unique,
        sightings=sum(b.sightings for b in zone.buckets),
        entries=entries,
        mean_dwell_s=dwell / entries if entries else None,
        occupancy_mean=present / window_ms if window_ms else 0.0,
        occupancy_max=max((b.occupancy_max for b in zone.buckets), default=0),
    )
