"""Request dependencies: app state, database sessions, API-key authentication and rate limits."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import Depends, HTTPException, Path, Request, Security
from fastapi.security import APIKeyHeader
from sqlalchemy import select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from service.core.security import key_prefix, matches_admin, matches_hash
from service.models import ApiKey, Store
from service.schemas import MAX_BIG_ID, MAX_ID, as_utc
from service.state import AppState

ADMIN_BUCKET = "admin"
LAST_USED_EVERY = timedelta(minutes=1)
log = logging.getLogger(__name__)

api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="Admin key or store key")


@dataclass(frozen=True)
class Caller:
    """Who is calling: the admin, or a store key (its id, public prefix and store)."""

    admin: bool
    store: Store | None = None
    key_id: int | None = None
    key_prefix: str | None = None


def get_state(request: Request) -> AppState:
    """The app's services."""
    return request.app.state.services


def get_session(state: Annotated[AppState, Depends(get_state)]) -> Iterator[Session]:
    """A database session for one synchronous request, committed by the route when it writes."""
    with state.sessions() as session:
        yield session


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(401, detail, headers={"WWW-Authenticate": "APIKey"})


def _check_rate(state: AppState, bucket: str) -> None:
    """429 with ``Retry-After`` when ``bucket`` has spent its requests for now."""
    wait = state.limiter.take(bucket)
    if wait:
        limit = state.settings.rate_limit_per_minute
        detail = f"rate limit exceeded ({limit} requests a minute per key); retry in {wait} s"
        raise HTTPException(429, detail, headers={"Retry-After": str(wait)})


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


def _store_caller(state: AppState, key: str) -> Caller:
    """The store of a store key: 401 when unknown or revoked, 429 over its rate limit."""
    prefix = key_prefix(key)
    if prefix is None:
        raise _unauthorized("invalid API key")
    with state.sessions() as session:
        row = session.scalar(select(ApiKey).where(ApiKey.prefix == prefix))
        if row is None or not matches_hash(key, row.key_hash):
            raise _unauthorized("invalid API key")
        if row.revoked_at is not None:
            raise _unauthorized("API key revoked")
        _check_rate(state, f"key:{row.id}")
        store = session.get(Store, row.store_id)
        _record_use(session, row)
        return Caller(admin=False, store=store, key_id=row.id, key_prefix=row.prefix)


def get_caller(
    state: Annotated[AppState, Depends(get_state)],
    key: Annotated[str | None, Security(api_key_header)] = None,
) -> Caller:
    """Authenticate ``X-API-Key`` (401 when missing, unknown or revoked; 429 over the key's rate limit)."""
    if not key:
        raise _unauthorized("missing X-API-Key header")
    admin = state.settings.admin_key
    if admin is not None and matches_admin(key, admin.get_secret_value()):
        _check_rate(state, ADMIN_BUCKET)
        return Caller(admin=True)
    return _store_caller(state, key)


def require_admin(caller: Annotated[Caller, Depends(get_caller)]) -> Caller:
    """403 unless the caller holds the admin key."""
    if not caller.admin:
        raise HTTPException(403, "this endpoint needs the admin key")
    return caller


def require_store_caller(caller: Annotated[Caller, Depends(get_caller)]) -> Caller:
    """403 unless the caller holds a store key; returns the caller."""
    if caller.store is None:
        raise HTTPException(403, "this endpoint needs a store key (the admin key is not bound to a store)")
    return caller


def require_store(caller: Annotated[Caller, Depends(require_store_caller)]) -> Store:
    """403 unless the caller holds a store key; returns that store."""
    return caller.store


IdPath = Annotated[int, Path(ge=1, le=MAX_ID)]
BigIdPath = Annotated[int, Path(ge=1, le=MAX_BIG_ID)]
StateDep = Annotated[AppState, Depends(get_state)]
SessionDep = Annotated[Session, Depends(get_session)]
AdminDep = Annotated[Caller, Depends(require_admin)]
StoreDep = Annotated[Store, Depends(require_store)]
StoreCallerDep = Annotated[Caller, Depends(require_store_caller)]
AnyKeyDep = Annotated[Caller, Depends(get_caller)]


def find_in_store(state: AppState, kind: type, item_id: int, store: Store):
    """A zone or camera of the caller's store, or 404 (short session; the row comes back detached)."""
    with state.sessions() as session:
        row = session.get(kind, item_id)
    if row is None or row.store_id != store.id:
        raise HTTPException(404, f"{kind.__name__.lower()} {item_id} not found in store {store.id}")
    return row
