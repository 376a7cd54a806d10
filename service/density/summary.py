"""The density summary: each zone's figures for a whole local day, kept in ``density_days``, so that a
month in days reads thirty rows per zone instead of every sighting.

A summary row is never trusted past a change: database triggers (migration 0005) write a mark in
``density_marks`` over the UTC days spanned by the visitors of every sighting inserted, deleted or moved
to another visitor, and of every visitor whose staff flag changes, whoever makes the change (ingest,
erasure, retention, re-linking). Before reading the summary, a request consumes the marks: it deletes
the rows they overlap (widened by each row's gap) and the marks whose version it read; a mark a writer
bumps meanwhile stays for the next request. Missing days are computed from the sightings, exactly as a
live request computes them (``figures.py``), and stored unless another request consumed marks in the
meantime (the store's epoch moved): a day computed before a change it did not see is never stored.

Unique visitors over several days are not a sum: each day also keeps the visitors it shares with other
days in the zone (``crossing``, rare: a visit across midnight), and the window's count is the days'
counts less those, plus the distinct ones among them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from service.common.timeparse import from_ms, to_ms
from service.density.compute import (
    Bucket,
    ZoneBucket,
    ZoneDensity,
    ZoneTotals,
    bucket_edges,
    fill,
    store_zones,
)
from service.density.figures import Figures, Scope, Span, bucket_figures, crossing_visitors
from service.storage.counting import for_reports
from service.storage.db import session_scope
from service.storage.models import DensityDay, DensityEpoch, DensityMark
from service.storage.summaries import drop_overlapping

DAY_S = 86400
DAY_MS = DAY_S * 1000


@dataclass(frozen=True)
class SummaryQuery:
    """One store's density in days: the window, the gap, staff or not, and how far back rows are kept."""

    store_id: int
    tz: ZoneInfo
    start: datetime
    end: datetime
    gap_ms: int
    max_buckets: int
    zone_id: int | None = None
    include_staff: bool = False
    keep_after_ms: int = 0


def _midnight_ms(day: date, tz: ZoneInfo) -> int:
    return to_ms(datetime.combine(day, time(0), tzinfo=tz))


def is_whole_day(bucket: Bucket, tz: ZoneInfo) -> bool:
    """Whether the bucket runs from one local midnight to the next (not clipped by the window)."""
    day = from_ms(bucket.start_ms).astimezone(tz).date()
    return bucket.start_ms == _midnight_ms(day, tz) and bucket.end_ms == _midnight_ms(
        day + timedelta(days=1), tz
    )


def consume_marks(sessions: sessionmaker[Session], store_id: int, keep_after_ms: int) -> int:
    """Drop the summary rows the store's marks overlap, and the marks; returns the store's epoch."""
    with sessions() as session:
        marks = session.execute(
            select(DensityMark.lo_day, DensityMark.hi_day, DensityMark.version).where(
                DensityMark.store_id == store_id
            )
        ).all()
        epoch = session.scalar(select(DensityEpoch.epoch).where(DensityEpoch.store_id == store_id))
    if epoch is None:
        epoch = _first_epoch(sessions, store_id)
    if not marks:
        return epoch
    with session_scope(sessions) as session:
        session.execute(  # serialises the store's consumers (row lock) and moves its epoch
            update(DensityEpoch).where(DensityEpoch.store_id == store_id).values(epoch=DensityEpoch.epoch + 1)
        )
        for lo_day, hi_day, version in marks:
            drop_overlapping(session, store_id, lo_day * DAY_MS, (hi_day + 1) * DAY_MS)
            session.execute(
                delete(DensityMark).where(
                    DensityMark.store_id == store_id,
                    DensityMark.lo_day == lo_day,
                    DensityMark.hi_day == hi_day,
                    DensityMark.version == version,
                )
            )
        session.execute(
            delete(DensityDay).where(DensityDay.store_id == store_id, DensityDay.end_ms < keep_after_ms)
        )
        return int(session.scalar(select(DensityEpoch.epoch).where(DensityEpoch.store_id == store_id)))


def _first_epoch(sessions: sessionmaker[Session], store_id: int) -> int:
    try:
        with session_scope(sessions) as session:
            session.add(DensityEpoch(store_id=store_id, epoch=0))
    except IntegrityError:
        pass  # another request made it first
    with sessions() as session:
        return int(session.scalar(select(DensityEpoch.epoch).where(DensityEpoch.store_id == store_id)))


def read_days(
    session: Session, query: SummaryQuery, days: list[Span], zone_ids: list[int]
) -> dict[Span, dict[int, Figures]]:
    """The summary rows of the given days that hold every zone."""
    if not days:
        return {}
    rows = session.scalars(
        select(DensityDay).where(
            DensityDay.store_id == query.store_id,
            DensityDay.gap_ms == query.gap_ms,
            DensityDay.include_staff == query.include_staff,
            DensityDay.start_ms.in_(sorted({d.start_ms for d in days})),
        )
    )
    found: dict[Span, dict[int, Figures]] = {}
    for row in rows:
        crossing = {int(v) for v in row.crossing.split(",") if v}
        figures = Figures(
            row.unique_visitors,
            row.sightings,
            row.entries,
            row.dwell_ms,
            row.present_ms,
            row.occupancy_max,
            crossing,
        )
        found.setdefault(Span(row.start_ms, row.end_ms), {})[row.zone_id] = figures
    wanted = set(zone_ids)
    return {day: zones for day, zones in found.items() if day in set(days) and wanted <= set(zones)}


def compute_day(
    session: Session, scope: Scope, zone_ids: list[int], day: Span, gap_ms: int
) -> dict[int, Figures]:
    """One day's figures per zone, with the visitors each zone shares with other days."""
    figures = {
        zone: cells[0] for zone, cells in bucket_figures(session, scope, zone_ids, [day], gap_ms)[0].items()
    }
    for zone, visitors in crossing_visitors(session, scope, day.start_ms, day.end_ms).items():
        if zone in figures:
            figures[zone].crossing = visitors
    return figures


def store_days(
    sessions: sessionmaker[Session], query: SummaryQuery, epoch: int, days: dict[Span, dict[int, Figures]]
) -> bool:
    """Keep the computed days unless the store's marks were consumed since ``epoch`` was read."""
    with session_scope(sessions) as session:
        current = session.execute(
            update(DensityEpoch)
            .where(DensityEpoch.store_id == query.store_id, DensityEpoch.epoch == epoch)
            .values(epoch=DensityEpoch.epoch)
        )
        if current.rowcount != 1:
            return False
        rows = []
        for day, zones in days.items():
            session.execute(
                delete(DensityDay).where(
                    DensityDay.store_id == query.store_id,
                    DensityDay.start_ms == day.start_ms,
                    DensityDay.end_ms == day.end_ms,
                    DensityDay.gap_ms == query.gap_ms,
                    DensityDay.include_staff == query.include_staff,
                )
            )
            rows.extend(
                {
                    "store_id": query.store_id,
                    "start_ms": day.start_ms,
                    "end_ms": day.end_ms,
                    "gap_ms": query.gap_ms,
                    "include_staff": query.include_staff,
                    "zone_id": zone,
                    "unique_visitors": f.unique_visitors,
                    "sightings": f.sightings,
                    "entries": f.entries,
                    "dwell_ms": f.dwell_ms,
                    "present_ms": f.present_ms,
                    "occupancy_max": f.occupancy_max,
                    "crossing": ",".join(str(v) for v in sorted(f.crossing)),
                }
                for zone, f in zones.items()
            )
        if rows:
            session.execute(insert(DensityDay), rows)
    return True


def density_in_days(sessions: sessionmaker[Session], query: SummaryQuery) -> list[ZoneDensity]:
    """Density per zone in local days: whole days from the summary (computed and kept when missing),
    days clipped by the window computed as they are."""
    buckets = bucket_edges(query.start, query.end, DAY_S, query.tz, query.max_buckets)
    with sessions() as session:
        every_zone = store_zones(session, query.store_id, buckets)
    zones = {z: every_zone[z] for z in every_zone if query.zone_id in (None, z)}
    if not buckets or not zones:
        return list(zones.values())
    zone_ids = sorted(every_zone)
    scope = Scope(query.store_id, None, query.include_staff)
    spans = [Span(b.start_ms, b.end_ms) for b in buckets]
    whole = [span for span, bucket in zip(spans, buckets, strict=True) if is_whole_day(bucket, query.tz)]
    epoch = consume_marks(sessions, query.store_id, query.keep_after_ms)
    with sessions() as session:
        for_reports(session)
        known = read_days(session, query, whole, zone_ids)
        computed = {
            span: compute_day(session, scope, zone_ids, span, query.gap_ms)
            for span in spans
            if span not in known
        }
    kept = {span: figures for span, figures in computed.items() if span in set(whole)}
    if kept:
        store_days(sessions, query, epoch, kept)
    by_day = known | computed
    for zone in zones.values():
        fill(zone, [by_day[span][zone.zone_id] for span in spans])
        zone.totals = day_totals(
            [by_day[span][zone.zone_id] for span in spans],
            zone.buckets,
            to_ms(query.end) - to_ms(query.start),
        )
    return list(zones.values())


def day_totals(days: list[Figures], cells: list[ZoneBucket], window_ms: int) -> ZoneTotals:
    """A zone's totals over the window from its days (unique visitors corrected for shared visitors)."""
    entries = sum(d.entries for d in days)
    shared: set[int] = set().union(*(d.crossing for d in days)) if days else set()
    unique = sum(d.unique_visitors - len(d.crossing) for d in days) + len(shared)
    return ZoneTotals(
        unique_visitors=unique,
        sightings=sum(d.sightings for d in days),
        entries=entries,
        mean_dwell_s=sum(d.dwell_ms for d in days) / entries / 1000.0 if entries else None,
        occupancy_mean=sum(d.present_ms for d in days) / window_ms if window_ms else 0.0,
        occupancy_max=max((c.occupancy_max for c in cells), default=0),
    )
