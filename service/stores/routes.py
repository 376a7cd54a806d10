"""Admin endpoints: stores, zones, cameras, store keys and the person-search audit log (admin key only)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Query, Response

from service.common.ids import MAX_BIG_ID
from service.common.text import PlainText
from service.common.timeparse import parse_timestamp
from service.http.deps import AdminDep, IdPath, SessionDep
from service.stores import crud
from service.stores.audit import AuditQuery, list_crop_exports, list_searches, list_store_audit
from service.stores.schemas import (
    CameraIn,
    CameraOut,
    CropExportOut,
    KeyIn,
    KeyOut,
    MatchAuditOut,
    NewKeyOut,
    OverlapsIn,
    StoreAuditOut,
    StoreIn,
    StoreOut,
    StoreUpdate,
    TransitOut,
    TransitsIn,
    ZoneIn,
    ZoneOut,
)

MAX_AUDIT_PAGE = 1000
DEFAULT_KEY = KeyIn()

router = APIRouter(prefix="/stores", tags=["admin"])


@router.post("", status_code=201, response_model=StoreOut)
def create_store(body: StoreIn, session: SessionDep, _: AdminDep) -> StoreOut:
    """Create a store."""
    store = crud.create_store(
        session=session, name=body.name, timezone=body.timezone, match_enabled=body.match_enabled
    )
    return StoreOut.model_validate(store, from_attributes=True)


@router.get("", response_model=list[StoreOut])
def list_stores(session: SessionDep, _: AdminDep) -> list[StoreOut]:
    """All stores."""
    return [StoreOut.model_validate(s, from_attributes=True) for s in crud.list_stores(session=session)]


@router.get("/{store_id}", response_model=StoreOut)
def get_store(store_id: IdPath, session: SessionDep, _: AdminDep) -> StoreOut:
    """One store."""
    return StoreOut.model_validate(crud.read_store(session=session, store_id=store_id), from_attributes=True)


@router.patch("/{store_id}", response_model=StoreOut)
def update_store(store_id: IdPath, body: StoreUpdate, session: SessionDep, _: AdminDep) -> StoreOut:
    """Rename a store, change its time zone, enable or disable person search (/match) or crop keeping."""
    changes = body.model_dump(exclude_unset=True)
    store = crud.update_store(session=session, store_id=store_id, changes=changes)
    return StoreOut.model_validate(store, from_attributes=True)


@router.get("/{store_id}/match-audit", response_model=list[MatchAuditOut])
def match_audit(
    store_id: IdPath,
    session: SessionDep,
    _: AdminDep,
    case_id: Annotated[PlainText | None, Query(max_length=100)] = None,
    since: Annotated[str | None, Query(description="ISO 8601 with offset")] = None,
    until: Annotated[str | None, Query(description="ISO 8601 with offset")] = None,
    before_id: Annotated[int | None, Query(ge=1, le=MAX_BIG_ID, description="older than")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_AUDIT_PAGE)] = 100,
) -> list[MatchAuditOut]:
    """The store's person searches, newest first: key, case, reason, time, outcome and result counts."""
    query = AuditQuery(
        store_id,
        case_id,
        parse_timestamp(since, "since") if since else None,
        parse_timestamp(until, "until") if until else None,
        before_id,
        limit,
    )
    rows = list_searches(session=session, query=query)
    return [MatchAuditOut.model_validate(row, from_attributes=True) for row in rows]


@router.get("/{store_id}/crop-exports", response_model=list[CropExportOut])
def crop_exports(
    store_id: IdPath,
    session: SessionDep,
    _: AdminDep,
    before_id: Annotated[int | None, Query(ge=1, le=MAX_BIG_ID, description="older than")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_AUDIT_PAGE)] = 100,
) -> list[CropExportOut]:
    """The store's crop exports (`reid-admin export-crops`), newest first: who, when, window, outcome."""
    rows = list_crop_exports(session=session, store_id=store_id, before_id=before_id, limit=limit)
    return [CropExportOut.model_validate(row, from_attributes=True) for row in rows]


@router.get("/{store_id}/audit", response_model=list[StoreAuditOut])
def store_audit(
    store_id: IdPath,
    session: SessionDep,
    _: AdminDep,
    action: Annotated[PlainText | None, Query(max_length=32, description="e.g. staff-enrol")] = None,
    before_id: Annotated[int | None, Query(ge=1, le=MAX_BIG_ID, description="older than")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_AUDIT_PAGE)] = 100,
) -> list[StoreAuditOut]:
    """The store's analytics audit, newest first: staff enrolment and changes, returning-shopper reports
    (and refusals) and turning them on or off: who, when, what."""
    rows = list_store_audit(
        session=session, store_id=store_id, action=action, before_id=before_id, limit=limit
    )
    return [StoreAuditOut.model_validate(row, from_attributes=True) for row in rows]


@router.post("/{store_id}/zones", status_code=201, response_model=ZoneOut)
def create_zone(store_id: IdPath, body: ZoneIn, session: SessionDep, _: AdminDep) -> ZoneOut:
    """Add a zone; names are unique within a store (409 otherwise)."""
    zone = crud.create_zone(session=session, store_id=store_id, name=body.name)
    return ZoneOut.model_validate(zone, from_attributes=True)


@router.get("/{store_id}/zones", response_model=list[ZoneOut])
def list_zones(store_id: IdPath, session: SessionDep, _: AdminDep) -> list[ZoneOut]:
    """A store's zones."""
    zones = crud.list_zones(session=session, store_id=store_id)
    return [ZoneOut.model_validate(z, from_attributes=True) for z in zones]


@router.post("/{store_id}/cameras", status_code=201, response_model=CameraOut)
def create_camera(store_id: IdPath, body: CameraIn, session: SessionDep, _: AdminDep) -> CameraOut:
    """Add a camera looking at one of the store's zones."""
    camera = crud.create_camera(session=session, store_id=store_id, zone_id=body.zone_id, name=body.name)
    return CameraOut.model_validate(camera, from_attributes=True)


@router.get("/{store_id}/cameras", response_model=list[CameraOut])
def list_cameras(store_id: IdPath, session: SessionDep, _: AdminDep) -> list[CameraOut]:
    """A store's cameras."""
    cameras = crud.list_cameras(session=session, store_id=store_id)
    return [CameraOut.model_validate(c, from_attributes=True) for c in cameras]


@router.put("/{store_id}/cameras/{camera_id}/overlaps", response_model=CameraOut)
def set_overlaps(
    store_id: IdPath, camera_id: IdPath, body: OverlapsIn, session: SessionDep, _: AdminDep
) -> CameraOut:
    """Mark which cameras see the same space as this one (replaces the earlier list; kept symmetric)."""
    camera = crud.set_overlaps(
        session=session, store_id=store_id, camera_id=camera_id, others=body.camera_ids
    )
    return CameraOut.model_validate(camera, from_attributes=True)


@router.get("/{store_id}/transit-times", response_model=list[TransitOut])
def list_transits(store_id: IdPath, session: SessionDep, _: AdminDep) -> list[TransitOut]:
    """The least walking time between zone pairs (others use REID_MIN_TRANSIT_S)."""
    transits = crud.list_transits(session=session, store_id=store_id)
    return [TransitOut.model_validate(t, from_attributes=True) for t in transits]


@router.put("/{store_id}/transit-times", response_model=list[TransitOut])
def set_transits(store_id: IdPath, body: TransitsIn, session: SessionDep, _: AdminDep) -> list[TransitOut]:
    """Replace the store's zone-pair transit times: linking never puts one person in two zones faster."""
    wanted = [crud.Transit(t.zone_ids, t.min_seconds) for t in body.transits]
    transits = crud.set_transits(session=session, store_id=store_id, transits=wanted)
    return [TransitOut.model_validate(t, from_attributes=True) for t in transits]


@router.post("/{store_id}/keys", status_code=201, response_model=NewKeyOut)
def create_key(
    store_id: IdPath, session: SessionDep, _: AdminDep, body: Annotated[KeyIn, Body()] = DEFAULT_KEY
) -> NewKeyOut:
    """Create a store key; the secret is in this response only and cannot be shown again.

    The body is optional: without one the key is named ``default``.
    """
    new = crud.create_key(session=session, store_id=store_id, name=body.name)
    return NewKeyOut(**KeyOut.model_validate(new.row, from_attributes=True).model_dump(), key=new.secret)


@router.get("/{store_id}/keys", response_model=list[KeyOut])
def list_keys(store_id: IdPath, session: SessionDep, _: AdminDep) -> list[KeyOut]:
    """A store's keys: prefixes and creation, last-use and revocation times (never secrets or hashes)."""
    return [
        KeyOut.model_validate(k, from_attributes=True)
        for k in crud.list_keys(session=session, store_id=store_id)
    ]


@router.delete("/{store_id}/keys/{key_id}", status_code=204)
def revoke_key(store_id: IdPath, key_id: IdPath, session: SessionDep, _: AdminDep) -> Response:
    """Revoke a store key: it gets 401 from now on (404 when it is not one of this store's keys)."""
    crud.revoke_key(session=session, store_id=store_id, key_id=key_id)
    return Response(status_code=204)
