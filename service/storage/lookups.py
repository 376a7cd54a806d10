"""Finding a row that belongs to one store; another store's row reads as missing."""

from __future__ import annotations

from typing import TypeVar

from sqlalchemy.orm import Session, sessionmaker

from service.common.errors import NotFoundError
from service.storage.models import Camera, Store, Zone

Owned = TypeVar("Owned", Zone, Camera)


def get_store(session: Session, store_id: int) -> Store:
    """A store by id, or NotFoundError."""
    store = session.get(Store, store_id)
    if store is None:
        raise NotFoundError(f"store {store_id} not found")
    return store


def get_owned(session: Session, kind: type[Owned], item_id: int, store_id: int) -> Owned:
    """A zone or camera of ``store_id``; one of another store is reported as not found."""
    row = session.get(kind, item_id)
    if row is None or row.store_id != store_id:
        raise NotFoundError(f"{kind.__name__.lower()} {item_id} not found in store {store_id}")
    return row


def find_owned(sessions: sessionmaker[Session], kind: type[Owned], item_id: int, store_id: int) -> Owned:
    """``get_owned`` in a short session of its own; the row comes back detached."""
    with sessions() as session:
        return get_owned(session, kind, item_id, store_id)
