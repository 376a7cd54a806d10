"""Request and response bodies of the admin endpoints."""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from pydantic import AfterValidator, BaseModel, Field

from service.common.ids import MAX_ID
from service.common.text import PlainText
from service.common.timeparse import as_utc

UtcDatetime = Annotated[datetime, AfterValidator(as_utc)]
RowId = Annotated[int, Field(ge=1, le=MAX_ID, description="a row id (32-bit, positive)")]


@lru_cache(maxsize=1)
def _zone_names() -> frozenset[str]:
    return frozenset(available_timezones())


def known_zone(value: str) -> str:
    """Refuse time zones that zoneinfo does not know, folders of the database (``America``) included."""
    if value not in _zone_names():
        raise ValueError(f"unknown time zone {value[:100]!r}; use an IANA name like Europe/Berlin")
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
        raise ValueError(f"unknown time zone {value[:100]!r}") from exc
    return value


TimeZoneName = Annotated[str, AfterValidator(known_zone)]


class StoreIn(BaseModel):
    """A store to create."""

    name: PlainText = Field(min_length=1, max_length=200)
    timezone: TimeZoneName = Field("UTC", description="IANA time zone name, e.g. Europe/Berlin")
    match_enabled: bool = Field(False, description="allow person search (/match) for this store")


class StoreUpdate(BaseModel):
    """Changes to a store; fields left out stay as they are."""

    name: PlainText | None = Field(None, min_length=1, max_length=200)
    timezone: TimeZoneName | None = Field(None, description="IANA time zone name")
    match_enabled: bool | None = Field(None, description="allow person search (/match) for this store")
    match_threshold: float | None = Field(
        None,
        ge=-1.0,
        le=1.0,
        description="this store's linking threshold (from `reid-admin calibrate`); null: the service default",
    )
    keep_crops: bool | None = Field(
        None,
        description="keep this store's uploaded crops (for `reid-admin export-crops` and adaptation); "
        "REID_STORE_CROPS=true keeps every store's",
    )
    returning_enabled: bool | None = Field(
        None,
        description="allow returning-shopper reports (/returning): links visitors across days by appearance; "
        "turning it on or off is audited",
    )


class StoreOut(BaseModel):
    """A store."""

    id: int
    name: str
    timezone: str
    created_at: UtcDatetime
    match_enabled: bool
    match_threshold: float | None = Field(None, description="the store's own linking threshold, if set")
    keep_crops: bool = Field(False, description="the store's uploaded crops are kept (and may be exported)")
    returning_enabled: bool = Field(False, description="returning-shopper reports (/returning) are allowed")


class ZoneIn(BaseModel):
    """A zone to create."""

    name: PlainText = Field(min_length=1, max_length=200)


class ZoneOut(BaseModel):
    """A zone."""

    id: int
    store_id: int
    name: str


class CameraIn(BaseModel):
    """A camera to create, looking at one zone of the store."""

    name: PlainText = Field(min_length=1, max_length=200)
    zone_id: RowId


class CameraOut(BaseModel):
    """A camera, and the cameras whose views overlap its own."""

    id: int
    store_id: int
    zone_id: int
    name: str
    overlaps: list[int] = Field(default_factory=list, description="ids of cameras that see the same space")


class OverlapsIn(BaseModel):
    """The cameras whose views overlap this one's: one person may be on both at the same time."""

    camera_ids: list[RowId] = Field(max_length=1000)


class TransitIn(BaseModel):
    """The least time anyone takes between two zones (either direction)."""

    zone_ids: tuple[RowId, RowId]
    min_seconds: float = Field(ge=0, le=86400)


class TransitsIn(BaseModel):
    """Every zone-pair transit time of a store (replaces the earlier ones)."""

    transits: list[TransitIn] = Field(max_length=10000)


class TransitOut(BaseModel):
    """A zone-pair transit time."""

    zone_ids: tuple[int, int]
    min_seconds: float


class KeyIn(BaseModel):
    """A store key to create."""

    name: PlainText = Field("default", min_length=1, max_length=200)


class KeyOut(BaseModel):
    """A store key's public part."""

    id: int
    store_id: int
    name: str
    prefix: str
    created_at: UtcDatetime
    last_used_at: UtcDatetime | None = None
    revoked_at: UtcDatetime | None = None


class NewKeyOut(KeyOut):
    """A newly created key; ``key`` is shown only this once."""

    key: str


class MatchAuditOut(BaseModel):
    """One audited person search."""

    id: int
    store_id: int
    key_id: int | None
    key_prefix: str
    case_id: str | None
    reason: str | None
    requested_at: UtcDatetime
    outcome: str = Field(description="ok, or refused when person search was not enabled")
    results: int
    visitors: int


class CropExportOut(BaseModel):
    """One audited export of a store's crops (``reid-admin export-crops``)."""

    id: int
    store_id: int
    requested_at: UtcDatetime
    requested_by: str = Field(description="who ran it: the operating-system user and host")
    since: UtcDatetime
    until: UtcDatetime
    outcome: str = Field(description="ok, or refused when the store does not keep crops")
    crops: int = Field(description="crops written")


class StoreAuditOut(BaseModel):
    """One audited act on the store's people data: staff enrolment and changes, returning-shopper reports
    (or their refusal) and turning them on or off."""

    id: int
    store_id: int
    action: str = Field(
        description="staff-enrol, staff-mark, staff-rename, staff-delete, returning-report, returning-on, "
        "returning-off"
    )
    outcome: str = Field(description="ok, or refused (returning shoppers not enabled)")
    key_id: int | None
    key_prefix: str = Field(description="the store key's public prefix, or admin")
    staff_id: int | None
    visitor_id: int | None
    detail: str | None
    at: UtcDatetime
