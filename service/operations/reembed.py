"""Re-embedding: the current model's embedding for sightings of earlier model versions, from kept crops.

Each re-embedded sighting becomes a new row version: a copy with a new id, the new model's embedding and
every other column unchanged (store, zone, camera, visitor, capture and receive times, track); its crop
moves to the copy, and the old row is deleted with a tombstone. Every replica's index then picks the copy
up by its id watermark, exactly like a new sighting, and replicas still running the old model drop the
old row through the tombstone. The old id is retired, never reused (a client holding it gets 404).

Crops are read and embedded outside any transaction; each batch is then written in one transaction per
store under the store's row lock, like ingest, so sightings ingested meanwhile are neither lost nor
reordered, and rows erased or purged meanwhile are skipped. Work goes in increasing id order and every
batch commits, so an interrupted run loses nothing and the next run goes on with what is left.
Sightings whose crop was not kept (``REID_STORE_CROPS`` off) cannot be re-embedded.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
from sqlalchemy import delete, func, insert, inspect, select, update
from sqlalchemy.orm import Session, sessionmaker

from model import Embedder, ImageDecodeError, load_image
from model.preprocess import resize_rgb
from service.storage.db import session_scope
from service.storage.locks import lock_store_row
from service.storage.models import DeletedSighting, Sighting, SightingCrop

KEPT_AS_IS = ("id", "model_version", "embedding")
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReembedPlan:
    """Sightings of other model versions: with a kept crop (can be re-embedded) and without."""

    model_version: str
    with_crops: int
    without_crops: int


@dataclass(frozen=True)
class ReembedResult:
    """What a run did: re-embedded, crops that no longer decode, rows deleted meanwhile, and what is left."""

    model_version: str
    reembedded: int
    undecodable: int
    gone: int
    left_with_crops: int
    left_without_crops: int


def plan_reembed(sessions: sessionmaker[Session], model_version: str) -> ReembedPlan:
    """How many sightings another model embedded, with and without a kept crop."""
    with sessions() as session:
        other = Sighting.model_version != model_version
        total = session.scalar(select(func.count()).select_from(Sighting).where(other)) or 0
        with_crops = (
            session.scalar(
                select(func.count())
                .select_from(Sighting)
                .join(SightingCrop, SightingCrop.sighting_id == Sighting.id)
                .where(other)
            )
            or 0
        )
    return ReembedPlan(model_version, int(with_crops), int(total) - int(with_crops))


def _copied_columns() -> list[str]:
    return [attr.key for attr in inspect(Sighting).column_attrs if attr.key not in KEPT_AS_IS]


def _embed(embedder: Embedder, crops: list[bytes]) -> tuple[np.ndarray, list[bool]]:
    """Embeddings of the crops that decode (decoded as ingest decodes them), and which did."""
    pixels, decoded = [], []
    for data in crops:
        try:
            pixels.append(resize_rgb(load_image(data), embedder.input_size))
            decoded.append(True)
        except ImageDecodeError:
            decoded.append(False)
    vectors = embedder.embed(pixels) if pixels else np.empty((0, embedder.dim), dtype=np.float32)
    return vectors, decoded


def _replace(
    sessions: sessionmaker[Session], store_id: int, vectors: dict[int, np.ndarray], model_version: str
) -> int:
    """Write one store's re-embedded sightings as new rows in one locked transaction; returns how many."""
    columns = _copied_columns()
    with session_scope(sessions) as session:
        lock_store_row(session, store_id)
        olds = list(
            session.scalars(
                select(Sighting)
                .where(Sighting.id.in_(list(vectors)), Sighting.model_version != model_version)
                .order_by(Sighting.id)
            )
        )
        if not olds:
            return 0
        copies = [
            Sighting(
                **{name: getattr(old, name) for name in columns},
                model_version=model_version,
                embedding=np.ascontiguousarray(vectors[old.id], dtype=np.float32).tobytes(),
            )
            for old in olds
        ]
        session.add_all(copies)
        session.flush()
        now = datetime.now(UTC)
        for old, copy in zip(olds, copies, strict=True):
            session.execute(
                update(SightingCrop).where(SightingCrop.sighting_id == old.id).values(sighting_id=copy.id)
            )
        session.execute(
            insert(DeletedSighting),
            [{"store_id": store_id, "sighting_id": old.id, "deleted_at": now} for old in olds],
        )
        session.execute(delete(Sighting).where(Sighting.id.in_([old.id for old in olds])))
        return len(olds)


def reembed(
    sessions: sessionmaker[Session],
    embedder: Embedder,
    *,
    batch_size: int = 64,
    limit: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> ReembedResult:
    """Re-embed kept crops of other models' sightings with ``embedder``, in batches, oldest id first.

    Stops after ``limit`` sightings (all when None); ``progress`` is told how many each batch handled.
    """
    version = embedder.version
    cursor, done, undecodable, gone = 0, 0, 0, 0
    while limit is None or done + undecodable + gone < limit:
        size = batch_size if limit is None else min(batch_size, limit - done - undecodable - gone)
        with sessions() as session:
            rows = session.execute(
                select(Sighting.id, Sighting.store_id, SightingCrop.data)
                .join(SightingCrop, SightingCrop.sighting_id == Sighting.id)
                .where(Sighting.model_version != version, Sighting.id > cursor)
                .order_by(Sighting.id)
                .limit(size)
            ).all()
        if not rows:
            break
        cursor = rows[-1].id
        vectors, decoded = _embed(embedder, [row.data for row in rows])
        by_store: dict[int, dict[int, np.ndarray]] = defaultdict(dict)
        kept = iter(vectors)
        for row, ok in zip(rows, decoded, strict=True):
            if ok:
                by_store[row.store_id][row.id] = next(kept)
            else:
                log.warning("sighting %d: its kept crop no longer decodes; left as it is", row.id)
        written = sum(_replace(sessions, store, found, version) for store, found in by_store.items())
        undecodable += decoded.count(False)
        gone += sum(decoded) - written
        done += written
        if progress is not None:
            progress(len(rows))
    left = plan_reembed(sessions, version)
    return ReembedResult(version, done, undecodable, gone, left.with_crops, left.without_crops)
