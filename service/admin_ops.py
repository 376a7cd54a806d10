"""Creating stores, zones, cameras and keys; shared by the admin API and ``reid-admin``."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.orm import Session

from service.core.security import generate_key
from service.models import ApiKey, Camera, Store, Zone


def create_store(session: Session, name: str, timezone: str, match_enabled: bool = False) -> Store:
    """Add a store (not committed); person search stays off unless ``match_enabled``."""
    store = Store(
        name=name,
        timezone=timezone,
        created_at=datetime.now(UTC),
        ingest_seq=0,
        match_enabled=match_enabled,
    )
    session.add(store)
    session.flush()
    return store


def create_zone(session: Session, store_id: int, name: str) -> Zone:
    """Add a zone to a store (not committed)."""
    zone = Zone(store_id=store_id, name=name)
    session.add(zone)
    session.flush()
    return zone


def create_camera(session: Session, store_id: int, zone_id: int, name: str) -> Camera:
    """Add a camera looking at a zone (not committed)."""
    camera = Camera(store_id=store_id, zone_id=zone_id, name=name)
    session.add(camera)
    session.flush()
    return camera


def create_key(session: Session, store_id: int, name: str) -> tuple[ApiKey, str]:
    """Add a store key (not committed); returns the row and the secret, which is not stored."""
    new = generate_key()
    row = ApiKey(
        store_id=store_id, name=name, prefix=new.prefix, key_hash=new.key_hash, created_at=datetime.now(UTC)
    )
    session.add(row)
    session.flush()
    return row, new.secret
