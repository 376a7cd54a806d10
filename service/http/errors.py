"""Error bodies and the handlers that turn use-case errors and database outages into JSON answers."""

from __future__ import annotations

import logging
import math
import re
from typing import Any

from fastapi import FastAPI, Request, params
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.exc import InterfaceError, InternalError, OperationalError
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
from service.common.timeparse import TimeParseError
from service.storage.writes import refuses_writes

DATABASE_RETRY_S = 5
STATUS_OF: dict[type[ServiceError], int] = {
    UnauthenticatedError: 401,
    ForbiddenError: 403,
    NotFoundError: 404,
    ConflictError: 409,
    InvalidInputError: 422,
    RateLimitedError: 429,
    LimitExceededError: 422,
}
MULTIPART = "multipart/form-data"
FORM_TYPES = {MULTIPART, "application/x-www-form-urlencoded"}
MAX_ECHO_CHARS = 200
MAX_ECHO_ITEMS = 20
MAX_ECHO_DEPTH = 4
SPACE_FOR_PLUS = re.compile(r"\d \d{2}(:?\d{2})?'")
PLUS_HINT = (
    "; if you sent an offset like +01:00 in a URL, encode the '+' as %2B: "
    "a bare '+' in a query string arrives as a space"
)
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
        (422, "Invalid request (the offending inputs are echoed, long ones cut)"),
        (429, "Rate limit exceeded"),
        (503, "Database unavailable"),
    ]
}


MULTIPART_RESPONSES: dict[int | str, dict[str, Any]] = {
    415: {"model": ErrorOut, "description": f"The body is not {MULTIPART}"}
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
    detail = exc.detail
    if isinstance(exc, TimeParseError) and SPACE_FOR_PLUS.search(detail):
        detail += PLUS_HINT
    return JSONResponse({"detail": detail}, status_code=status_of(exc), headers=headers_of(exc))


def encodable(text: str) -> str:
    """``text`` with lone surrogates (as JSON's ``"\\ud800"`` gives) spelled out, so it encodes as UTF-8."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def shorten(value: Any, depth: int = 0) -> Any:
    """An echoed input cut to size: long strings, long lists, big objects and deep nesting."""
    if isinstance(value, bytes):
        value = value.decode(errors="replace")
    if isinstance(value, str):
        value = encodable(value)
        if len(value) <= MAX_ECHO_CHARS:
            return value
        return f"{value[:MAX_ECHO_CHARS]}... ({len(value)} characters, cut)"
    if depth >= MAX_ECHO_DEPTH and isinstance(value, dict | list | tuple):
        return "... (nested too deep, cut)"
    if isinstance(value, dict):
        items = list(value.items())
        short = {encodable(str(k))[:MAX_ECHO_CHARS]: shorten(v, depth + 1) for k, v in items[:MAX_ECHO_ITEMS]}
        if len(items) > MAX_ECHO_ITEMS:
            short["..."] = f"{len(items) - MAX_ECHO_ITEMS} more keys cut"
        return short
    if isinstance(value, list | tuple):
        short_list = [shorten(v, depth + 1) for v in value[:MAX_ECHO_ITEMS]]
        if len(value) > MAX_ECHO_ITEMS:
            short_list.append(f"... {len(value) - MAX_ECHO_ITEMS} more items cut")
        return short_list
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)  # JSON has no infinity or NaN ({"name": 1e999} parses to inf)
    return value


def _wants_form(request: Request) -> bool:
    """Whether the matched route reads its body as a form (file uploads)."""
    body_field = getattr(request.scope.get("route"), "body_field", None)
    return isinstance(getattr(body_field, "field_info", None), params.Form)


async def invalid_request(request: Request, exc: Exception) -> JSONResponse:
    """422 listing what is wrong, with echoed inputs cut; 415 for a non-multipart body to an upload route."""
    assert isinstance(exc, RequestValidationError)
    content_type = request.headers.get("content-type")
    if content_type and _wants_form(request):
        media_type = content_type.split(";")[0].strip().lower()
        if media_type not in FORM_TYPES:
            detail = f"this endpoint takes a {MULTIPART} body (files and form fields), not {media_type}"
            return JSONResponse({"detail": detail}, status_code=415)
    errors = []
    for error in exc.errors():
        error = dict(error)
        if isinstance(error.get("msg"), str):
            error["msg"] = encodable(error["msg"])
        for key in ("loc", "input", "ctx"):
            if key in error:
                error[key] = shorten(error[key])
        errors.append(error)
    return JSONResponse({"detail": jsonable_encoder(errors)}, status_code=422)


async def database_unavailable(request: Request, exc: Exception) -> JSONResponse:
    """503 with Retry-After while the database cannot be reached."""
    log.warning("database unavailable on %s %s: %s", request.method, request.url.path, exc)
    return JSONResponse(
        {"detail": f"database unavailable ({type(exc).__name__}); retry in {DATABASE_RETRY_S} s"},
        status_code=503,
        headers={"Retry-After": str(DATABASE_RETRY_S)},
    )


async def database_error(request: Request, exc: Exception) -> JSONResponse:
    """503 when the database refuses writes (read-only), like an outage; 500 for any other internal error."""
    if refuses_writes(exc):
        return await database_unavailable(request, exc)
    return await internal_error(request, exc)


async def internal_error(request: Request, exc: Exception) -> JSONResponse:
    """500 for anything unforeseen; the details go to the log, not to the caller."""
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return JSONResponse({"detail": "internal server error"}, status_code=500)


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers above on ``app``."""
    app.add_exception_handler(ServiceError, service_error)
    app.add_exception_handler(RequestValidationError, invalid_request)
    for outage in (OperationalError, InterfaceError, PoolTimeoutError):
        app.add_exception_handler(outage, database_unavailable)
    app.add_exception_handler(InternalError, database_error)
    app.add_exception_handler(Exception, internal_error)
