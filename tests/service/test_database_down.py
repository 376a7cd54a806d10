"""While the database is unreachable the API answers 503, and it recovers by itself (PostgreSQL only).

The app reaches PostgreSQL through a small TCP proxy the test owns: taking the proxy down cuts every open
connection and refuses new ones, exactly like a database host going away, without touching the server.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator

import pytest
from sqlalchemy.engine import make_url

from service.storage.db import migrate

CONNECT_TIMEOUT_S = 3


class TcpProxy:
    """Forwards 127.0.0.1:<port> to a target; ``down()`` drops every connection until ``up()``."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.2)
        self.port = self.listener.getsockname()[1]
        self.available = threading.Event()
        self.available.set()
        self.stopping = threading.Event()
        self.lock = threading.Lock()
        self.sockets: list[socket.socket] = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while not self.stopping.is_set():
            try:
                client, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            if not self.available.is_set():
                client.close()
                continue
            try:
                server = socket.create_connection(self.target, timeout=CONNECT_TIMEOUT_S)
            except OSError:
                client.close()
                continue
            server.settimeout(None)
            with self.lock:
                self.sockets += [client, server]
            for source, sink in ((client, server), (server, client)):
                threading.Thread(target=self._pipe, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def down(self) -> None:
        """Refuse new connections and cut the open ones."""
        self.available.clear()
        with self.lock:
            sockets, self.sockets = self.sockets, []
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def up(self) -> None:
        """Forward new connections again."""
        self.available.set()

    def close(self) -> None:
        """Stop the proxy and its connections."""
        self.down()
        self.stopping.set()
        self.listener.close()
        self.thread.join(timeout=5)


@pytest.fixture
def proxied_url(pg_databases) -> Iterator[tuple[str, TcpProxy]]:
    """A migrated PostgreSQL database reached through a proxy the test can take down."""
    direct = make_url(pg_databases())
    migrate(direct.render_as_string(hide_password=False))
    proxy = TcpProxy((direct.host or "127.0.0.1", direct.port or 5432))
    try:
        url = direct.set(host="127.0.0.1", port=proxy.port, query={"connect_timeout": str(CONNECT_TIMEOUT_S)})
        yield url.render_as_string(hide_password=False), proxy
    finally:
        proxy.close()


def assert_unavailable(response) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert response.json()["detail"].startswith("database unavailable")
    assert int(response.headers["Retry-After"]) >= 1


def test_database_down_gives_503_and_recovers(proxied_url, settings_for, start_app, helpers):
    url, proxy = proxied_url
    client = start_app(settings_for(url))
    store = helpers.make_store(client, ["entrance"])
    image = helpers.story_image(2000, 0)
    density = {"start": "2026-11-25T00:00:00Z", "end": "2026-11-26T00:00:00Z"}
    assert helpers.post_sighting(client, store, "entrance", image, "2026-11-25T10:00:00Z").status_code == 201
    assert client.get("/readyz").status_code == 200

    proxy.down()
    ready = client.get("/readyz")
    assert ready.status_code == 503
    assert ready.json()["status"] == "not ready"
    assert ready.json()["reason"].startswith("database unavailable")
    assert_unavailable(client.get("/stores", headers=helpers.admin))
    assert_unavailable(client.get("/density", params=density, headers=store["headers"]))
    assert_unavailable(helpers.post_sighting(client, store, "entrance", image, "2026-11-25T10:05:00Z"))
    assert_unavailable(helpers.post_match(client, store, image))
    assert client.get("/healthz").status_code == 200

    proxy.up()
    assert client.get("/readyz").status_code == 200
    assert "reason" not in client.get("/readyz").json()
    assert client.get("/stores", headers=helpers.admin).status_code == 200
    again = helpers.post_sighting(client, store, "entrance", image, "2026-11-25T10:10:00Z")
    assert again.status_code == 201, again.text
    found = client.get("/density", params=density, headers=store["headers"])
    assert found.status_code == 200
    assert found.json()["zones"][0]["totals"]["sightings"] == 2
