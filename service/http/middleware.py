"""ASGI middleware: request-body size limit (413 JSON), Prometheus request metrics and ``Server-Timing``,
security headers on every answer, and unforeseen errors answered with a JSON 500 that keeps the
connection open."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Awaitable, Callable, Iterable

from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.common.phases import GC, format_server_timing, open_log
from service.http.gc_pauses import PAUSES
from service.metrics import LATENCY, PHASE_SECONDS, REQUESTS

# The dashboard and the API: scripts and styles only from the service's own files (no inline script, no
# inline style, no eval), photos previewed from blob: URLs, calls to the service itself, never framed.
PAGE_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; "
    "connect-src 'self'; font-src 'self'; manifest-src 'self'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
# Swagger UI and ReDoc (served from the package, offline): their one fixed inline script is allowed by
# its SHA-256 (computed from the page as served, for these paths only), inline styles are needed by both.
DOCS_POLICY = (
    "default-src 'none'; script-src 'self'{hashes}; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' blob: data:; connect-src 'self'; font-src 'self' data:; worker-src 'self' blob:; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
# FastAPIOffline's defaults (it does not keep them on the app: its docs_url and redoc_url are None).
DOCS_PATHS = ("/docs", "/redoc", "/docs/oauth2-redirect")
INLINE_SCRIPT = re.compile(rb"<script(?![^>]*\bsrc\s*=)[^>]*>(.*?)</script>", re.DOTALL | re.IGNORECASE)
MAX_DOCS_PAGE = 1024 * 1024


class BodyTooLarge(HTTPException):
    """Raised while reading a request body that exceeds the limit."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body exceeds the limit of {limit} bytes")


async def _send_json(send: Send, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class BodyLimitMiddleware:
    """Refuse bodies over ``limit`` bytes: by Content-Length up front, or while streaming."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await _send_json(
                send, 413, f"request body of {int(declared)} bytes exceeds the limit of {self.limit}"
            )
            return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise BodyTooLarge(self.limit)
            return message

        await self.app(scope, limited, send)


class MetricsMiddleware:
    """Count requests and time them, labelled by route template and status; time their phases
    (``service.common.phases``, with the garbage-collection pauses inside them as ``gc``) and, with
    ``server_timing``, tell them in a ``Server-Timing`` header."""

    def __init__(self, app: ASGIApp, server_timing: bool = True) -> None:
        self.app = app
        self.server_timing = server_timing

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        log = open_log()
        status = 500
        gc_before = PAUSES.total

        def count_gc() -> None:
            nonlocal gc_before
            now = PAUSES.total
            paused, gc_before = now - gc_before, now
            if paused > 0:
                log.add(GC, paused)

        async def record(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                count_gc()
                if self.server_timing:
                    headers = MutableHeaders(raw=list(message.get("headers", [])))
                    headers.append("Server-Timing", format_server_timing(log.phases(), log.elapsed()))
                    message["headers"] = headers.raw
            await send(message)

        try:
            await self.app(scope, receive, record)
        finally:
            count_gc()
            route = scope.get("route")
            path = getattr(route, "path", "unmatched")
            LATENCY.labels(scope["method"], path).observe(log.elapsed())
            REQUESTS.labels(scope["method"], path, str(status)).inc()
            for name, seconds in log.phases().items():
                PHASE_SECONDS.labels(path, name).observe(seconds)


def script_hashes(page: bytes) -> list[str]:
    """CSP source expressions (``'sha256-...'``) of the inline scripts of an HTML page."""
    return [
        "'sha256-" + base64.b64encode(hashlib.sha256(body).digest()).decode() + "'"
        for body in INLINE_SCRIPT.findall(page)
    ]


class SecurityHeadersMiddleware:
    """Add a Content-Security-Policy, ``X-Frame-Options: DENY``, ``X-Content-Type-Options: nosniff`` and
    ``Referrer-Policy: no-referrer`` to every HTTP answer (headers a route set itself are kept).

    ``docs_paths`` (Swagger UI, ReDoc, the OAuth2 redirect page) get ``DOCS_POLICY`` with the hashes of
    their own inline scripts; their pages are generated from fixed templates and hold no caller input.
    """

    def __init__(self, app: ASGIApp, docs_paths: Iterable[str] = ()) -> None:
        self.app = app
        self.docs_paths = frozenset(path for path in docs_paths if path)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["path"] in self.docs_paths:
            await self._docs(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                _add_headers(message, PAGE_POLICY)
            await send(message)

        await self.app(scope, receive, with_headers)

    async def _docs(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Hold the (small) page back until it is complete, then send it with its scripts' hashes."""
        start: Message | None = None
        chunks: list[bytes] = []
        size = 0

        async def collect(message: Message) -> None:
            nonlocal start, size
            if message["type"] == "http.response.start":
                start = message
                return
            if message["type"] != "http.response.body" or start is None:
                await send(message)
                return
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > MAX_DOCS_PAGE:
                raise RuntimeError(f"{scope['path']} is larger than {MAX_DOCS_PAGE} bytes")
            if not message.get("more_body", False):
                page = b"".join(chunks)
                hashes = "".join(" " + h for h in script_hashes(page))
                _add_headers(start, DOCS_POLICY.format(hashes=hashes))
                await send(start)
                await send({"type": "http.response.body", "body": page})

        await self.app(scope, receive, collect)


def _add_headers(message: Message, policy: str) -> None:
    headers = MutableHeaders(raw=list(message.get("headers", [])))
    headers.setdefault("Content-Security-Policy", policy)
    for name, value in SECURITY_HEADERS.items():
        headers.setdefault(name, value)
    message["headers"] = headers.raw


ErrorHandler = Callable[[Request, Exception], Awaitable[Response]]


class InternalErrorMiddleware:
    """Answer an exception nothing else handled with ``handler``'s response (a JSON 500) and stop there.

    Starlette's own last-resort handler sends the 500 and then raises the exception again, so that the
    server logs it; uvicorn then closes the connection, and a keep-alive client's next request on it
    fails. This middleware sits inside that handler: the exception is logged by ``handler`` and not
    raised again, so the connection stays open for the next request. An exception after the answer has
    begun is raised as before (nothing sensible can be sent then; the server closes the connection).
    """

    def __init__(self, app: ASGIApp, handler: ErrorHandler) -> None:
        self.app = app
        self.handler = handler

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracked(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracked)
        except Exception as exc:
            if started:
                raise
            response = await self.handler(Request(scope), exc)
            await response(scope, receive, send)
