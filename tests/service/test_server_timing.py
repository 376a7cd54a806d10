"""Where a request's time goes: the Server-Timing header, its phases and their Prometheus histogram."""

from __future__ import annotations

import asyncio
import gc
import time

import pytest
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import REGISTRY

from service.app import create_app
from service.common.phases import (
    format_server_timing,
    in_thread,
    open_log,
    parse_server_timing,
    phase,
    record_phase,
)
from service.http.gc_pauses import PAUSES
from service.http.middleware import MetricsMiddleware
from service.storage.db import migrate

MATCH_PHASES = {
    "request",
    "image-check",
    "decode",
    "embed-queue",
    "embed",
    "search",
    "search.catch-up",
    "search.index",
    "audit",
    "thread-wait",
    "loop-wait",
    "app",
}
OVERLAPPING = {"app", "gc"}  # the whole, and garbage-collection pauses that fell inside any phase


def test_a_search_answer_says_where_its_time_went(database_url, settings_for, start_app, helpers, cast):
    client = start_app(settings_for(database_url))
    store = helpers.make_store(client, ["entrance"])
    person = cast.people[0]
    helpers.post_sighting(client, store, "entrance", helpers.story_image(person, 0), "2026-11-25T10:00:00Z")

    started = time.perf_counter()
    found = helpers.post_match(client, store, helpers.story_image(person, 1))
    client_seconds = time.perf_counter() - started

    assert found.status_code == 200
    phases = parse_server_timing(found.headers["server-timing"])
    assert set(phases) >= MATCH_PHASES, found.headers["server-timing"]
    assert all(seconds >= 0 for seconds in phases.values())
    assert phases["embed"] > 0 and phases["app"] <= client_seconds
    top_level = sum(
        seconds for name, seconds in phases.items() if "." not in name and name not in OVERLAPPING
    )
    assert top_level <= phases["app"] * 1.01 + 0.001, "phases follow one another: they fit in the whole"
    assert phases["search.catch-up"] + phases["search.index"] <= phases["search"] + 0.001

    metrics = client.get("/metrics").text
    assert 'reid_request_phase_seconds_count{phase="embed",route="/match"}' in metrics


def test_server_timing_can_be_turned_off(settings_for, start_app, tmp_path):
    url = f"sqlite:///{tmp_path / 'reid.db'}"
    migrate(url)
    on = start_app(settings_for(url, index_dir=tmp_path / "on"))
    assert parse_server_timing(on.get("/healthz").headers["server-timing"]).keys() - {"gc"} == {"app"}
    off = start_app(settings_for(url, server_timing=False))
    answer = off.get("/healthz")
    assert answer.status_code == 200 and "server-timing" not in answer.headers


def test_phases_from_threads_add_up_and_nothing_is_recorded_without_a_log():
    async def serve() -> dict[str, float]:
        log = open_log()

        def work() -> int:
            with phase("inner"):
                time.sleep(0.02)
            return 7

        assert await in_thread("work", work) == 7
        assert await in_thread("work", work) == 7
        record_phase("extra", 0.5)
        return log.phases()

    phases = asyncio.run(serve())
    assert phases["work"] >= 0.04 and phases["inner"] >= 0.04, "recorded twice, added up, also from a thread"
    assert {"thread-wait", "loop-wait", "extra"} <= phases.keys()
    record_phase("outside", 1.0)  # no request is being served here: nothing to record into, no error


def test_a_wrong_phase_still_lets_the_request_finish():
    async def serve() -> dict[str, float]:
        log = open_log()

        def fail() -> None:
            raise ValueError("boom")

        with pytest.raises(ValueError, match="boom"):
            await in_thread("failing", fail)
        return log.phases()

    assert "failing" in asyncio.run(serve())


names = st.text(alphabet="abcdefghijklmnopqrstuvwxyz-.", min_size=1, max_size=20)


@given(st.dictionaries(names, st.floats(min_value=0, max_value=1e4, allow_nan=False)), st.floats(0, 1e4))
def test_the_header_reads_back_to_the_phases_it_was_written_from(phases, app_seconds):
    parsed = parse_server_timing(format_server_timing(phases, app_seconds))
    expected = {**phases, "app": app_seconds}
    assert parsed.keys() == expected.keys()
    assert all(abs(parsed[name] - expected[name]) <= 5e-6 for name in expected)


@given(st.text(max_size=200))
def test_any_header_value_parses_to_finite_durations_or_nothing(value):
    parsed = parse_server_timing(value)
    assert all(isinstance(seconds, float) and seconds == seconds for seconds in parsed.values())


def test_other_servers_headers_are_read_too():
    value = 'cache;desc="Cache Read";dur=23.2, db;dur=53, missedCache, total;dur=abc'
    assert parse_server_timing(value) == {"cache": 0.0232, "db": 0.053}


def test_answers_refused_before_any_work_tell_only_their_total(settings_for, start_app, tmp_path):
    url = f"sqlite:///{tmp_path / 'reid.db'}"
    migrate(url)
    client = start_app(settings_for(url, max_upload_bytes=1024))
    photo = {"image": ("q.png", b"\x89PNG\r\n\x1a\n" + bytes(64), "image/png")}

    wrong_key = client.post("/match", data={"case_id": "c"}, files=photo, headers={"X-API-Key": "nope"})
    binary = {"Content-Type": "application/octet-stream"}
    too_large = client.post("/match", content=bytes(4096), headers=binary)

    assert (wrong_key.status_code, too_large.status_code) == (401, 413)
    for answer in (wrong_key, too_large):
        assert parse_server_timing(answer.headers["server-timing"]).keys() - {"gc"} == {"app"}


def test_a_garbage_collection_during_a_request_is_in_its_profile_and_in_metrics():
    async def collecting(scope, receive, send):
        gc.collect()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    PAUSES.install()
    client = TestClient(MetricsMiddleware(collecting))
    before = REGISTRY.get_sample_value("reid_gc_pause_seconds_count", {"generation": "2"}) or 0

    phases = parse_server_timing(client.get("/").headers["server-timing"])

    assert 0 < phases["gc"] <= phases["app"]
    assert REGISTRY.get_sample_value("reid_gc_pause_seconds_count", {"generation": "2"}) > before


def test_a_serving_app_keeps_its_startup_objects_out_of_the_collector(settings_for, loaded_model, tmp_path):
    url = f"sqlite:///{tmp_path / 'reid.db'}"
    migrate(url)
    with TestClient(create_app(settings_for(url), loaded_model)) as client:
        assert client.get("/healthz").status_code == 200
        frozen_while_serving = gc.get_freeze_count()
    assert frozen_while_serving > 10_000, "modules, the model and the app are frozen at startup"
    assert gc.get_freeze_count() == 0, "and given back to the collector at shutdown"
