"""Density figures per zone and bucket from a store's sightings: two SQL queries and a sweep in NumPy.

SQL gives the sightings and distinct visitors per zone and bucket (grouped in the database), and the
first and last sighting of every visit (a run of one visitor's sightings in a zone less than the gap
apart: one window pass that keeps only the rows where a visit starts or ends). A visit still going on
past the window is followed to its real end, so its dwell does not depend on where the window ends.
NumPy then gives, per bucket, the entries (visits starting in it) and their dwell, the time visitors
were present (for the mean occupancy) and the peak number present (at the bucket's start and at every
entry into it; a visitor counts as present from the first to the last sighting of the visit).

Every figure of one bucket depends only on the sightings, never on the other buckets asked for, so a
day computed alone (the density summary) equals the same day computed within a month.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np
from sqlalchemy import (
    BigInteger,
    ColumnElement,
    and_,
    case,
    column,
    func,
    literal_column,
    or_,
    select,
    union_all,
    values,
)
from sqlalchemy.orm import Session
from sqlalchemy.sql.selectable import ScalarSelect

from service.storage.counting import counted_sightings
from service.storage.models import Sighting

EXTEND_CHUNK = 500


@dataclass(frozen=True)
class Span:
    """A bucket, clipped to the requested window (epoch ms, half-open)."""

    start_ms: int
    end_ms: int


@dataclass
class Figures:
    """Density figures of one zone in one bucket (durations in ms)."""

    unique_visitors: int = 0
    sightings: int = 0
    entries: int = 0
    dwell_ms: int = 0
    present_ms: int = 0
    occupancy_max: int = 0
    crossing: set[int] = field(default_factory=set)


@dataclass(frozen=True)
class Visits:
    """Every visit of one zone: first and last sighting (ms), ordered by first sighting."""

    starts: np.ndarray
    ends: np.ndarray


@dataclass(frozen=True)
class Scope:
    """Whose sightings count: one store, maybe one zone, staff left out unless included."""

    store_id: int
    zone_id: int | None = None
    include_staff: bool = False

    def where(self) -> list[ColumnElement[bool]]:
        """WHERE clauses on ``Sighting``."""
        clauses = counted_sightings(self.store_id, self.include_staff)
        if self.zone_id is not None:
            clauses.append(Sighting.zone_id == self.zone_id)
        return clauses


def uniform_step(spans: list[Span]) -> int | None:
    """The common length of the buckets (the first and last may be clipped), or None when they differ."""
    if len(spans) < 3:
        return spans[0].end_ms - spans[0].start_ms if len(spans) == 1 else None
    inner = {s.end_ms - s.start_ms for s in spans[1:-1]}
    if len(inner) != 1:
        return None
    step = inner.pop()
    fits = spans[0].end_ms - spans[0].start_ms <= step and spans[-1].end_ms - spans[-1].start_ms <= step
    return step if fits else None


def count_sightings(
    session: Session, scope: Scope, spans: list[Span]
) -> dict[tuple[int, int], tuple[int, int]]:
    """(zone, bucket) -> (sightings, distinct visitors).

    Equal buckets are numbered by arithmetic on the capture time; unequal ones (days across a daylight
    saving change) by a join with the bucket list.
    """
    lo, hi = spans[0].start_ms, spans[-1].end_ms
    figures = (func.count(), func.count(func.distinct(Sighting.visitor_id)))
    where = (*scope.where(), Sighting.captured_ms >= lo, Sighting.captured_ms < hi)
    step = uniform_step(spans)
    if len(spans) == 1:
        rows = session.execute(
            select(Sighting.zone_id, literal_column("0"), *figures).where(*where).group_by(Sighting.zone_id)
        )
    elif step is not None:
        base = spans[0].end_ms - step
        offset = Sighting.captured_ms - literal_column(str(int(base)), BigInteger)
        index = offset // literal_column(str(int(step)), BigInteger)
        rows = session.execute(
            select(Sighting.zone_id, index, *figures).where(*where).group_by(Sighting.zone_id, index)
        )
    else:
        columns = (column("idx", BigInteger), column("b0", BigInteger), column("b1", BigInteger))
        data = [(i, s.start_ms, s.end_ms) for i, s in enumerate(spans)]
        table = values(*columns, name="buckets", literal_binds=True).data(data).cte("buckets")
        rows = session.execute(
            select(Sighting.zone_id, table.c.idx, *figures)
            .select_from(Sighting)
            .join(table, and_(Sighting.captured_ms >= table.c.b0, Sighting.captured_ms < table.c.b1))
            .where(*where)
            .group_by(Sighting.zone_id, table.c.idx)
        )
    return {(int(z), int(i)): (int(n), int(u)) for z, i, n, u in rows}


def unique_per_zone(session: Session, scope: Scope, lo: int, hi: int) -> dict[int, int]:
    """Distinct visitors per zone over ``[lo, hi)``."""
    rows = session.execute(
        select(Sighting.zone_id, func.count(func.distinct(Sighting.visitor_id)))
        .where(*scope.where(), Sighting.captured_ms >= lo, Sighting.captured_ms < hi)
        .group_by(Sighting.zone_id)
    )
    return {int(z): int(u) for z, u in rows}


def crossing_visitors(session: Session, scope: Scope, lo: int, hi: int) -> dict[int, set[int]]:
    """Per zone, the visitors seen there in ``[lo, hi)`` who were also seen (anywhere) outside it.

    Every visitor seen in the zone on another day is among them, which is all that counting the
    distinct visitors of several days needs; two index probes (first and last sighting) per visitor.
    """
    window = (*scope.where(), Sighting.captured_ms >= lo, Sighting.captured_ms < hi)
    inside = select(Sighting.visitor_id).where(*window).distinct().cte("inside")
    other = Sighting.__table__.alias("other")

    def bound(extreme) -> ScalarSelect:
        return (
            select(extreme(other.c.captured_ms))
            .where(other.c.visitor_id == inside.c.visitor_id)
            .scalar_subquery()
        )

    crossing = session.scalars(
        select(inside.c.visitor_id).where(or_(bound(func.min) < lo, bound(func.max) >= hi))
    ).all()
    found: dict[int, set[int]] = defaultdict(set)
    for chunk in range(0, len(crossing), EXTEND_CHUNK):
        part = sorted(crossing[chunk : chunk + EXTEND_CHUNK])
        pairs = session.execute(
            select(Sighting.zone_id, Sighting.visitor_id)
            .where(*window, Sighting.visitor_id.in_(part))
            .distinct()
        )
        for zone, visitor in pairs:
            found[int(zone)].add(int(visitor))
    return found


def read_visits(session: Session, scope: Scope, lo: int, hi: int, gap_ms: int) -> dict[int, Visits]:
    """Per zone, the visits with a sighting in ``[lo - gap, hi + gap)``; those that start in the window
    and go on past it are followed to their end."""
    person = (Sighting.zone_id, Sighting.visitor_id)
    order = Sighting.captured_ms
    ordered = (
        select(
            Sighting.zone_id,
            Sighting.visitor_id,
            Sighting.captured_ms.label("ms"),
            func.lag(Sighting.captured_ms).over(partition_by=person, order_by=order).label("prev"),
            func.lead(Sighting.captured_ms).over(partition_by=person, order_by=order).label("next"),
        )
        .where(*scope.where(), Sighting.captured_ms >= lo - gap_ms, Sighting.captured_ms < hi + gap_ms)
        .subquery("ordered")
    )
    starts = or_(ordered.c.prev.is_(None), ordered.c.ms - ordered.c.prev >= gap_ms)
    ends = or_(ordered.c.next.is_(None), ordered.c.next - ordered.c.ms >= gap_ms)
    is_start = case((starts, 1), else_=0)
    rows = session.execute(  # a visit's start before its end when both fall on one instant
        select(ordered.c.zone_id, ordered.c.visitor_id, ordered.c.ms, is_start, case((ends, 1), else_=0))
        .where(or_(starts, ends))
        .order_by(ordered.c.zone_id, ordered.c.visitor_id, ordered.c.ms, is_start.desc())
    )
    return pair_visits(
        session, scope, np.array([tuple(r) for r in rows], dtype=np.int64).reshape(-1, 5), lo, hi, gap_ms
    )


def pair_visits(
    session: Session, scope: Scope, table: np.ndarray, lo: int, hi: int, gap_ms: int
) -> dict[int, Visits]:
    """Visits per zone from the rows where visits start or end (zone, visitor, ms, starts, ends), ordered
    by zone, visitor and time, a visit's start before its end on the same instant."""
    first = table[table[:, 3] == 1]  # the k-th start and the k-th end make the k-th visit
    zones, visitors, begins = first[:, 0], first[:, 1], first[:, 2]
    finishes = table[table[:, 4] == 1, 2].copy()
    going_on = np.flatnonzero((begins >= lo) & (finishes >= hi))
    if going_on.size:
        keys = [(int(zones[i]), int(visitors[i])) for i in going_on]
        ends = _follow_to_the_end(
            session, scope, dict(zip(keys, finishes[going_on].tolist(), strict=True)), hi, gap_ms
        )
        finishes[going_on] = [ends[key] for key in keys]
    result = {}
    for zone in np.unique(zones).tolist():
        mine = zones == zone
        order = np.argsort(begins[mine], kind="stable")
        result[int(zone)] = Visits(begins[mine][order], finishes[mine][order])
    return result


def scan_equal_buckets(
    session: Session, scope: Scope, spans: list[Span], step: int, gap_ms: int
) -> tuple[dict[tuple[int, int], tuple[int, int]], dict[int, int], dict[int, Visits]]:
    """One pass for buckets of equal length: the window's sightings are ordered once per zone and
    visitor; from that, the sightings and distinct visitors per bucket, the distinct visitors over the
    window, and the rows where visits start or end."""
    lo, hi = spans[0].start_ms, spans[-1].end_ms
    base = literal_column(str(int(spans[0].end_ms - step if len(spans) > 1 else lo)), BigInteger)
    width = literal_column(str(int(step)), BigInteger)
    person = (Sighting.zone_id, Sighting.visitor_id)
    order = Sighting.captured_ms
    index = (Sighting.captured_ms - base) // width
    ordered = (
        select(
            Sighting.zone_id,
            Sighting.visitor_id,
            Sighting.captured_ms.label("ms"),
            func.lag(Sighting.captured_ms).over(partition_by=person, order_by=order).label("prev"),
            func.lead(Sighting.captured_ms).over(partition_by=person, order_by=order).label("next"),
            index.label("idx"),
            func.lag(index).over(partition_by=person, order_by=order).label("prev_idx"),
        )
        .where(*scope.where(), Sighting.captured_ms >= lo - gap_ms, Sighting.captured_ms < hi + gap_ms)
        .cte("ordered")
    )
    c = ordered.c
    inside = and_(c.ms >= lo, c.ms < hi)
    new_in_window = or_(c.prev.is_(None), c.prev < lo)
    new_in_bucket = case((or_(new_in_window, c.prev_idx != c.idx), 1), else_=0)
    starts = or_(c.prev.is_(None), c.ms - c.prev >= gap_ms)
    ends = or_(c.next.is_(None), c.next - c.ms >= gap_ms)
    zero = literal_column("0", BigInteger)
    per_bucket = (
        select(
            literal_column("0").label("kind"), c.zone_id, c.idx, func.count(), func.sum(new_in_bucket), zero
        )
        .where(inside)
        .group_by(c.zone_id, c.idx)
    )
    per_window = (
        select(literal_column("1"), c.zone_id, zero, zero, func.sum(case((new_in_window, 1), else_=0)), zero)
        .where(inside)
        .group_by(c.zone_id)
    )
    boundaries = select(
        literal_column("2"),
        c.zone_id,
        c.visitor_id,
        c.ms,
        case((starts, 1), else_=0),
        case((ends, 1), else_=0),
    ).where(or_(starts, ends))
    rows = np.array(
        [tuple(r) for r in session.execute(union_all(per_bucket, per_window, boundaries))], dtype=np.int64
    )
    rows = rows.reshape(-1, 6)
    counts = {(int(z), int(i)): (int(n), int(u)) for _, z, i, n, u, _ in rows[rows[:, 0] == 0].tolist()}
    unique = {int(z): int(u) for _, z, _, _, u, _ in rows[rows[:, 0] == 1].tolist()}
    edges = rows[rows[:, 0] == 2, 1:]
    edges = edges[np.lexsort((-edges[:, 3], edges[:, 2], edges[:, 1], edges[:, 0]))]
    return counts, unique, pair_visits(session, scope, edges, lo, hi, gap_ms)


def _follow_to_the_end(
    session: Session, scope: Scope, ends: dict[tuple[int, int], int], hi: int, gap_ms: int
) -> dict[tuple[int, int], int]:
    """The real ends of visits that start in the window and end at or after ``hi`` (they may go on past
    the rows read): the same visitor's later sightings in the zone, up to the first gap."""
    ends = dict(ends)
    keys = sorted(ends, key=lambda key: key[1])
    for chunk in range(0, len(keys), EXTEND_CHUNK):
        part = keys[chunk : chunk + EXTEND_CHUNK]
        later = session.execute(
            select(Sighting.zone_id, Sighting.visitor_id, Sighting.captured_ms)
            .where(
                *scope.where(),
                Sighting.visitor_id.in_(sorted({visitor for _, visitor in part})),
                Sighting.captured_ms >= hi + gap_ms,
            )
            .order_by(Sighting.visitor_id, Sighting.captured_ms)
        )
        closed: set[tuple[int, int]] = set()
        for zone, visitor, ms in later:
            key = (int(zone), int(visitor))
            if key not in ends or key in closed:
                continue
            if ms - ends[key] < gap_ms:
                ends[key] = int(ms)
            else:
                closed.add(key)
    return ends


def sweep(visits: Visits, spans: list[Span]) -> list[Figures]:
    """Entries, dwell, time present and peak presence per bucket, from one zone's visits."""
    starts, ends = visits.starts, visits.ends
    sorted_ends = np.sort(ends)
    b0 = np.array([s.start_ms for s in spans], dtype=np.int64)
    b1 = np.array([s.end_ms for s in spans], dtype=np.int64)
    figures = [Figures() for _ in spans]

    inside = (starts >= b0[0]) & (starts < b1[-1])
    idx = np.searchsorted(b0, starts[inside], side="right") - 1
    entries = np.bincount(idx, minlength=len(spans))
    dwell = np.bincount(idx, weights=(ends - starts)[inside], minlength=len(spans))

    start_sums = np.concatenate(([0], np.cumsum(starts)))
    end_sums = np.concatenate(([0], np.cumsum(sorted_ends)))

    def presence_before(edge: np.ndarray) -> np.ndarray:
        began = np.searchsorted(starts, edge, side="left")
        ended = np.searchsorted(sorted_ends, edge, side="left")
        return end_sums[ended] + edge * (began - ended) - start_sums[began]

    present = presence_before(b1) - presence_before(b0)

    def present_at(points: np.ndarray) -> np.ndarray:
        began = np.searchsorted(starts, points, side="right")
        return began - np.searchsorted(sorted_ends, points, side="left")

    peak = present_at(b0)
    if idx.size:
        np.maximum.at(peak, idx, present_at(starts[inside]))
    for i, cell in enumerate(figures):
        cell.entries, cell.dwell_ms = int(entries[i]), int(round(dwell[i]))
        cell.present_ms, cell.occupancy_max = int(present[i]), int(peak[i])
    return figures


def bucket_figures(
    session: Session, scope: Scope, zone_ids: list[int], spans: list[Span], gap_ms: int
) -> tuple[dict[int, list[Figures]], dict[int, int]]:
    """Figures of every zone in every bucket (contiguous and ordered), and each zone's distinct visitors
    over the whole window."""
    result = {zone: [Figures() for _ in spans] for zone in zone_ids}
    if not spans or not zone_ids:
        return result, {}
    lo, hi = spans[0].start_ms, spans[-1].end_ms
    step = uniform_step(spans)
    if step is not None:
        counts, unique, visits = scan_equal_buckets(session, scope, spans, step, gap_ms)
    else:
        counts = count_sightings(session, scope, spans)
        unique = unique_per_zone(session, scope, lo, hi)
        visits = read_visits(session, scope, lo, hi, gap_ms)
    for (zone, idx), (sightings, distinct) in counts.items():
        if zone in result and 0 <= idx < len(spans):
            cell = result[zone][idx]
            cell.sightings, cell.unique_visitors = sightings, distinct
    for zone, zone_visits in visits.items():
        if zone not in result:
            continue
        for cell, swept in zip(result[zone], sweep(zone_visits, spans), strict=True):
            cell.entries, cell.dwell_ms = swept.entries, swept.dwell_ms
            cell.present_ms, cell.occupancy_max = swept.present_ms, swept.occupancy_max
    return result, unique
