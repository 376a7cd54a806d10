"""The two locks that order one store's writers.

``lock_store_row`` is the database lock: an UPDATE of the store's row that serialises its writers on
every replica until the transaction ends. Each such UPDATE moves the row's ``ingest_seq`` on, so a
writer that decided on reads taken outside the lock can claim the row only if nobody wrote since
(``store_sequence`` then ``claim_store_row``). ``StoreWriteQueue`` is the in-process queue in front of it:
threads of one process wait there, before taking a database connection, so that a burst of writers
never holds the whole connection pool while waiting for the row lock.
"""

from __future__ import annotations

import threading

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from service.storage.models import Store


def lock_store_row(session: Session, store_id: int) -> None:
    """Serialise one store's writers until the transaction ends (PostgreSQL row lock, SQLite write lock)."""
    session.execute(update(Store).where(Store.id == store_id).values(ingest_seq=Store.ingest_seq + 1))


def store_sequence(session: Session, store_id: int) -> int:
    """The store's write sequence: every writer that takes the row lock moves it on."""
    return int(session.scalar(select(Store.ingest_seq).where(Store.id == store_id)) or 0)


def claim_store_row(session: Session, store_id: int, seen: int) -> bool:
    """Take the row lock only if no writer committed since ``seen`` was read (optimistic concurrency).

    The first statement of a write transaction: on PostgreSQL it waits for a writer holding the row and
    then sees its sequence; on SQLite it takes the write lock. False: decide again on fresh reads.
    """
    claimed = session.execute(
        update(Store)
        .where(Store.id == store_id, Store.ingest_seq == seen)
        .values(ingest_seq=Store.ingest_seq + 1)
        .execution_options(synchronize_session=False)
    )
    return claimed.rowcount == 1


class StoreWriteQueue:
    """One in-process lock per store, taken by writers before they open a database transaction."""

    def __init__(self) -> None:
        self._locks: dict[int, threading.Lock] = {}
        self._guard = threading.Lock()

    def turn(self, store_id: int) -> threading.Lock:
        """The lock a writer of ``store_id`` holds for the length of its transaction."""
        with self._guard:
            return self._locks.setdefault(store_id, threading.Lock())
