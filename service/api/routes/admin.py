"""Admin endpoints: stores, zones, cameras, store keys and the person-search audit log (admin key only)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Response
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from service import admin_ops
from service.api.deps import AdminDep, IdPath, SessionDep
from service.audit import AuditQuery, list_searches
from service.models import ApiKey, Camera, Store, Zone
from service.schemas import (
    MAX_BIG_ID,
    CameraIn,
    CameraOut,
    KeyIn,
    KeyOut,
    MatchAuditOut,
    NewKeyOut,
    StoreIn,
    StoreOut,
    StoreUpdate,
    ZoneIn,
    ZoneOut,
)
from service.timeparse import TimeParseError, parse_timestamp

MAX_AUDIT_PAGE = 1000

router = APIRouter(prefix="/stores", tags=["admin"])


def _store(session: SessionDep, store_id: int) -> Store:
    store = session.get(Store, store_id)
    if store is None:
        raise HTTPException(404, f"store {store_id} not found")
    return store


def _as(schema, row):
    return schema.model_validate(row, from_attributes=True)


@router.post("", status_code=201, response_model=StoreOut)
def create_store(body: StoreIn, session: SessionDep, _: AdminDep) -> StoreOut:
    """Create a store."""
    store = admin_ops.create_store(session, body.name, body.timezone, body.match_enabled)
    session.commit()
    return _as(StoreOut, store)


@router.get("", response_model=list[StoreOut])
def list_stores(session: SessionDep, _: AdminDep) -> list[StoreOut]:
    """All stores."""
    return [_as(StoreOut, s) for s in session.scalars(select(Store).order_by(Store.id))]


@router.get("/{store_id}", response_model=StoreOut)
def get_store(store_id: IdPath, session: SessionDep, _: AdminDep) -> StoreOut:
    """One store."""
    return _as(StoreOut, _store(session, store_id))


@router.patch("/{store_id}", response_model=StoreOut)
def update_store(store_id: IdPath, body: StoreUpdate, session: SessionDep, _: AdminDep) -> StoreOut:
    """Rename a store, change its time zone, or enable or disable person search (/match)."""
    store = _store(session, store_id)
    for field, value in body.model_dump(exclude_unset=True).items():
        if value is None:
            raise HTTPException(422, f"{field} cannot be null")
        setattr(store, field, value)
    session.commit()
    return _as(StoreOut, store)


@router.get("/{store_id}/match-audit", response_model=list[MatchAuditOut])
def match_audit(
    store_id: IdPath,
    session: SessionDep,
    _: AdminDep,
    case_id: Annotated[str | None, Query(max_length=100)] = None,
    since: Annotated[str | None, Query(description="ISO 8601 with offset")] = None,
    until: Annotated[str | None, Query(description="ISO 8601 with offset")] = None,
    before_id: Annotated[int | None, Query(ge=1, le=MAX_BIG_ID, description="older than")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_AUDIT_PAGE)] = 100,
) -> list[MatchAuditOut]:
    """The store's person searches, newest first: key, case, reason, time, outcome and result counts."""
    _store(session, store_id)
    try:
        bounds = [parse_timestamp(v, n) if v else None for v, n in ((since, "since"), (until, "until"))]
    except TimeParseError as exc:
        raise HTTPException(422, str(exc)) from exc
    query = AuditQuery(store_id, case_id, bounds[0], bounds[1], before_id, limit)
    return [_as(MatchAuditOut, row) for row in list_searches(session, query)]


@router.post("/{store_id}/zones", status_code=201, response_model=ZoneOut)
def create_zone(store_id: IdPath, body: ZoneIn, session: SessionDep, _: AdminDep) -> ZoneOut:
    """Add a zone; names are unique within a store (409 otherwise)."""
    _store(session, store_id)
    try:
        zone = admin_ops.create_zone(session, store_id, body.name)
        session.commit()
    except IntegrityError as exc:
        session.rollback()
        raise HTTPException(409, f"store {store_id} already has a zone named {body.name!r}") from exc
    return _as(ZoneOut, zone)


@router.get("/{store_id}/zones", response_model=list[ZoneOut])
def list_zones(store_id: IdPath, session: SessionDep, _: AdminDep) -> list[ZoneOut]:
    """A store's zones."""
    _store(session, store_id)
    return [
        _as(ZoneOut, z)
        for z in session.scalars(select(Zone).where(Zone.store_id == store_id).order_by(Zone.id))
    ]


@router.post("/{store_id}/cameras", status_code=201, response_model=CameraOut)
def create_camera(store_id: IdPath, body: CameraIn, session: SessionDep, _: AdminDep) -> CameraOut:
    """Add a camera looking at one of the store's zones."""
    _store(session, store_id)
    zone = session.get(Zone, body.zone_id)
    if zone is None or zone.store_id != store_id:
        raise HTTPException(404, f"zone {body.zone_id} not found in store {store_id}")
    camera = admin_ops.create_camera(session, store_id, zone.id, body.name)
    session.commit()
    return _as(CameraOut, camera)


@router.get("/{store_id}/cameras", response_model=list[CameraOut])
def list_cameras(store_id: IdPath, session: SessionDep, _: AdminDep) -> list[CameraOut]:
    """A store's cameras."""
    _store(session, store_id)
    query = select(Camera).where(Camera.store_id == store_id).order_by(Camera.id)
    return [_as(CameraOut, c) for c in session.scalars(query)]


@router.post("/{store_id}/keys", status_code=201, response_model=NewKeyOut)
def create_key(store_id: IdPath, session: SessionDep, _: AdminDep, body: KeyIn | None = None) -> NewKeyOut:
    """Create a store key; the secret is in this response only and cannot be shown again."""
    _store(session, store_id)
    row, secret = admin_ops.create_key(session, store_id, (body or KeyIn()).name)
    session.commit()
    return NewKeyOut(**_as(KeyOut, row).model_dump(), key=secret)


@router.get("/{store_id}/keys", response_model=list[KeyOut])
def list_keys(store_id: IdPath, session: SessionDep, _: AdminDep) -> list[KeyOut]:
    """A store's keys: prefixes and creation, last-use and revocation times (never secrets or hashes)."""
    _store(session, store_id)
    query = select(ApiKey).where(ApiKey.store_id == store_id).order_by(ApiKey.id)
    return [_as(KeyOut, k) for k in session.scalars(query)]


@router.delete("/{store_id}/keys/{key_id}", status_code=204)
def revoke_key(store_id: IdPath, key_id: IdPath, session: SessionDep, _: AdminDep) -> Response:
    """Revoke a store key: it gets 401 from now on (404 when it is not one of this store's keys)."""
    _store(session, store_id)
    key = session.get(ApiKey, key_id)
    if key is None or key.store_id != store_id:
        raise HTTPException(404, f"key {key_id} not found in store {store_id}")
    if key.revoked_at is None:
        key.revoked_at = datetime.now(UTC)
        session.commit()
    return Response(status_code=204)
