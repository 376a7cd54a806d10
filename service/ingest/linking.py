"""Visitor linking: each new crop, or camera track, joins the visitor it resembles most, or starts one.

``prototype`` linking (the default) compares a unit (a track, or one crop) with whole visitors: the
mean similarity between the unit's crops and a candidate visitor's recent crops, so one misleading
look-alike crop cannot chain two people together. Candidates come from the store's vector index; a
candidate the place rules rule out (seen elsewhere at the same time) is passed over. Later crops of a
known track join its visitor without asking the model. ``nearest`` linking is the earlier rule (the
single most similar recent sighting above the threshold), kept for comparison.

Deciding and storing are apart: ``plan_links`` decides every unit from what SQL and the index hold
(reads only; the request's own earlier units are kept in memory), and ``store_links`` writes the
visitors and sightings the plan names. The ingest use case decides in a read-only session and then
writes in a short transaction that first claims the store's row only if no other writer of the store
committed since it read the store's sequence (``storage.locks.claim_store_row``), retrying otherwise;
so concurrent ingests of one store, on any replica, still link one after another on each other's
committed sightings, while SQLite's single write lock is held for the writes alone, not for linking.
``link_sightings`` does both in one transaction that takes the row lock first (the fallback when the
store stays contended).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from service.common.timeparse import to_ms
from service.ingest.places import PlaceRules, Span, hours_apart
from service.ingest.units import Crops, Unit, group_units
from service.storage.locks import lock_store_row
from service.storage.models import Camera, Sighting, Visitor
from service.vectors.base import VectorFilter
from service.vectors.sync import IndexSync

CANDIDATE_SIGHTINGS = 64
CLOSEST = 3
NEAREST_CANDIDATES = 10
NEW = "new"
MATCHED = "matched"
TRACK = "track"
REFUSED = "new-refused"
NEAREST = "nearest"
PLANNED_VISITORS = 1 << 62  # ids a plan gives the visitors it will create, above any stored visitor's


@dataclass(frozen=True)
class LinkSettings:
    """How linking decides: the rule, its threshold, the visitor window, tracks and place rules."""

    mode: str
    threshold: float
    window_ms: int
    track_gap_ms: int
    places: PlaceRules
    time_penalty: float = 0.0
    time_grace_h: float = 1.0

    def time_cost(self, hours: float | np.ndarray) -> float | np.ndarray:
        """The similarity a pair loses for being ``hours`` apart: nothing within the grace, then linear."""
        return self.time_penalty * np.maximum(0.0, np.asarray(hours) - self.time_grace_h)


@dataclass(frozen=True)
class Linked:
    """The stored sighting, the visitor it was linked to, and why."""

    sighting_id: int
    visitor_id: int
    new_visitor: bool
    similarity: float | None
    captured_at: datetime
    runner_up: float | None = None
    link_rule: str = NEW
    track_id: str | None = None


@dataclass
class VisitorView:
    """What linking knows of a visitor: the sum and count of its recent crops, and where it was seen."""

    total: np.ndarray
    count: int
    spans: list[Span] = field(default_factory=list)

    def similarity(self, unit: Unit) -> float:
        """Mean cosine similarity between the unit's crops and the visitor's crops."""
        return float(unit.total @ self.total) / (unit.count * self.count)

    def hours_apart(self, unit: Unit) -> float:
        """Hours between the unit and the visitor's nearest crop in time (how long the visit went unseen)."""
        span = span_of(unit)
        return min(hours_apart(span, other) for other in self.spans)

    def score(self, unit: Unit, settings: LinkSettings) -> float:
        """Mean similarity less the time prior: a visit unseen for hours must look more alike to go on."""
        return self.similarity(unit) - float(settings.time_cost(self.hours_apart(unit)))


@dataclass(frozen=True)
class Decision:
    """A unit's visitor (None: a new one), its similarity, the runner-up and the rule that decided."""

    visitor_id: int | None
    similarity: float | None
    runner_up: float | None
    rule: str


def span_of(unit: Unit) -> Span:
    """Where and when a unit was seen."""
    return Span(unit.camera_id, unit.zone_id, unit.track_id, unit.start_ms, unit.end_ms)


@dataclass(frozen=True)
class PlannedCrop:
    """A crop this request has decided but not stored yet: what later units of the request must see."""

    visitor_id: int
    camera_id: int
    zone_id: int
    track_id: str | None
    captured_ms: int
    embedding: np.ndarray


def _add_crop(views: dict[int, VisitorView], visitor: int, vector: np.ndarray, span: Span) -> None:
    view = views.get(visitor)
    if view is None:
        view = views[visitor] = VisitorView(np.zeros_like(vector), 0)
    view.total = view.total + vector
    view.count += 1
    view.spans.append(span)


def visitor_views(
    session: Session,
    visitor_ids: list[int],
    lo_ms: int,
    hi_ms: int,
    planned: list[PlannedCrop] | None = None,
) -> dict[int, VisitorView]:
    """Crops of the given visitors captured in ``[lo_ms, hi_ms]``, summed per visitor (planned ones too)."""
    views: dict[int, VisitorView] = {}
    wanted = set(visitor_ids)
    stored = sorted(v for v in wanted if v < PLANNED_VISITORS)
    if stored:
        _stored_views(session, views, stored, lo_ms, hi_ms)
    for crop in planned or ():
        if crop.visitor_id in wanted and lo_ms <= crop.captured_ms <= hi_ms:
            span = Span(crop.camera_id, crop.zone_id, crop.track_id, crop.captured_ms, crop.captured_ms)
            _add_crop(views, crop.visitor_id, crop.embedding, span)
    return views


def _stored_views(
    session: Session, views: dict[int, VisitorView], visitor_ids: list[int], lo_ms: int, hi_ms: int
) -> None:
    rows = session.execute(
        select(
            Sighting.visitor_id,
            Sighting.camera_id,
            Sighting.zone_id,
            Sighting.track_id,
            Sighting.captured_ms,
            Sighting.embedding,
        ).where(
            Sighting.visitor_id.in_(visitor_ids),
            Sighting.captured_ms >= lo_ms,
            Sighting.captured_ms <= hi_ms,
        )
    )
    for row in rows:
        vector = np.frombuffer(row.embedding, dtype=np.float32)
        span = Span(row.camera_id, row.zone_id, row.track_id, row.captured_ms, row.captured_ms)
        _add_crop(views, row.visitor_id, vector, span)


def track_visitor(
    session: Session, unit: Unit, gap_ms: int, planned: list[PlannedCrop] | None = None
) -> int | None:
    """The visitor of the camera track this unit continues, if its last crop is within the gap."""
    if unit.track_id is None:
        return None
    lo, hi = unit.start_ms - gap_ms, unit.end_ms + gap_ms
    latest: tuple[int, int] | None = None
    for crop in planned or ():
        same = crop.camera_id == unit.camera_id and crop.track_id == unit.track_id
        if same and lo <= crop.captured_ms <= hi and (latest is None or crop.captured_ms >= latest[0]):
            latest = (crop.captured_ms, crop.visitor_id)
    row = session.execute(
        select(Sighting.visitor_id, Sighting.captured_ms)
        .where(
            Sighting.camera_id == unit.camera_id,
            Sighting.track_id == unit.track_id,
            Sighting.captured_ms >= lo,
            Sighting.captured_ms <= hi,
        )
        .order_by(Sighting.captured_ms.desc())
        .limit(1)
    ).first()
    if row is not None and (latest is None or row.captured_ms > latest[0]):
        latest = (row.captured_ms, int(row.visitor_id))
    return None if latest is None else latest[1]


def candidate_visitors(
    session: Session, sync: IndexSync, store_id: int, unit: Unit, settings: LinkSettings
) -> list[int]:
    """Visitors that could reach the threshold, and the few closest others (for the runner-up).

    A visitor's mean similarity to the unit is at most its best crop's similarity to the unit's mean,
    so visitors whose nearest indexed crop is below the threshold cannot be linked and are not loaded.
    """
    where = VectorFilter(
        store_id, min_ms=unit.start_ms - settings.window_ms, max_ms=unit.end_ms + settings.window_ms + 1
    )
    hits = sync.search(store_id, unit.mean[None].astype(np.float32), CANDIDATE_SIGHTINGS, where)[0]
    if not hits:
        return []
    owners = dict(
        session.execute(
            select(Sighting.id, Sighting.visitor_id).where(Sighting.id.in_([h.sighting_id for h in hits]))
        ).all()
    )
    best: dict[int, float] = {}
    for hit in hits:
        visitor = owners.get(hit.sighting_id)
        if visitor is not None:
            best.setdefault(int(visitor), hit.similarity)
    ranked = sorted(best, key=best.__getitem__, reverse=True)
    return [v for position, v in enumerate(ranked) if position < CLOSEST or best[v] >= settings.threshold]


def decide(unit: Unit, views: dict[int, VisitorView], settings: LinkSettings) -> Decision:
    """Join the most similar visitor above the threshold whom the place rules allow; else a new visitor.

    A new visitor's ``runner_up`` is the best candidate's similarity: how close the unit came to joining.
    """
    span = span_of(unit)
    scored = sorted(((view.score(unit, settings), visitor) for visitor, view in views.items()), reverse=True)
    refused = False
    for score, visitor in scored:
        if score < settings.threshold:
            break
        if settings.places.conflicts_any(span, views[visitor].spans):
            refused = True
            continue
        others = [other for other, candidate in scored if candidate != visitor]
        return Decision(visitor, score, others[0] if others else None, MATCHED)
    return Decision(None, None, scored[0][0] if scored else None, REFUSED if refused else NEW)


def decide_unit(
    session: Session,
    sync: IndexSync,
    store_id: int,
    unit: Unit,
    settings: LinkSettings,
    in_request: set[int],
    planned: list[PlannedCrop] | None = None,
) -> Decision:
    """The prototype rule for one unit: its track's visitor, or the best allowed candidate visitor.

    ``in_request`` are visitors this request already linked to, whose crops of this request are in
    ``planned`` (not yet in SQL nor in the index).
    """
    lo, hi = unit.start_ms - settings.window_ms, unit.end_ms + settings.window_ms
    known = track_visitor(session, unit, settings.track_gap_ms, planned)
    if known is not None:
        view = visitor_views(session, [known], lo, hi, planned).get(known)
        return Decision(known, view.similarity(unit) if view else None, None, TRACK)
    candidates = set(candidate_visitors(session, sync, store_id, unit, settings)) | in_request
    return decide(unit, visitor_views(session, sorted(candidates), lo, hi, planned), settings)


def decide_nearest(
    session: Session,
    sync: IndexSync,
    store_id: int,
    embedding: np.ndarray,
    ms: int,
    settings: LinkSettings,
    pending: list[tuple[int, np.ndarray, int]],
) -> Decision:
    """The earlier rule: the visitor of the single most similar sighting within the window, if above."""
    where = VectorFilter(store_id, min_ms=ms - settings.window_ms, max_ms=ms + settings.window_ms + 1)
    hits = [
        h
        for h in sync.search(store_id, embedding[None], NEAREST_CANDIDATES, where)[0]
        if h.similarity >= settings.threshold
    ]
    best: tuple[int, float] | None = None
    if hits:
        rows = session.execute(
            select(Sighting.id, Sighting.visitor_id).where(Sighting.id.in_([h.sighting_id for h in hits]))
        )
        owners = {row.id: row.visitor_id for row in rows}
        best = next(((owners[h.sighting_id], h.similarity) for h in hits if h.sighting_id in owners), None)
    for visitor, vector, when in pending:
        similarity = float(vector @ embedding)
        close = abs(when - ms) <= settings.window_ms and similarity >= settings.threshold
        if close and (best is None or similarity > best[1]):
            best = (visitor, similarity)
    if best is None:
        return Decision(None, None, None, NEW)
    return Decision(best[0], best[1], None, NEAREST)


@dataclass(frozen=True)
class PlannedUnit:
    """One unit's decision: its crops (positions in the request) and its visitor.

    ``visitor_id`` is a stored visitor's id, or a planned one (from ``PLANNED_VISITORS`` up) that
    ``store_links`` creates; ``creates`` says this unit is the one that creates it.
    """

    members: list[int]
    visitor_id: int
    creates: bool
    decision: Decision


@dataclass(frozen=True)
class LinkPlan:
    """Every unit of one request decided, in the order their visitors and sightings are written."""

    camera: Camera
    embeddings: np.ndarray
    captured: list[datetime]
    track_ids: list[str | None]
    units: list[PlannedUnit]


@dataclass
class _Planner:
    """The request's decisions so far, and its crops as later units must see them."""

    camera: Camera
    units: list[PlannedUnit] = field(default_factory=list)
    crops: list[PlannedCrop] = field(default_factory=list)
    created: int = 0

    def add(
        self, members: list[int], decision: Decision, embeddings: np.ndarray, ms: list[int], tracks
    ) -> int:
        creates = decision.visitor_id is None
        if creates:
            visitor = PLANNED_VISITORS + self.created
            self.created += 1
        else:
            visitor = int(decision.visitor_id)
        self.units.append(PlannedUnit(list(members), visitor, creates, decision))
        camera = self.camera
        for position in members:
            self.crops.append(
                PlannedCrop(
                    visitor, camera.id, camera.zone_id, tracks[position], ms[position], embeddings[position]
                )
            )
        return visitor


def plan_links(
    session: Session,
    sync: IndexSync,
    camera: Camera,
    embeddings: np.ndarray,
    captured: list[datetime],
    track_ids: list[str | None],
    settings: LinkSettings,
) -> LinkPlan:
    """Decide every crop's visitor from what SQL and the (caught-up) index hold; writes nothing."""
    ms = [to_ms(when) for when in captured]
    planner = _Planner(camera)
    if settings.mode == "nearest":
        pending: list[tuple[int, np.ndarray, int]] = []
        for position, embedding in enumerate(embeddings):
            decision = decide_nearest(
                session, sync, camera.store_id, embedding, ms[position], settings, pending
            )
            visitor = planner.add([position], decision, embeddings, ms, track_ids)
            pending.append((visitor, embedding, ms[position]))
    else:
        crops = Crops(embeddings, ms, [camera.id] * len(ms), [camera.zone_id] * len(ms), track_ids)
        in_request: set[int] = set()
        for unit in group_units(crops, settings.track_gap_ms):
            decision = decide_unit(session, sync, camera.store_id, unit, settings, in_request, planner.crops)
            in_request.add(planner.add(unit.members, decision, embeddings, ms, track_ids))
    return LinkPlan(camera, embeddings, list(captured), list(track_ids), planner.units)


def store_links(session: Session, plan: LinkPlan, model_version: str) -> list[Linked]:
    """Write the plan's new visitors and its sightings in the caller's transaction; the caller commits."""
    camera = plan.camera
    received = datetime.now(UTC)
    visitors: dict[int, int] = {}
    results: dict[int, Linked] = {}
    for unit in plan.units:
        if unit.creates:
            visitor = Visitor(store_id=camera.store_id, created_at=received)
            session.add(visitor)
            session.flush()
            visitors[unit.visitor_id] = visitor.id
        visitor_id = visitors.get(unit.visitor_id, unit.visitor_id)
        decision = unit.decision
        for order, position in enumerate(unit.members):
            when = plan.captured[position]
            sighting = Sighting(
                store_id=camera.store_id,
                zone_id=camera.zone_id,
                camera_id=camera.id,
                visitor_id=visitor_id,
                captured_at=when,
                captured_ms=to_ms(when),
                received_at=received,
                similarity=decision.similarity,
                model_version=model_version,
                embedding=np.ascontiguousarray(plan.embeddings[position], dtype=np.float32).tobytes(),
                track_id=plan.track_ids[position],
                link_rule=decision.rule,
                link_runner_up=decision.runner_up,
            )
            session.add(sighting)
            session.flush()
            results[position] = Linked(
                sighting.id,
                visitor_id,
                unit.creates and order == 0,
                decision.similarity,
                when,
                decision.runner_up,
                decision.rule,
                plan.track_ids[position],
            )
    return [results[i] for i in range(len(plan.embeddings))]


def link_sightings(
    session: Session,
    sync: IndexSync,
    camera: Camera,
    embeddings: np.ndarray,
    captured: list[datetime],
    track_ids: list[str | None],
    settings: LinkSettings,
) -> list[Linked]:
    """Store one sighting per embedding, each linked to a visitor, under the store's row lock taken first.

    All in the caller's transaction (the caller commits): the contended path of ingest, and what a
    caller that already writes uses.
    """
    lock_store_row(session, camera.store_id)
    sync.catch_up(session, camera.store_id)
    plan = plan_links(session, sync, camera, embeddings, captured, track_ids, settings)
    return store_links(session, plan, sync.model_version)
