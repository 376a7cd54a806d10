"""Request dependencies: app state, database sessions and API-key authentication."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Request, Security
from fastapi.security import APIKeyHeader
from sqlalchemy import select
from sqlalchemy.orm import Session

from service.core.security import key_prefix, matches_admin, matches_hash
from service.models import ApiKey, Store
from service.state import AppState

api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="Admin key or store key")


@dataclass(frozen=True)
class Caller:
    """Who is calling: the admin, or a store key's store."""

    admin: bool
    store: Store | None = None


def get_state(request: Request) -> AppState:
    """The app's services."""
    return request.app.state.services


def get_session(state: Annotated[AppState, Depends(get_state)]) -> Iterator[Session]:
    """A database session for one synchronous request, committed by the route when it writes."""
    with state.sessions() as session:
        yield session


def get_caller(
    state: Annotated[AppState, Depends(get_state)],
    key: Annotated[str | None, Security(api_key_header)] = None,
) -> Caller:
    """Authenticate ``X-API-Key`` (401 when missing or unknown) in a short session of its own."""
    if not key:
        raise HTTPException(401, "missing X-API-Key header", headers={"WWW-Authenticate": "APIKey"})
    admin = state.settings.admin_key
    if admin is not None and matches_admin(key, admin.get_secret_value()):
        return Caller(admin=True)
    prefix = key_prefix(key)
    if prefix is None:
        raise HTTPException(401, "invalid API key", headers={"WWW-Authenticate": "APIKey"})
    with state.sessions() as session:
        row = session.scalar(select(ApiKey).where(ApiKey.prefix == prefix))
        if row is None or not matches_hash(key, row.key_hash):
            raise HTTPException(401, "invalid API key", headers={"WWW-Authenticate": "APIKey"})
        return Caller(admin=False, store=session.get(Store, row.store_id))


def require_admin(caller: Annotated[Caller, Depends(get_caller)]) -> Caller:
    """403 unless the caller holds the admin key."""
    if not caller.admin:
        raise HTTPException(403, "this endpoint needs the admin key")
    return caller


def require_store(caller: Annotated[Caller, Depends(get_caller)]) -> Store:
    """403 unless the caller holds a store key; returns that store."""
    if caller.store is None:
        raise HTTPException(403, "this endpoint needs a store key (the admin key is not bound to a store)")
    return caller.store


StateDep = Annotated[AppState, Depends(get_state)]
SessionDep = Annotated[Session, Depends(get_session)]
AdminDep = Annotated[Caller, Depends(require_admin)]
StoreDep = Annotated[Store, Depends(require_store)]
AnyKeyDep = Annotated[Caller, Depends(get_caller)]


def find_in_store(state: AppState, kind: type, item_id: int, store: Store):
    """A zone or camera of the caller's store, or 404 (short session; the row comes back detached)."""
    with state.sessions() as session:
        row = session.get(kind, item_id)
    if row is None or row.store_id != store.id:
        raise HTTPException(404, f"{kind.__name__.lower()} {item_id} not found in store {store.id}")
    return row
