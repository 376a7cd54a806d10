"""SQLAlchemy ORM models: stores, zones, cameras, API keys, visitors, sightings, crops, erasures, audit,
linking rules (overlapping cameras, zone transit times), the log of re-linking changes, staff, the store
analytics audit and the density summary (per zone and local day, with the marks that invalidate it)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

BigId = BigInteger().with_variant(Integer(), "sqlite")
NEVER_REUSE_IDS = {"sqlite_autoincrement": True}


class Base(DeclarativeBase):
    """Declarative base of the service's schema (created only by Alembic migrations)."""


class Store(Base):
    """A shop; its time zone aligns density buckets, and person search is off until the admin enables it."""

    __tablename__ = "stores"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    timezone: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ingest_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    match_enabled: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    match_threshold: Mapped[float | None] = mapped_column(Float, nullable=True)
    keep_crops: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    returning_enabled: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class Zone(Base):
    """An area of a store (entrance, tills, toys, ...)."""

    __tablename__ = "zones"
    __table_args__ = (Index("ix_zones_store_name", "store_id", "name", unique=True),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("stores.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))


class Camera(Base):
    """A camera, which looks at exactly one zone."""

    __tablename__ = "cameras"
    __table_args__ = (Index("ix_cameras_store", "store_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("stores.id", ondelete="CASCADE"))
    zone_id: Mapped[int] = mapped_column(ForeignKey("zones.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))


class ApiKey(Base):
    """A store key: SHA-256 of the secret, lookup prefix, last use and revocation; the secret is not kept."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("stores.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    prefix: Mapped[str] = mapped_column(String(32), unique=True)
    key_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class Visitor(Base):
    """One shopper: the sightings linked together by appearance within the visitor time window; a
    visitor that resembles an enrolled staff member carries its ``staff_id`` and is left out of counts."""

    __tablename__ = "visitors"
    __table_args__ = (
        Index("ix_visitors_store", "store_id"),
        Index("ix_visitors_store_staff", "store_id", "staff_id"),
        NEVER_REUSE_IDS,
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("stores.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    staff_id: Mapped[int | None] = mapped_column(Integer, nullable=True)  # a StaffMember: not counted


class Sighting(Base):
    """One person crop seen by one camera, with its embedding (float32 bytes) and model version."""

    __tablename__ = "sightings"
    __table_args__ = (
        Index("ix_sightings_store_captured_zone_visitor", "store_id", "captured_ms", "zone_id", "visitor_id"),
        Index("ix_sightings_store_id", "store_id", "id"),
        Index("ix_sightings_store_zone_captured", "store_id", "zone_id", "captured_ms"),
        Index("ix_sightings_visitor", "visitor_id", "captured_ms"),
        Index("ix_sightings_camera_track", "camera_id", "track_id", "captured_ms"),
        NEVER_REUSE_IDS,
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("stores.id", ondelete="CASCADE"))
    zone_id: Mapped[int] = mapped_column(ForeignKey("zones.id", ondelete="CASCADE"))
    camera_id: Mapped[int] = mapped_column(ForeignKey("cameras.id", ondelete="CASCADE"))
    visitor_id: Mapped[int] = mapped_column(BigId, ForeignKey("visitors.id", ondelete="CASCADE"))
    captured_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    captured_ms: Mapped[int] = mapped_column(BigInteger)
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    similarity: Mapped[float | None] = mapped_column(Float, nullable=True)
    model_version: Mapped[str] = mapped_column(String(64))
    embedding: Mapped[bytes] = mapped_column(LargeBinary)
    track_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    link_rule: Mapped[str | None] = mapped_column(String(16), nullable=True)
    link_runner_up: Mapped[float | None] = mapped_column(Float, nullable=True)


class SightingCrop(Base):
    """The uploaded image of a sighting, kept only when ``REID_STORE_CROPS`` asks for it."""

    __tablename__ = "sighting_crops"

    sighting_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("sightings.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    content_type: Mapped[str] = mapped_column(String(32))
    data: Mapped[bytes] = mapped_column(LargeBinary)


class DeletedSighting(Base):
    """A tombstone of an erased sighting, so every replica drops it from its index."""

    __tablename__ = "deleted_sightings"
    __table_args__ = (Index("ix_deleted_sightings_store_id", "store_id", "id"), NEVER_REUSE_IDS)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("stores.id", ondelete="CASCADE"))
    sighting_id: Mapped[int] = mapped_column(BigInteger)
    deleted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class MatchAudit(Base):
    """One person search (``/match``): who asked, for which case, when, and how much it returned."""

    __tablename__ = "match_audit"
    __table_args__ = (Index("ix_match_audit_store_time", "store_id", "requested_at"), NEVER_REUSE_IDS)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("stores.id", ondelete="CASCADE"))
    key_id: Mapped[int | None] = mapped_column(ForeignKey("api_keys.id", ondelete="SET NULL"), nullable=True)
    key_prefix: Mapped[str] = mapped_column(String(32))
    case_id: Mapped[str | None] = mapped_column(String(100), nullable=True)
    reason: Mapped[str | None] = mapped_column(String(500), nullable=True)
    requested_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    outcome: Mapped[str] = mapped_column(String(16))
    results: Mapped[int] = mapped_column(Integer)
    visitors: Mapped[int] = mapped_column(Integer)


class CropExport(Base):
    """One ``reid-admin export-crops`` run: for which store and window, who ran it, and how many crops."""

    __tablename__ = "crop_exports"
    __table_args__ = (Index("ix_crop_exports_store_time", "store_id", "requested_at"), NEVER_REUSE_IDS)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("stores.id", ondelete="CASCADE"))
    requested_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    requested_by: Mapped[str] = mapped_column(String(200))
    since: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    until: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    outcome: Mapped[str] = mapped_column(String(16))
    crops: Mapped[int] = mapped_column(Integer)


class RateBucket(Base):
    """A key's token bucket when rate limits are shared between replicas (``REID_RATE_LIMIT_BACKEND``)."""

    __tablename__ = "rate_buckets"

    bucket: Mapped[str] = mapped_column(String(64), primary_key=True)
    tokens: Mapped[float] = mapped_column(Float)
    updated_ms: Mapped[int] = mapped_column(BigInteger)


class CameraOverlap(Base):
    """Two cameras that see overlapping space: one person may be on both at the same time."""

    __tablename__ = "camera_overlaps"

    store_id: Mapped[int] = mapped_column(ForeignKey("stores.id", ondelete="CASCADE"), index=True)
    camera_id: Mapped[int] = mapped_column(ForeignKey("cameras.id", ondelete="CASCADE"), primary_key=True)
    other_camera_id: Mapped[int] = mapped_column(
        ForeignKey("cameras.id", ondelete="CASCADE"), primary_key=True
    )


class ZoneTransit(Base):
    """The least time anyone takes to walk between two zones (both directions)."""

    __tablename__ = "zone_transits"

    store_id: Mapped[int] = mapped_column(ForeignKey("stores.id", ondelete="CASCADE"), index=True)
    zone_id: Mapped[int] = mapped_column(ForeignKey("zones.id", ondelete="CASCADE"), primary_key=True)
    other_zone_id: Mapped[int] = mapped_column(ForeignKey("zones.id", ondelete="CASCADE"), primary_key=True)
    min_seconds: Mapped[float] = mapped_column(Float)


class LinkEvent(Base):
    """A re-linking change: sightings moved to another visitor (merge) or to a new one (split)."""

    __tablename__ = "link_events"
    __table_args__ = (Index("ix_link_events_store_id", "store_id", "id"), NEVER_REUSE_IDS)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("stores.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))
    visitor_id: Mapped[int] = mapped_column(BigInteger)
    from_visitor_id: Mapped[int] = mapped_column(BigInteger)
    sightings: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class StaffMember(Base):
    """Someone who works in the store: their visitors are left out of density, flows and occupancy.

    Enrolment keeps only the sum of the enrolment embeddings (``prototype``, float32 bytes) of one model
    version; their mean is what a visitor is compared with. Photos are kept (``staff_photos``) only when
    ``REID_STORE_CROPS`` is on.
    """

    __tablename__ = "staff"
    __table_args__ = (Index("ix_staff_store_name", "store_id", "name", unique=True), NEVER_REUSE_IDS)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("stores.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    source: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    model_version: Mapped[str] = mapped_column(String(64))
    prototype: Mapped[bytes] = mapped_column(LargeBinary)
    enrolled: Mapped[int] = mapped_column(Integer)


class StaffPhoto(Base):
    """An enrolment photo of a staff member, kept only when ``REID_STORE_CROPS`` asks for it."""

    __tablename__ = "staff_photos"
    __table_args__ = (Index("ix_staff_photos_staff", "staff_id"), NEVER_REUSE_IDS)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff.id", ondelete="CASCADE"))
    content_type: Mapped[str] = mapped_column(String(32))
    data: Mapped[bytes] = mapped_column(LargeBinary)


class StoreAudit(Base):
    """One audited act on a store's people data besides person search: staff enrolment and changes,
    returning-shopper reports (asked for or refused) and turning them on or off."""

    __tablename__ = "store_audit"
    __table_args__ = (Index("ix_store_audit_store_id", "store_id", "id"), NEVER_REUSE_IDS)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("stores.id", ondelete="CASCADE"))
    action: Mapped[str] = mapped_column(String(32))
    outcome: Mapped[str] = mapped_column(String(16))
    key_id: Mapped[int | None] = mapped_column(ForeignKey("api_keys.id", ondelete="SET NULL"), nullable=True)
    key_prefix: Mapped[str] = mapped_column(String(32))
    staff_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    visitor_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    detail: Mapped[str | None] = mapped_column(String(500), nullable=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class DensityDay(Base):
    """Density of one zone over one local day, as ``GET /density`` computes it: a summary, recomputed
    whenever a ``DensityMark`` overlaps it (or the gap, the staff choice or the day's edges differ)."""

    __tablename__ = "density_days"

    store_id: Mapped[int] = mapped_column(ForeignKey("stores.id", ondelete="CASCADE"), primary_key=True)
    start_ms: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    end_ms: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    gap_ms: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    include_staff: Mapped[bool] = mapped_column(Boolean, primary_key=True)
    zone_id: Mapped[int] = mapped_column(
        ForeignKey("zones.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    unique_visitors: Mapped[int] = mapped_column(Integer)
    sightings: Mapped[int] = mapped_column(Integer)
    entries: Mapped[int] = mapped_column(Integer)
    dwell_ms: Mapped[int] = mapped_column(BigInteger)
    present_ms: Mapped[int] = mapped_column(BigInteger)
    occupancy_max: Mapped[int] = mapped_column(Integer)
    crossing: Mapped[str] = mapped_column(Text)  # ids of visitors also seen in the zone on another day


class DensityMark(Base):
    """UTC days (epoch day numbers) whose density summaries are out of date: written by database
    triggers on every change of a sighting (insert, delete, move to another visitor) and of a visitor's
    staff flag, over the whole span of the visitors concerned; bumped, never lost, while a reader
    consumes it."""

    __tablename__ = "density_marks"

    store_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    lo_day: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    hi_day: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    version: Mapped[int] = mapped_column(BigInteger)


class DensityEpoch(Base):
    """How many times a store's density marks were consumed: a summary computed before a consumption it
    did not see is not stored."""

    __tablename__ = "density_epochs"

    store_id: Mapped[int] = mapped_column(
        ForeignKey("stores.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    epoch: Mapped[int] = mapped_column(BigInteger)
