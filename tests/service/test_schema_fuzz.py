"""Property-based fuzzing of every operation in the OpenAPI schema with schemathesis.

The app runs under uvicorn on 127.0.0.1 with a SQLite database holding one store. Each operation gets a
bounded, derandomized set of generated requests (valid and invalid), half of them aimed at the real
store's ids, sent with the right key for the operation. No answer may be a 5xx, and every answer with a
documented status must match its documented schema.
"""

from __future__ import annotations

import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator

import httpx
import pytest
import schemathesis
import uvicorn
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from service.app import create_app
from service.storage.db import migrate

EXAMPLES_PER_OPERATION = 20
SERVER_START_S = 60
CHECKS = [not_a_server_error, response_schema_conformance]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def live_app(tmp_path, settings_for, loaded_model) -> Iterator[tuple[str, object]]:
    """The app served by uvicorn in a thread on a free local port; yields its base URL and the app."""
    url = f"sqlite:///{tmp_path / 'fuzz.db'}"
    migrate(url)
    # live streams (/occupancy/live) end after a moment, so every fuzzed request gets a whole answer
    limits = {"rate_limit_per_minute": 0, "max_images_per_request": 3, "occupancy_stream_max_s": 0.2}
    settings = settings_for(url, **limits)
    app = create_app(settings, loaded_model)
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + SERVER_START_S
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}", app
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def test_every_operation_survives_fuzzing(live_app, helpers):
    base_url, app = live_app
    with httpx.Client(base_url=base_url, timeout=30) as client:
        store = helpers.make_store(client, ["entrance"])
        spare = client.post(f"/stores/{store['id']}/keys", json={"name": "spare"}, headers=helpers.admin)
        seen = helpers.post_sighting(
            client, store, "entrance", helpers.story_image(2000, 0), "2026-11-25T10:00:00Z"
        )
    assert spare.status_code == 201 and seen.status_code == 201, (spare.text, seen.text)
    real_ids = {
        "store_id": store["id"],
        "key_id": spare.json()["id"],
        "visitor_id": seen.json()["sightings"][0]["visitor_id"],
    }
    schema = schemathesis.openapi.from_dict(app.openapi())
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 10
    failures: list[str] = []
    statuses: Counter[int] = Counter()
    for operation in operations:
        if "admin" in operation.tags or operation.path == "/embed":
            headers = helpers.admin
        else:
            headers = _fresh_key(base_url, store["id"], helpers.admin)
        wanted = {name: real_ids[name] for name in real_ids if f"{{{name}}}" in operation.path}
        strategies = [
            operation.as_strategy(mode, path_parameters=fixed)
            for mode in (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE)
            for fixed in ([None, wanted] if wanted else [None])
        ]
        try:
            _fuzz(st.one_of(strategies), base_url, headers, statuses)
        except (AssertionError, BaseExceptionGroup) as exc:  # schemathesis raises a FailureGroup
            failures.append(f"{operation.method.upper()} {operation.path}: {exc!r}")
    assert not failures, "\n\n".join(failures)
    assert statuses[200] + statuses[201] + statuses[204] > len(operations), statuses


def _fresh_key(base_url: str, store_id: int, admin: dict) -> dict:
    """A new key of the store (fuzzing the admin operations may have revoked the others)."""
    response = httpx.post(f"{base_url}/stores/{store_id}/keys", json={"name": "fuzz"}, headers=admin)
    assert response.status_code == 201, response.text
    return {"X-API-Key": response.json()["key"]}


def _fuzz(cases: st.SearchStrategy, base_url: str, headers: dict, statuses: Counter[int]) -> None:
    """Send a bounded, derandomized sample of ``cases``, counting statuses; raise on a failed check."""

    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        derandomize=True,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=cases)
    def check(case) -> None:
        response = case.call_and_validate(base_url=base_url, headers=headers, checks=CHECKS, timeout=30)
        statuses[response.status_code] += 1

    check()
