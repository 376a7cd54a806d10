"""Request and response bodies of the admin endpoints."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BaseModel, Field

from service.common.ids import MAX_ID
from service.common.timeparse import as_utc

UtcDatetime = Annotated[datetime, AfterValidator(as_utc)]
RowId = Annotated[int, Field(ge=1, le=MAX_ID, description="a row id (32-bit, positive)")]


def known_zone(value: str) -> str:
    """Refuse time zones that zoneinfo does not know."""
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {value!r}") from exc
    return value


TimeZoneName = Annotated[str, AfterValidator(known_zone)]


class StoreIn(BaseModel):
    """A store to create."""

    name: str = Field(min_length=1, max_length=200)
    timezone: TimeZoneName = Field("UTC", description="IANA time zone name, e.g. Europe/Berlin")
    match_enabled: bool = Field(False, description="allow person search (/match) for this store")


class StoreUpdate(BaseModel):
    """Changes to a store; fields left out stay as they are."""

    name: str | None = Field(None, min_length=1, max_length=200)
    timezone: TimeZoneName | None = Field(None, description="IANA time zone name")
    match_enabled: bool | None = Field(None, description="allow person search (/match) for this store")


class StoreOut(BaseModel):
    """A store."""

    id: int
    name: str
    timezone: str
    created_at: UtcDatetime
    match_enabled: bool


class ZoneIn(BaseModel):
    """A zone to create."""

    name: str = Field(min_length=1, max_length=200)


class ZoneOut(BaseModel):
    """A zone."""

    id: int
    store_id: int
    name: str


class CameraIn(BaseModel):
    """A camera to create, looking at one zone of the store."""

    name: str = Field(min_length=1, max_length=200)
    zone_id: RowId


class CameraOut(BaseModel):
    """A camera."""

    id: int
    store_id: int
    zone_id: int
    name: str


class KeyIn(BaseModel):
    """A store key to create."""

    name: str = Field("default", min_length=1, max_length=200)


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
