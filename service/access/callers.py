"""Turning a presented API key into a caller: the admin, or a store key with its store."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from service.access.keys import key_prefix, matches_admin, matches_hash
from service.access.rate_limit import RateLimiter
from service.common.errors import RateLimitedError, UnauthenticatedError
from service.common.timeparse import as_utc
from service.storage.models import ApiKey, Store

ADMIN_BUCKET = "admin"
LAST_USED_EVERY = timedelta(minutes=1)
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Caller:
    """Who is calling: the admin, or a store key (its id, public prefix and store)."""

    admin: bool
    store: Store | None = None
    key_id: int | None = None
    key_prefix: str | None = None


@dataclass(frozen=True)
class KeyCheck:
    """What authentication needs: the admin key (if any), the database and the rate limiter."""

    admin_key: str | None
    sessions: sessionmaker[Session]
    limiter: RateLimiter
    per_minute: int


def _check_rate(check: KeyCheck, bucket: str) -> None:
    """RateLimitedError when ``bucket`` has spent its requests for now."""
    wait = check.limiter.take(bucket)
    if wait:
        raise RateLimitedError(
            f"rate limit exceeded ({check.per_minute} requests a minute per key); retry in {wait} s", wait
        )


def _record_use(session: Session, row: ApiKey) -> None:
    """Set ``last_used_at``, at most once per ``LAST_USED_EVERY`` per key; a failed write only logs."""
    now = datetime.now(UTC)
    if row.last_used_at is not None and now - as_utc(row.last_used_at) < LAST_USED_EVERY:
        return
    try:
        session.execute(update(ApiKey).where(ApiKey.id == row.id).values(last_used_at=now))
        session.commit()
    except SQLAlchemyError:
        session.rollback()
        log.warning("could not record the use of API key %d", row.id, exc_info=True)


def _store_caller(check: KeyCheck, key: str) -> Caller:
    prefix = key_prefix(key)
    if prefix is None:
        raise UnauthenticatedError("invalid API key")
    with check.sessions() as session:
        row = session.scalar(select(ApiKey).where(ApiKey.prefix == prefix))
        if row is None or not matches_hash(key, row.key_hash):
            raise UnauthenticatedError("invalid API key")
        if row.revoked_at is not None:
            raise UnauthenticatedError("API key revoked")
        _check_rate(check, f"key:{row.id}")
        store = session.get(Store, row.store_id)
        _record_use(session, row)
        return Caller(admin=False, store=store, key_id=row.id, key_prefix=row.prefix)


def authenticate(check: KeyCheck, key: str | None) -> Caller:
    """The caller of ``key``: refused when missing, unknown or revoked, or when over its rate limit."""
    if not key:
        raise UnauthenticatedError("missing X-API-Key header")
    if check.admin_key is not None and matches_admin(key, check.admin_key):
        _check_rate(check, ADMIN_BUCKET)
        return Caller(admin=True)
    return _store_caller(check, key)
