"""Error bodies and the handlers that turn use-case errors and database outages into JSON answers."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from service.common.errors import (
    ConflictError,
    ForbiddenError,
    InvalidInputError,
    LimitExceededError,
    NotFoundError,
    RateLimitedError,
    ServiceError,
    UnauthenticatedError,
)

DATABASE_RETRY_S = 5
STATUS_OF: dict[type[ServiceError], int] = {
    UnauthenticatedError: 401,
    ForbiddenError: 403,
    NotFoundError: 404,
    ConflictError: 409,
    InvalidInputError: 422,
    RateLimitedError: 429,
    LimitExceededError: 400,
}
log = logging.getLogger(__name__)


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


def status_of(error: ServiceError) -> int:
    """The HTTP status of a use-case error (its closest listed ancestor's)."""
    for kind in type(error).__mro__:
        if kind in STATUS_OF:
            return STATUS_OF[kind]
    return 400


def headers_of(error: ServiceError) -> dict[str, str]:
    """Headers that go with an error: how to authenticate, when to retry."""
    if isinstance(error, UnauthenticatedError):
        return {"WWW-Authenticate": "APIKey"}
    if isinstance(error, RateLimitedError):
        return {"Retry-After": str(error.retry_after_s)}
    return {}


async def service_error(_: Request, exc: Exception) -> JSONResponse:
    """A refused request: its status and message."""
    assert isinstance(exc, ServiceError)
    return JSONResponse({"detail": exc.detail}, status_code=status_of(exc), headers=headers_of(exc))


async def database_unavailable(request: Request, exc: Exception) -> JSONResponse:
    """503 with Retry-After while the database cannot be reached."""
    log.warning("database unavailable on %s %s: %s", request.method, request.url.path, exc)
    return JSONResponse(
        {"detail": f"database unavailable ({type(exc).__name__}); retry in {DATABASE_RETRY_S} s"},
        status_code=503,
        headers={"Retry-After": str(DATABASE_RETRY_S)},
    )


async def internal_error(request: Request, exc: Exception) -> JSONResponse:
    """500 for anything unforeseen; the details go to the log, not to the caller."""
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return JSONResponse({"detail": "internal server error"}, status_code=500)


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers above on ``app``."""
    app.add_exception_handler(ServiceError, service_error)
    for outage in (OperationalError, InterfaceError, PoolTimeoutError):
        app.add_exception_handler(outage, database_unavailable)
    app.add_exception_handler(Exception, internal_error)
