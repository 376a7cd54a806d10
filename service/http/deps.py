"""Request dependencies: the app's state, a session, the authenticated caller and its role, id parameters."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Path, Query, Request, Security
from fastapi.security import APIKeyHeader
from sqlalchemy.orm import Session

from service.access.callers import Caller, authenticate
from service.common.errors import ForbiddenError
from service.common.ids import MAX_BIG_ID, MAX_ID
from service.state import AppState
from service.storage.models import Store

api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="Admin key or store key")


async def get_state(request: Request) -> AppState:
    """The app's services (async: no work to hand to a thread)."""
    return request.app.state.services


def get_caller(
    state: Annotated[AppState, Depends(get_state)],
    key: Annotated[str | None, Security(api_key_header)] = None,
) -> Caller:
    """Authenticate ``X-API-Key`` (401 when missing, unknown or revoked; 429 over the key's rate limit)."""
    return authenticate(state.key_check, key)


async def require_admin(caller: Annotated[Caller, Depends(get_caller)]) -> Caller:
    """403 unless the caller holds the admin key."""
    if not caller.admin:
        raise ForbiddenError("this endpoint needs the admin key")
    return caller


async def require_store_caller(caller: Annotated[Caller, Depends(get_caller)]) -> Caller:
    """403 unless the caller holds a store key; returns the caller."""
    if caller.store is None:
        raise ForbiddenError("this endpoint needs a store key (the admin key is not bound to a store)")
    return caller


async def require_store(caller: Annotated[Caller, Depends(require_store_caller)]) -> Store:
    """403 unless the caller holds a store key; returns that store."""
    assert caller.store is not None
    return caller.store


IdPath = Annotated[int, Path(ge=1, le=MAX_ID)]
BigIdPath = Annotated[int, Path(ge=1, le=MAX_BIG_ID)]
StateDep = Annotated[AppState, Depends(get_state)]
AdminDep = Annotated[Caller, Depends(require_admin)]
StoreDep = Annotated[Store, Depends(require_store)]
StoreCallerDep = Annotated[Caller, Depends(require_store_caller)]
AnyKeyDep = Annotated[Caller, Depends(get_caller)]
IncludeStaff = Annotated[
    bool, Query(description="count the store's staff too (they are left out by default: see /staff)")
]


def get_session(state: StateDep) -> Iterator[Session]:
    """A database session for one synchronous request; use-case functions commit what they write."""
    with state.sessions() as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]
