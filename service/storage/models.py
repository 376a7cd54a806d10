"""SQLAlchemy ORM models: stores, zones, cameras, API keys, visitors, sightings, crops, erasures and audit."""

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
    """One shopper: the sightings linked together by appearance within the visitor time window."""

    __tablename__ = "visitors"
    __table_args__ = (Index("ix_visitors_store", "store_id"), NEVER_REUSE_IDS)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("stores.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Sighting(Base):
    """One person crop seen by one camera, with its embedding (float32 bytes) and model version."""

    __tablename__ = "sightings"
    __table_args__ = (
        Index("ix_sightings_store_captured", "store_id", "captured_ms"),
        Index("ix_sightings_store_id", "store_id", "id"),
        Index("ix_sightings_store_zone_captured", "store_id", "zone_id", "captured_ms"),
        Index("ix_sightings_visitor", "visitor_id", "captured_ms"),
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


class RateBucket(Base):
    """A key's token bucket when rate limits are shared between replicas (``REID_RATE_LIMIT_BACKEND``)."""

    __tablename__ = "rate_buckets"

    bucket: Mapped[str] = mapped_column(String(64), primary_key=True)
    tokens: Mapped[float] = mapped_column(Float)
    updated_ms: Mapped[int] = mapped_column(BigInteger)
