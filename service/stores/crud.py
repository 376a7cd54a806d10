"""Stores, zones, cameras and keys: creating, listing, changing; shared by the admin API and ``reid-admin``.

Functions that write commit their session; the rows they return stay usable after the commit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from service.access.keys import generate_key
from service.common.errors import ConflictError, InvalidInputError, NotFoundError
from service.storage.lookups import get_owned, get_store
from service.storage.models import ApiKey, Camera, Store, Zone


@dataclass(frozen=True)
class NewKey:
    """A created key row and its secret, which is not stored and is shown once."""

    row: ApiKey
    secret: str


def create_store(*, session: Session, name: str, timezone: str, match_enabled: bool = False) -> Store:
    """Add a store; person search stays off unless ``match_enabled``."""
    store = Store(
        name=name,
        timezone=timezone,
        created_at=datetime.now(UTC),
        ingest_seq=0,
        match_enabled=match_enabled,
    )
    session.add(store)
    session.commit()
    return store


def list_stores(*, session: Session) -> list[Store]:
    """Every store, oldest first."""
    return list(session.scalars(select(Store).order_by(Store.id)))


def read_store(*, session: Session, store_id: int) -> Store:
    """One store, or NotFoundError."""
    return get_store(session, store_id)


def update_store(*, session: Session, store_id: int, changes: dict[str, object]) -> Store:
    """Set the given fields (name, timezone, match_enabled); a null value is refused."""
    store = get_store(session, store_id)
    for field, value in changes.items():
        if value is None:
            raise InvalidInputError(f"{field} cannot be null")
        setattr(store, field, value)
    session.commit()
    return store


def create_zone(*, session: Session, store_id: int, name: str) -> Zone:
    """Add a zone; names are unique within a store (ConflictError otherwise)."""
    get_store(session, store_id)
    zone = Zone(store_id=store_id, name=name)
    session.add(zone)
    try:
        session.commit()
    except IntegrityError as exc:
        session.rollback()
        raise ConflictError(f"store {store_id} already has a zone named {name!r}") from exc
    return zone


def list_zones(*, session: Session, store_id: int) -> list[Zone]:
    """A store's zones."""
    get_store(session, store_id)
    return list(session.scalars(select(Zone).where(Zone.store_id == store_id).order_by(Zone.id)))


def create_camera(*, session: Session, store_id: int, zone_id: int, name: str) -> Camera:
    """Add a camera looking at one of the store's zones."""
    get_store(session, store_id)
    zone = get_owned(session, Zone, zone_id, store_id)
    camera = Camera(store_id=store_id, zone_id=zone.id, name=name)
    session.add(camera)
    session.commit()
    return camera


def list_cameras(*, session: Session, store_id: int) -> list[Camera]:
    """A store's cameras."""
    get_store(session, store_id)
    return list(session.scalars(select(Camera).where(Camera.store_id == store_id).order_by(Camera.id)))


def create_key(*, session: Session, store_id: int, name: str) -> NewKey:
    """Add a store key; only its hash and lookup prefix are stored."""
    get_store(session, store_id)
    new = generate_key()
    row = ApiKey(
        store_id=store_id, name=name, prefix=new.prefix, key_hash=new.key_hash, created_at=datetime.now(UTC)
    )
    session.add(row)
    session.commit()
    return NewKey(row, new.secret)


def list_keys(*, session: Session, store_id: int) -> list[ApiKey]:
    """A store's keys (the rows hold hashes, never secrets)."""
    get_store(session, store_id)
    return list(session.scalars(select(ApiKey).where(ApiKey.store_id == store_id).order_by(ApiKey.id)))


def revoke_key(*, session: Session, store_id: int, key_id: int) -> None:
    """Revoke a store key (NotFoundError when it is not one of this store's keys); again is a no-op."""
    get_store(session, store_id)
    key = session.get(ApiKey, key_id)
    if key is None or key.store_id != store_id:
        raise NotFoundError(f"key {key_id} not found in store {store_id}")
    if key.revoked_at is None:
        key.revoked_at = datetime.now(UTC)
        session.commit()


def set_person_search(*, session: Session, store_id: int, enabled: bool) -> Store:
    """Turn person search (/match) on or off for a store."""
    return update_store(session=session, store_id=store_id, changes={"match_enabled": enabled})
