"""Dropping density summary rows (``density_days``) now, where the data they were computed from must go
at once: the days an erased visitor was seen on, and the days retention expired.

The triggers' marks (migration 0005) would drop such rows at the next density read anyway; erasure and
retention drop them in their own transaction, so that no summary of erased or expired sightings (nor
an erased visitor's id among a day's ``crossing`` visitors) outlives the change. Each drop first moves
the store's epoch, so a day computed before the change is never stored after it; callers drop before
they delete sightings, so that every writer takes the epoch row before the marks the triggers write
(the order density readers take them in).
"""

from __future__ import annotations

from sqlalchemy import delete, update
from sqlalchemy.orm import Session

from service.storage.models import DensityDay, DensityEpoch


def drop_overlapping(session: Session, store_id: int, lo_ms: int, hi_ms: int) -> int:
    """Delete the store's summary days overlapping ``[lo_ms, hi_ms)`` widened by each row's gap (a visit
    reaches that far); returns how many rows went."""
    gone = session.execute(
        delete(DensityDay).where(
            DensityDay.store_id == store_id,
            DensityDay.start_ms < hi_ms + DensityDay.gap_ms,
            DensityDay.end_ms > lo_ms - DensityDay.gap_ms,
        )
    )
    return int(gone.rowcount or 0)


def move_epoch(session: Session, store_id: int) -> None:
    """Move the store's epoch: summaries computed before it are not stored."""
    session.execute(
        update(DensityEpoch).where(DensityEpoch.store_id == store_id).values(epoch=DensityEpoch.epoch + 1)
    )


def forget_span(session: Session, store_id: int, lo_ms: int, hi_ms: int) -> int:
    """Erasure: drop the store's summary days over the sightings' span ``[lo_ms, hi_ms]``."""
    move_epoch(session, store_id)
    return drop_overlapping(session, store_id, lo_ms, hi_ms + 1)


def forget_before(session: Session, store_id: int, cutoff_ms: int) -> int:
    """Retention: drop the store's summary days that begin before ``cutoff_ms``."""
    move_epoch(session, store_id)
    gone = session.execute(
        delete(DensityDay).where(DensityDay.store_id == store_id, DensityDay.start_ms < cutoff_ms)
    )
    return int(gone.rowcount or 0)
