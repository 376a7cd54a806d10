"""SIGKILL mid-ingest loses nothing acknowledged and half-writes nothing (SQLite, real ``reid-serve``)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
from sqlalchemy import create_engine, text

from service.storage.db import migrate
from tests.service.conftest import LONG_RETENTION_DAYS
from training.datasets.synthetic import render_person

START_TIMEOUT_S = 90
EMPTY_VISITORS = (
    "SELECT count(*) FROM visitors v WHERE NOT EXISTS (SELECT 1 FROM sightings s WHERE s.visitor_id = v.id)"
)
ORPHANS = "SELECT count(*) FROM sightings s LEFT JOIN visitors v ON v.id = s.visitor_id WHERE v.id IS NULL"
CLIENTS = 4
ACKED_BEFORE_KILL = 16
INGEST_TIMEOUT_S = 60


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _serve(tmp_path: Path, url: str, model_dir: Path, port: int, admin_key: str) -> subprocess.Popen:
    """Start ``reid-serve`` and wait until ``/readyz`` answers 200."""
    env = {
        **os.environ,
        "REID_DATABASE_URL": url,
        "REID_MODEL_DIR": str(model_dir),
        "REID_INDEX_DIR": str(tmp_path / "indexes"),
        "REID_ADMIN_KEY": admin_key,
        "REID_RATE_LIMIT_PER_MINUTE": "0",
        "REID_DEVICE": "cpu",
        "REID_RETENTION_DAYS": str(LONG_RETENTION_DAYS),
    }
    command = [str(Path(sys.executable).parent / "reid-serve"), "--port", str(port), "--log-level", "warning"]
    process = subprocess.Popen(command, env=env, cwd=tmp_path)
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        assert process.poll() is None, f"reid-serve exited with {process.returncode}"
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                return process
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    process.kill()
    raise AssertionError("reid-serve did not become ready")


def _ingest(base: str, headers: dict, camera_id: int, first: int, png, acked: list, cut: list) -> None:
    """Post one crop at a time until the server stops answering; record each answer and the cut-off."""
    with httpx.Client(base_url=base, headers=headers, timeout=10) as client:
        for n in range(1000):
            image = png(render_person(first + n, n % 4, n))
            try:
                response = client.post(
                    "/sightings",
                    data={
                        "camera_id": camera_id,
                        "captured_at": f"2026-11-25T10:{n // 60:02d}:{n % 60:02d}Z",
                    },
                    files=[("images", ("crop.png", image, "image/png"))],
                )
            except httpx.HTTPError as exc:
                cut.append(exc)
                return
            acked.append((response.status_code, response.json(), image))


def _sql_state(url: str) -> tuple[dict[int, int], int, int]:
    """Sighting id -> visitor id, sightings without a visitor, visitors without a sighting."""
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            rows = dict(connection.execute(text("SELECT id, visitor_id FROM sightings")).all())
            orphans = connection.execute(text(ORPHANS)).scalar_one()
            empty = connection.execute(text(EMPTY_VISITORS)).scalar_one()
    finally:
        engine.dispose()
    return rows, orphans, empty


def test_sigkill_mid_ingest_keeps_every_acknowledged_sighting(tmp_path, model_dir, helpers):
    url = f"sqlite:///{tmp_path / 'crash.db'}"
    migrate(url)
    port = _free_port()
    base, admin_key = f"http://127.0.0.1:{port}", helpers.admin["X-API-Key"]
    process = _serve(tmp_path, url, model_dir, port, admin_key)
    try:
        with httpx.Client(base_url=base, timeout=10) as client:
            store = helpers.make_store(client, ["entrance"])
        camera = store["cameras"]["entrance"]
        acked: list = []
        cut: list = []
        threads = [
            threading.Thread(
                target=_ingest,
                args=(base, store["headers"], camera, 3000 + 100 * i, helpers.png, acked, cut),
                daemon=True,
            )
            for i in range(CLIENTS)
        ]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + INGEST_TIMEOUT_S
        while len(acked) < ACKED_BEFORE_KILL and time.monotonic() < deadline:
            time.sleep(0.01)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
        for thread in threads:
            thread.join(timeout=15)
        assert not any(thread.is_alive() for thread in threads)
        assert len(cut) == CLIENTS, "every client is cut off by the kill"
        assert len(acked) >= ACKED_BEFORE_KILL
        assert {status for status, _, _ in acked} == {201}, [
            body for status, body, _ in acked if status != 201
        ]
        sightings = [(body["sightings"][0], image) for _, body, image in acked]

        process = _serve(tmp_path, url, model_dir, port, admin_key)
        rows, orphans, empty = _sql_state(url)
        assert orphans == 0 and empty == 0
        for sighting, _ in sightings:
            assert rows.get(sighting["sighting_id"]) == sighting["visitor_id"]
        indexes = httpx.get(f"{base}/readyz", timeout=10).json()["indexes"]
        assert indexes["rebuilt_from_sql"] == 1
        assert indexes["vectors"] == len(rows) >= len(sightings)
        with httpx.Client(base_url=base, headers=store["headers"], timeout=10) as client:
            for sighting, image in sightings:
                found = client.post(
                    "/match",
                    data={"top_k": "3", "case_id": "crash-test"},
                    files={"image": ("query.png", image, "image/png")},
                ).json()["matches"]
                best = {m["sighting_id"]: m["similarity"] for m in found}
                assert best.get(sighting["sighting_id"], 0) > 0.999, (sighting, found)
    finally:
        process.kill()
        process.wait(timeout=10)
