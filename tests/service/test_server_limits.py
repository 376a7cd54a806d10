"""The server as clients meet it on loopback: what it does with a 500, huge or slow headers, and which
security headers every answer carries.

``reid-serve`` itself runs as a subprocess for the header limits (raw sockets, so that nothing between
the test and the server fixes up the request); the forced 500 runs on the same uvicorn configuration
(``service.http.server.server_config``) in a thread, with one extra route that fails.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from fastapi import Request

from service.app import create_app
from service.http.server import server_config
from service.storage.db import migrate

START_TIMEOUT_S = 120
BIN = Path(sys.executable).parent
HEADER_TIMEOUT_S = 1.0
MAX_HEADER_BYTES = 8192
SECURITY_HEADERS = {
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def served(tmp_path_factory, model_dir) -> Iterator[str]:
    """``reid-serve`` on a free loopback port with a 1 s header timeout and an 8 KiB header limit."""
    root = tmp_path_factory.mktemp("served")
    url = f"sqlite:///{root / 'serve.db'}"
    migrate(url)
    port = free_port()
    env = {
        **os.environ,
        "REID_DATABASE_URL": url,
        "REID_MODEL_DIR": str(model_dir),
        "REID_INDEX_DIR": str(root / "indexes"),
        "REID_ADMIN_KEY": "test-admin-key",
        "REID_DEVICE": "cpu",
        "REID_HOST": "127.0.0.1",
        "REID_PORT": str(port),
        "REID_LOG_LEVEL": "warning",
        "REID_HEADER_TIMEOUT_S": str(HEADER_TIMEOUT_S),
        "REID_MAX_HEADER_BYTES": str(MAX_HEADER_BYTES),
    }
    log = root / "serve.log"
    with log.open("w") as out:
        server = subprocess.Popen(
            [BIN / "reid-serve"], env=env, cwd=root, stdout=out, stderr=subprocess.STDOUT
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            assert server.poll() is None, log.read_text()
            try:
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        yield base
    finally:
        server.terminate()
        server.wait(timeout=30)


def connect(base: str) -> socket.socket:
    host, port = base.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=10)
    return sock


def read_until_closed(sock: socket.socket, limit_s: float) -> tuple[bytes, float]:
    """Everything the server sends until it closes the connection, and how long that took."""
    started = time.monotonic()
    sock.settimeout(limit_s)
    received = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            break
        if not chunk:
            break
        received += chunk
    return received, time.monotonic() - started


def test_headers_over_the_limit_get_400_and_the_connection_closed(served):
    with connect(served) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: test\r\nX-Padding: ")
        sent = 0
        try:
            while sent < 4 * 1024 * 1024:  # far more than the limit: the server stops reading first
                sock.sendall(b"a" * 65536)
                sent += 65536
        except (BrokenPipeError, ConnectionResetError):
            pass
        answer, _ = read_until_closed(sock, 10)
    assert answer.startswith(b"HTTP/1.1 400 "), answer[:200]
    with httpx.Client(base_url=served, timeout=10) as client:  # the server is fine
        assert client.get("/healthz").status_code == 200
        padded = client.get("/healthz", headers={"X-Padding": "a" * (MAX_HEADER_BYTES // 2)})
        assert padded.status_code == 200  # under the limit is fine


def test_headers_that_never_finish_are_cut_off_after_the_timeout(served):
    with connect(served) as idle, connect(served) as trickling:
        trickling.sendall(b"GET /healthz HTTP/1.1\r\nHost: test\r\n")
        started = time.monotonic()
        closed = False
        while time.monotonic() - started < HEADER_TIMEOUT_S * 5:
            try:
                trickling.sendall(b"X")  # a byte now and then must not keep the connection alive
            except (BrokenPipeError, ConnectionResetError):
                closed = True
                break
            trickling.settimeout(0.2)
            try:
                data = trickling.recv(65536)
            except TimeoutError:
                continue
            except ConnectionResetError:
                closed = True
                break
            assert data.startswith(b"HTTP/1.1 408 "), data
            closed = True
            break
        waited = time.monotonic() - started
        assert closed and waited < HEADER_TIMEOUT_S * 3, waited
        answer, idle_for = read_until_closed(idle, HEADER_TIMEOUT_S * 5)
        assert answer == b""  # an idle connection is closed without a word
        assert idle_for < HEADER_TIMEOUT_S * 3


def test_many_stalled_connections_are_all_dropped(served):
    stalled = [connect(served) for _ in range(50)]
    try:
        for sock in stalled:
            sock.sendall(b"GET / HTTP/1.1\r\n")
        with httpx.Client(base_url=served, timeout=10) as client:
            assert client.get("/healthz").status_code == 200  # others are still served meanwhile
        deadline = time.monotonic() + HEADER_TIMEOUT_S * 5
        for sock in stalled:
            _, _ = read_until_closed(sock, max(deadline - time.monotonic(), 0.1))
            assert time.monotonic() < deadline
    finally:
        for sock in stalled:
            sock.close()


def test_a_kept_alive_connection_still_serves_several_requests(served):
    with httpx.Client(base_url=served, timeout=10, limits=httpx.Limits(max_connections=1)) as client:
        for _ in range(3):
            assert client.get("/healthz").status_code == 200
            time.sleep(HEADER_TIMEOUT_S / 4)


def test_every_answer_carries_the_security_headers(served):
    with httpx.Client(base_url=served, timeout=10) as client:
        answers = {
            "page": client.get("/"),
            "script": client.get("/static/app.js"),
            "api": client.get("/healthz"),
            "error": client.get("/stores"),
            "not found": client.get("/nowhere"),
        }
        docs = client.get("/docs")
    for name, answer in answers.items():
        for header, value in SECURITY_HEADERS.items():
            assert answer.headers.get(header) == value, (name, header)
        policy = answer.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in policy, name
        assert "script-src 'self';" in policy and "unsafe-inline" not in policy, name
    docs_policy = docs.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in docs_policy
    script_src = next(d for d in docs_policy.split(";") if d.strip().startswith("script-src"))
    assert "'sha256-" in script_src and "unsafe" not in script_src  # its one inline script, by hash


@pytest.fixture
def failing_server(tmp_path, settings_for, loaded_model) -> Iterator[str]:
    """The app on the reid-serve uvicorn configuration in a thread, with a route that always fails."""
    url = f"sqlite:///{tmp_path / 'fail.db'}"
    migrate(url)
    settings = settings_for(url)
    app = create_app(settings, loaded_model)

    @app.get("/test-only/peer")
    def peer(request: Request) -> dict:
        return {"port": request.client.port}

    @app.get("/test-only/fail")
    def fail() -> dict:
        raise RuntimeError("forced failure")

    port = free_port()
    server = uvicorn.Server(server_config(app, settings, host="127.0.0.1", port=port, log_level="critical"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + START_TIMEOUT_S
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def test_a_500_keeps_the_connection_open(failing_server):
    with httpx.Client(base_url=failing_server, timeout=10, limits=httpx.Limits(max_connections=1)) as client:
        before = client.get("/test-only/peer").json()["port"]
        failed = client.get("/test-only/fail")
        assert failed.status_code == 500
        assert failed.json() == {"detail": "internal server error"}
        assert failed.headers.get("connection") != "close"
        after = client.get("/test-only/peer")
        assert after.status_code == 200
        assert after.json()["port"] == before  # the same connection carried all three
        assert client.get("/healthz").json() == {"status": "ok"}
