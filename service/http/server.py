"""The HTTP server ``reid-serve`` runs: uvicorn with bounds on request headers, in size and in time.

uvicorn's default parser (httptools) reads request headers of any size, and no uvicorn parser times out
a client that connects and never finishes its headers: a few thousand such connections hold the server.
So the server runs uvicorn's h11 protocol with

- ``h11_max_incomplete_event_size`` = ``REID_MAX_HEADER_BYTES``: a request line plus headers larger than
  that is answered 400 and the connection closed, and
- ``GuardedH11Protocol``: a client gets ``REID_HEADER_TIMEOUT_S`` to send a request's line and headers,
  counted from connecting or from the end of the previous answer on a kept-alive connection (bytes that
  trickle in do not restart it); a client that is still sending headers then gets 408 and is
  disconnected, an idle connection is closed. The body is not under this timeout.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from service.settings import Settings

log = logging.getLogger(__name__)


def _timeout_answer() -> bytes:
    body = b"request headers took too long to arrive\n"
    head = (
        "HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain; charset=utf-8\r\n"
        f"connection: close\r\ncontent-length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol, closing connections whose request headers do not arrive in time."""

    header_timeout_s: float = 10.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_timer: asyncio.TimerHandle | None = None
        self._waiting_after: object = None  # the cycle (request) before the one whose headers are awaited
        self._partial = False  # some bytes of the awaited request have arrived

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._header_timer is not None:
            self._partial = True
        super().data_received(data)

    def handle_events(self) -> None:
        super().handle_events()
        if self._header_timer is not None and self.cycle is not self._waiting_after:
            self._disarm()  # a new request's headers are in

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing() and (self.cycle is None or self.cycle.response_complete):
            self._arm()

    def _arm(self) -> None:
        self._disarm()
        self._waiting_after = self.cycle
        self._partial = False
        self._header_timer = self.loop.call_later(self.header_timeout_s, self._headers_too_slow)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        if self.transport.is_closing() or self.cycle is not self._waiting_after:
            return
        if self._partial:
            log.info("closing a connection whose request headers took over %.0f s", self.header_timeout_s)
            self.transport.write(_timeout_answer())
        self.transport.close()


def guarded_protocol(header_timeout_s: float) -> type[GuardedH11Protocol]:
    """``GuardedH11Protocol`` with its header timeout set (uvicorn builds one protocol per connection)."""
    return type("GuardedH11Protocol", (GuardedH11Protocol,), {"header_timeout_s": header_timeout_s})


def server_config(app: Any, settings: Settings, *, host: str, port: int, log_level: str) -> uvicorn.Config:
    """The uvicorn configuration of ``reid-serve``: h11, header size bound and header timeout."""
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level,
        http=guarded_protocol(settings.header_timeout_s),
        h11_max_incomplete_event_size=settings.max_header_bytes,
    )


SHUTDOWN_HOOKS = "server_shutdown_hooks"


def on_server_shutdown(app: Any, hook: Callable[[], None]) -> None:
    """Call ``hook`` when a ``ReidServer`` serving ``app`` starts to shut down (on its event loop)."""
    hooks = getattr(app.state, SHUTDOWN_HOOKS, None)
    if hooks is None:
        hooks = []
        setattr(app.state, SHUTDOWN_HOOKS, hooks)
    hooks.append(hook)


class ReidServer(uvicorn.Server):
    """uvicorn's server, telling the app when shutdown starts: uvicorn waits for every response to end
    before it shuts down, and a live stream (``/occupancy/live``) only ends when told to."""

    async def shutdown(self, sockets: list[Any] | None = None) -> None:
        """Run the app's shutdown hooks, then shut down as uvicorn does."""
        for hook in getattr(getattr(self.config.app, "state", None), SHUTDOWN_HOOKS, []):
            hook()
        await super().shutdown(sockets)
