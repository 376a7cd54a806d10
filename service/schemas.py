"""Request and response bodies of the API."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BaseModel, Field

MAX_ID = 2**31 - 1
MAX_BIG_ID = 2**63 - 1


def as_utc(value: datetime) -> datetime:
    """Timestamps read back from SQLite are naive UTC; make every one aware."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


UtcDatetime = Annotated[datetime, AfterValidator(as_utc)]
RowId = Annotated[int, Field(ge=1, le=MAX_ID, description="a row id (32-bit, positive)")]


class ErrorOut(BaseModel):
    """An error: a message, or FastAPI's list of validation errors for malformed requests."""

    detail: str | list[dict[str, Any]]


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorOut, "description": description}
    for status, description in [
        (401, "Missing, unknown or revoked API key"),
        (403, "The key's role may not call this endpoint"),
        (404, "Not found in the caller's store"),
        (413, "Request body too large"),
        (422, "Invalid request"),
        (429, "Rate limit exceeded"),
        (503, "Database unavailable"),
    ]
}


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


class EmbedOut(BaseModel):
    """Embeddings of the uploaded images, in upload order."""

    model: str
    dim: int
    embeddings: list[list[float]]


class SightingOut(BaseModel):
    """The outcome of one posted image."""

    sighting_id: int
    visitor_id: int
    new_visitor: bool
    similarity: float | None = Field(
        description="similarity to the matched visitor's best sighting; null if new"
    )
    captured_at: datetime


class SightingsOut(BaseModel):
    """The outcome of a batch of posted images, in upload order."""

    model: str
    sightings: list[SightingOut]


class MatchOut(BaseModel):
    """One sighting similar to the query photo."""

    sighting_id: int
    visitor_id: int
    zone_id: int
    camera_id: int
    captured_at: datetime
    similarity: float


class LastSeenOut(BaseModel):
    """Where and when a matched visitor was last seen."""

    visitor_id: int
    zone_id: int
    zone_name: str
    camera_id: int
    captured_at: datetime
    best_similarity: float


class MatchesOut(BaseModel):
    """Ranked matches and, per visitor, their last sighting."""

    model: str
    matches: list[MatchOut]
    visitors: list[LastSeenOut]


class DensityBucketOut(BaseModel):
    """Density of one zone in one bucket."""

    start: datetime
    end: datetime
    unique_visitors: int
    sightings: int
    entries: int
    mean_dwell_s: float | None
    occupancy_mean: float
    occupancy_max: int


class DensityTotalsOut(BaseModel):
    """Density of one zone over the whole window (unique visitors are not a sum over buckets)."""

    unique_visitors: int
    sightings: int
    entries: int
    mean_dwell_s: float | None
    occupancy_mean: float
    occupancy_max: int


class ZoneDensityOut(BaseModel):
    """A zone's buckets and totals."""

    zone_id: int
    name: str
    buckets: list[DensityBucketOut]
    totals: DensityTotalsOut


class DensityOut(BaseModel):
    """Density per zone for a store."""

    store_id: int
    timezone: str
    start: datetime
    end: datetime
    bucket_s: float
    gap_s: float
    zones: list[ZoneDensityOut]


class VisitorDeleted(BaseModel):
    """What a visitor erasure removed."""

    visitor_id: int
    sightings_deleted: int


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
