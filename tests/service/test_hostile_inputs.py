"""Property-based tests: every parser of user input, and every route through the app, on both databases.

Each parser either returns a value that every later step can use without overflowing (a timestamp that
converts to any store's local time and to epoch milliseconds and back; a finite positive duration; buckets
that tile the window) or refuses with a use-case error, which the HTTP layer turns into a 4xx. Through the
app, every answer to a request built from hostile values (timestamps near year 1 and 9999 with offsets,
tiny, huge and infinite buckets, NUL and other control characters, lone surrogates, huge numbers, random
JSON and bytes, ids that are not ids) is a 2xx or a 4xx with a JSON body, never a 5xx.

The examples are bounded and derandomized (the same every run), so the added time stays small.
"""

from __future__ import annotations

import io
import json
import math
import re
from collections import Counter
from datetime import UTC, datetime, timedelta, timezone
from urllib.parse import quote
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from service.common.errors import ServiceError
from service.common.text import free_text, plain_text
from service.common.timeparse import (
    EARLIEST,
    LATEST,
    TimeParseError,
    from_ms,
    parse_duration,
    parse_timestamp,
    to_ms,
)
from service.density.compute import bucket_edges
from service.http.errors import shorten, status_of
from service.stores.schemas import known_zone

PARSER_EXAMPLES = 300
ROUTE_EXAMPLES = 100
PARSERS = settings(max_examples=PARSER_EXAMPLES, deadline=None, derandomize=True, database=None)
ROUTES = settings(
    max_examples=ROUTE_EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
EXTREME_ZONES = [
    "UTC",
    "Pacific/Kiritimati",
    "Etc/GMT+12",
    "America/St_Johns",
    "Europe/Berlin",
    "Asia/Kathmandu",
]

# ---------- strategies ----------

NASTY_CHARS = st.sampled_from(
    ["\x00", "\x01", "\x1f", "\x7f", "\x85", "\u2028", "\ufeff", "\uffff", "\U0001d518", " ", "+", "%", "&"]
    + ["=", "'", '"', "\\", ";--", "\t", "\n", "\r", "é", "../", "Z", ":", "T", "-"]
)
NASTY_TEXT = st.lists(NASTY_CHARS | st.characters(), max_size=30).map("".join)
LONG_TEXT = st.integers(200, 5000).map(lambda n: "x" * n)
offsets = st.integers(-(24 * 3600 - 1), 24 * 3600 - 1).map(lambda s: timezone(timedelta(seconds=s)))
near_the_ends = st.one_of(
    st.datetimes(max_value=datetime(1, 1, 3)),
    st.datetimes(min_value=datetime(9999, 12, 29)),
    st.datetimes(min_value=datetime(1969, 12, 31), max_value=datetime(1970, 1, 2)),
    st.datetimes(),
)
aware = st.builds(lambda d, tz: d.replace(tzinfo=tz), near_the_ends, offsets | st.just(UTC))
STAMPS = st.one_of(
    aware.map(lambda d: d.isoformat()),
    aware.map(lambda d: d.isoformat().replace("+", " ")),  # a '+' that arrived as a space
    aware.map(lambda d: d.isoformat().replace("+00:00", "Z")),
    near_the_ends.map(lambda d: d.isoformat()),  # naive
    NASTY_TEXT,
    LONG_TEXT,
)
RECENT = st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2026, 1, 1), timezones=st.just(UTC))
DURATIONS = st.one_of(
    st.floats().map(repr),
    st.floats(min_value=1e-9, max_value=1e-2).map(str),
    st.sampled_from(["inf", "-inf", "nan", "1e309", "1e-320", "0", "-0", "1_000", "PT", "P", "PT0.0001S"]),
    st.builds(
        lambda w, d, h, m, s: "P" + (f"{w}W" if w else "") + (f"{d}D" if d else "") + f"T{h}H{m}M{s}S",
        st.integers(0, 10**30),
        st.integers(0, 10**6),
        st.integers(0, 10**6),
        st.integers(0, 10**6),
        st.integers(0, 10**6) | st.floats(0, 1e6).map(lambda f: round(f, 4)),
    ),
    st.integers(-(10**400), 10**400).map(str),
    NASTY_TEXT,
)
NUMBERS = st.one_of(
    st.integers(-(2**70), 2**70).map(str),
    st.floats().map(repr),
    st.sampled_from(["", " 1", "1.0", "0x10", "1e3", "١", "NaN", "2147483648", "9223372036854775808"]),
    NASTY_TEXT,
)


def answered(response, seen: Counter | None = None) -> None:
    """A 2xx or a 4xx, never a 5xx; a JSON body (but for 204). Counts the status in ``seen``."""
    if seen is not None:
        seen[response.status_code // 100 * 100] += 1
    request = response.request
    where = f"{request.method} {request.url}"
    assert response.status_code < 500, f"{where} -> {response.status_code} {response.text[:500]}"
    if response.status_code == 204:
        return
    assert response.headers["content-type"].startswith("application/json"), where
    body = response.json()
    if response.status_code >= 400:
        assert body["detail"], where


# ---------- parsers ----------


@PARSERS
@given(text=STAMPS)
def test_a_timestamp_is_usable_everywhere_or_refused(text):
    try:
        value = parse_timestamp(text, "t")
    except TimeParseError as exc:
        assert status_of(exc) == 422 and exc.detail.startswith("t: ")
        return
    assert value.tzinfo is UTC and EARLIEST <= value <= LATEST
    for zone in EXTREME_ZONES:
        value.astimezone(ZoneInfo(zone))
    assert abs(from_ms(to_ms(value)) - value) <= timedelta(milliseconds=1)


@PARSERS
@given(moment=aware)
def test_every_timestamp_in_range_is_accepted(moment):
    in_range = EARLIEST <= moment <= LATEST
    try:
        assert parse_timestamp(moment.isoformat()) == moment
        assert in_range
    except TimeParseError:
        assert not in_range


@PARSERS
@given(text=DURATIONS)
def test_a_duration_is_finite_and_positive_or_refused(text):
    try:
        seconds = parse_duration(text, "bucket")
    except TimeParseError as exc:
        assert status_of(exc) == 422
        return
    assert math.isfinite(seconds) and seconds > 0


@PARSERS
@given(
    start=st.datetimes(min_value=EARLIEST.replace(tzinfo=None), max_value=LATEST.replace(tzinfo=None)),
    length=st.one_of(
        st.timedeltas(min_value=timedelta(microseconds=1), max_value=timedelta(days=3)),
        st.timedeltas(min_value=timedelta(microseconds=1)),
    ),
    bucket=st.one_of(
        st.floats(min_value=1e-6, max_value=1e300),
        st.integers(1, 10**6).map(lambda days: days * 86400.0),
        st.sampled_from([0.0001, 0.999, 1.0, 900.0, 3600.0, 86400.0, 1e18]),
    ),
    zone=st.sampled_from(EXTREME_ZONES + ["America/Santiago", "Australia/Lord_Howe"]),
    max_buckets=st.integers(1, 1000),
)
def test_buckets_tile_the_window_or_are_refused(start, length, bucket, zone, max_buckets):
    start = start.replace(tzinfo=UTC)
    end = start + length if length < LATEST - start else LATEST
    if end <= start:
        return
    try:
        buckets = bucket_edges(start, end, bucket, ZoneInfo(zone), max_buckets)
    except ServiceError as exc:
        assert 400 <= status_of(exc) < 500
        return
    assert 1 <= len(buckets) <= max_buckets
    assert buckets[0].start_ms == to_ms(start) and buckets[-1].end_ms == to_ms(end)
    for one, following in zip(buckets, buckets[1:], strict=False):
        assert one.start_ms < one.end_ms == following.start_ms
    assert all(EARLIEST <= from_ms(b.start_ms) < from_ms(b.end_ms) for b in buckets)


@PARSERS
@given(text=NASTY_TEXT | st.text())
def test_names_refuse_exactly_the_control_characters(text):
    controls = [c for c in text if ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F or 0xD800 <= ord(c) <= 0xDFFF]
    try:
        assert plain_text(text) == text
        assert not controls
        text.encode("utf-8")
    except ValueError:
        assert controls
    prose_controls = [c for c in controls if c not in "\t\n\r"]
    try:
        assert free_text(text) == text
        assert not prose_controls
    except ValueError:
        assert prose_controls


@PARSERS
@given(
    name=st.one_of(
        st.sampled_from(["America", "Etc", "Europe", "", ".", "..", "../etc", "UTC\x00"]), NASTY_TEXT
    )
)
def test_a_time_zone_is_a_zone_or_refused(name):
    try:
        known_zone(name)
    except ValueError:
        return
    ZoneInfo(name)


JSON_LEAVES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**80), 2**80),
    st.floats(),
    NASTY_TEXT,
    st.sampled_from(["\ud800", "a\udfffb", "\x00"]),
    LONG_TEXT,
)
JSON_VALUES = st.recursive(
    JSON_LEAVES,
    lambda inner: (
        st.lists(inner, max_size=25) | st.dictionaries(NASTY_TEXT | JSON_LEAVES.map(str), inner, max_size=25)
    ),
    max_leaves=60,
)


@PARSERS
@given(value=JSON_VALUES)
def test_echoed_inputs_always_encode(value):
    json.dumps(shorten(value), ensure_ascii=False).encode("utf-8")


# ---------- routes through the app, on SQLite and PostgreSQL ----------


def tiny_png(seed: int = 0) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 255, (64, 32, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture
def world(database_url, settings_for, start_app, helpers):
    """An app (no rate limit) with one store (two zones with a camera each, person search on) and its key."""
    client = start_app(settings_for(database_url, rate_limit_per_minute=0, max_images_per_request=3))
    store = helpers.make_store(client, ["entrance", "toys"])
    seen = helpers.post_sighting(
        client, store, "entrance", helpers.story_image(2000, 0), "2025-11-25T10:00:00Z"
    )
    assert seen.status_code == 201, seen.text
    store["visitor"] = seen.json()["sightings"][0]["visitor_id"]
    store["sighting"] = seen.json()["sightings"][0]["sighting_id"]
    return client, store


def maybe(strategy):
    return st.none() | strategy


def mostly(valid, hostile):
    """A valid value half the time (so that requests get past the first check), a hostile one otherwise."""
    return st.one_of(st.just(valid) if not isinstance(valid, st.SearchStrategy) else valid, hostile)


def test_query_parameters_never_give_a_5xx(world, helpers):
    seen: Counter[int] = Counter()

    @ROUTES
    @given(data=st.data())
    def check(data):
        client, store = world
        headers = store["headers"]
        stamp = STAMPS | RECENT.map(lambda d: d.isoformat())
        density = {
            "start": data.draw(stamp),
            "end": data.draw(stamp),
            "bucket": data.draw(DURATIONS),
            "zone_id": data.draw(maybe(NUMBERS | st.just(str(store["zones"]["toys"])))),
        }
        params = {k: v for k, v in density.items() if v is not None}
        answered(client.get("/density", params=params, headers=headers), seen)
        audit = {
            "case_id": data.draw(maybe(NASTY_TEXT | LONG_TEXT)),
            "since": data.draw(maybe(stamp)),
            "until": data.draw(maybe(stamp)),
            "before_id": data.draw(maybe(NUMBERS)),
            "limit": data.draw(maybe(NUMBERS)),
        }
        audit = {k: v for k, v in audit.items() if v is not None}
        answered(client.get(f"/stores/{store['id']}/match-audit", params=audit, headers=helpers.admin), seen)
        listing = {
            "start": data.draw(maybe(stamp)),
            "end": data.draw(maybe(stamp)),
            "camera_id": data.draw(maybe(NUMBERS)),
            "zone_id": data.draw(maybe(NUMBERS)),
            "visitor_id": data.draw(maybe(NUMBERS)),
            "track_id": data.draw(maybe(NASTY_TEXT)),
            "before_id": data.draw(maybe(NUMBERS)),
            "limit": data.draw(maybe(NUMBERS)),
        }
        listing = {k: v for k, v in listing.items() if v is not None}
        answered(client.get("/sightings", params=listing, headers=headers), seen)
        raw = data.draw(st.binary(max_size=40))  # bytes that are not UTF-8, percent-encoded as they are
        answered(
            client.get(f"/density?start={quote(raw)}&end={quote(raw)}&bucket={quote(raw)}", headers=headers),
            seen,
        )
        key = data.draw(st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=60))
        answered(
            client.get("/density", params={"start": "x", "end": "y"}, headers={"X-API-Key": "reid_" + key}),
            seen,
        )

    check()
    assert seen[200] and seen[400] and seen[200] + seen[400] == sum(seen.values()), seen


def test_form_fields_never_give_a_5xx(world):
    seen: Counter[int] = Counter()

    @ROUTES
    @given(data=st.data())
    def check(data):
        client, store = world
        headers = store["headers"]
        stamp = STAMPS | RECENT.map(lambda d: d.isoformat())
        recent = RECENT.map(lambda d: d.isoformat())
        fields = {
            "case_id": data.draw(mostly("case-1", maybe(NASTY_TEXT | LONG_TEXT))),
            "reason": data.draw(maybe(NASTY_TEXT | LONG_TEXT)),
            "top_k": data.draw(maybe(mostly("5", NUMBERS))),
            "since": data.draw(maybe(mostly(recent, stamp))),
            "until": data.draw(maybe(stamp)),
            "zone_id": data.draw(maybe(mostly(str(store["zones"]["toys"]), NUMBERS))),
            "min_similarity": data.draw(maybe(mostly("0.1", NUMBERS))),
        }
        files = {"image": ("q.png", tiny_png(), "image/png")}
        match = client.post(
            "/match", data={k: v for k, v in fields.items() if v is not None}, files=files, headers=headers
        )
        answered(match, seen)
        count = data.draw(st.integers(1, 3))
        sighting = {
            "camera_id": data.draw(mostly(str(store["cameras"]["toys"]), NUMBERS)),
            "captured_at": data.draw(
                mostly(recent.map(lambda t: [t]), st.lists(stamp, min_size=1, max_size=3))
            ),
            "track_id": data.draw(
                maybe(st.lists(mostly("t-1", NASTY_TEXT | LONG_TEXT), min_size=1, max_size=3))
            ),
        }
        images = [("images", (f"{i}.png", tiny_png(i), "image/png")) for i in range(count)]
        posted = client.post(
            "/sightings",
            data={k: v for k, v in sighting.items() if v is not None},
            files=images,
            headers=headers,
        )
        answered(posted, seen)

    check()
    assert seen[200] and seen[400] and seen[200] + seen[400] == sum(seen.values()), seen


def json_routes(client, store, helpers) -> list[tuple[str, str, dict]]:
    """(method, path, key header) of every operation that takes a JSON body, with the store's real ids in
    the path (a staff member is enrolled for the staff routes) and the key the operation wants."""
    photo = ("images", ("staff.png", helpers.png(helpers.story_image(2001, 0)), "image/png"))
    staff = client.post("/staff", data={"name": "fuzzed"}, files=[photo], headers=store["headers"])
    assert staff.status_code == 201, staff.text
    real = {
        "store_id": store["id"],
        "camera_id": store["cameras"]["toys"],
        "visitor_id": store["visitor"],
        "staff_id": staff.json()["id"],
    }
    routes = []
    for path, item in client.get("/openapi.json").json()["paths"].items():
        for method, operation in item.items():
            if "application/json" in operation.get("requestBody", {}).get("content", {}):
                concrete = re.sub(r"\{(\w+)\}", lambda m: str(real[m.group(1)]), path)
                key = helpers.admin if "admin" in operation.get("tags", []) else store["headers"]
                routes.append((method.upper(), concrete, key))
    assert len(routes) >= 9, routes
    return routes


SHAPED_BODIES = st.fixed_dictionaries(
    {},
    optional={
        "name": NASTY_TEXT | LONG_TEXT | JSON_LEAVES,
        "timezone": st.sampled_from(["America", "Etc", "Europe/Berlin", "UTC\x00", "../../etc/passwd"])
        | NASTY_TEXT,
        "match_enabled": JSON_LEAVES,
        "match_threshold": JSON_LEAVES,
        "zone_id": JSON_LEAVES,
        "camera_ids": st.lists(st.integers(-(2**70), 2**70), max_size=5) | JSON_LEAVES,
        "transits": st.lists(
            st.fixed_dictionaries(
                {"zone_ids": st.lists(st.integers(-(2**70), 2**70), max_size=3), "min_seconds": JSON_LEAVES}
            ),
            max_size=3,
        ),
        "start": STAMPS | JSON_LEAVES,
        "end": STAMPS | JSON_LEAVES,
    },
)
RAW_BODIES = st.one_of(
    st.binary(max_size=200),
    st.sampled_from(
        [
            b'{"name": "\\ud800"}',
            b'{"\\ud800": 1}',
            b'"\\udfff"',
            b"[" * 5000 + b"]" * 5000,
            b"{",
            b"\xff\xfe",
        ]
        + [b'{"name": "a\\u0000b"}', b'{"name": 1e999}', b'{"timezone": "America"}', b"null"]
    ),
)


def test_json_bodies_never_give_a_5xx(world, helpers):
    seen: Counter[int] = Counter()

    client, store = world
    routes = json_routes(client, store, helpers)

    @ROUTES
    @given(data=st.data())
    def check(data):
        method, path, key = data.draw(st.sampled_from(routes))
        body = data.draw(
            st.one_of(SHAPED_BODIES, JSON_VALUES).map(lambda v: json.dumps(v).encode()) | RAW_BODIES
        )
        content_type = data.draw(
            st.sampled_from(["application/json", "application/json; charset=latin-1", "text/plain"])
        )
        headers = key | {"content-type": content_type}
        answered(client.request(method, path, content=body, headers=headers), seen)

    check()
    assert seen[200] and seen[400] and seen[200] + seen[400] == sum(seen.values()), seen


def test_ids_that_are_not_ids_never_give_a_5xx(world, helpers):
    seen: Counter[int] = Counter()

    client, store = world
    operations = [
        (method.upper(), path, "admin" in operation.get("tags", []))
        for path, item in client.get("/openapi.json").json()["paths"].items()
        for method, operation in item.items()
        if "{" in path and method.upper() != "DELETE"
    ]

    @ROUTES
    @given(data=st.data())
    def check(data):
        method, path, admin = data.draw(st.sampled_from(operations))
        ids = st.one_of(NUMBERS, NASTY_TEXT.filter(lambda t: "/" not in t and t not in (".", "..")))
        concrete = re.sub(r"\{\w+\}", lambda _: quote(data.draw(ids), safe="") or "0", path)
        headers = helpers.admin if admin else store["headers"]
        answered(client.request(method, concrete, headers=headers), seen)

    check()
    assert seen[400] and seen[200] + seen[400] == sum(seen.values()), seen


def test_text_fields_with_nul_are_refused_on_both_databases(world, helpers):
    client, store = world
    admin, key = helpers.admin, store["headers"]
    store_id = store["id"]
    for path, body in [
        ("/stores", {"name": "a\x00b"}),
        (f"/stores/{store_id}/zones", {"name": "a\x00b"}),
        (f"/stores/{store_id}/cameras", {"name": "a\x00b", "zone_id": store["zones"]["toys"]}),
        (f"/stores/{store_id}/keys", {"name": "a\x00b"}),
    ]:
        refused = client.post(path, json=body, headers=admin)
        assert refused.status_code == 422, (path, refused.text)
        assert "control characters" in refused.text
    assert client.patch(f"/stores/{store_id}", json={"name": "\x00"}, headers=admin).status_code == 422
    files = {"image": ("q.png", tiny_png(), "image/png")}
    for fields in ({"case_id": "c\x00"}, {"reason": "why\x00"}, {"case_id": "c", "reason": "r\x00"}):
        assert client.post("/match", data=fields, files=files, headers=key).status_code == 422
    multi_line = client.post("/match", data={"reason": "lost child\nred coat"}, files=files, headers=key)
    assert multi_line.status_code == 200, multi_line.text
    audit = client.get(f"/stores/{store_id}/match-audit", params={"case_id": "\x00"}, headers=admin)
    assert audit.status_code == 422
    assert client.get("/sightings", params={"track_id": "t\x00"}, headers=key).status_code == 422
    posted = client.post(
        "/sightings",
        data={
            "camera_id": store["cameras"]["toys"],
            "captured_at": "2025-11-25T10:00:00Z",
            "track_id": "\x00",
        },
        files=[("images", ("a.png", tiny_png(), "image/png"))],
        headers=key,
    )
    assert posted.status_code == 422


def test_folders_of_the_time_zone_database_are_not_zones(world, helpers):
    client, store = world
    for name in ("America", "Etc", "Europe", "America/", "America/Argentina"):
        created = client.post("/stores", json={"name": "x", "timezone": name}, headers=helpers.admin)
        assert created.status_code == 422, (name, created.text)
        changed = client.patch(f"/stores/{store['id']}", json={"timezone": name}, headers=helpers.admin)
        assert changed.status_code == 422, (name, changed.text)
    fine = client.post(
        "/stores", json={"name": "x", "timezone": "America/Argentina/Salta"}, headers=helpers.admin
    )
    assert fine.status_code == 201


def test_a_lone_surrogate_in_json_is_a_422(world, helpers):
    client, store = world
    for body in (b'{"name": "\\ud800"}', b'{"name": "x", "timezone": "\\udfff"}', b'"\\ud800"'):
        answer = client.post(
            "/stores", content=body, headers=helpers.admin | {"content-type": "application/json"}
        )
        assert answer.status_code == 422, answer.text
        answer.json()


def test_timestamps_at_the_ends_of_the_calendar_are_refused_plainly(world, helpers):
    client, store = world
    key, admin = store["headers"], helpers.admin
    files = {"image": ("q.png", tiny_png(), "image/png")}
    for stamp in ("0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00", "9999-12-31T23:59:59.999999Z"):
        for params in (
            {"start": stamp, "end": "2026-01-01T00:00:00Z"},
            {"start": "2026-01-01T00:00:00Z", "end": stamp},
        ):
            answer = client.get("/density", params=params, headers=key)
            assert answer.status_code == 422 and "out of range" in answer.text, answer.text
        assert (
            client.get(
                f"/stores/{store['id']}/match-audit", params={"since": stamp}, headers=admin
            ).status_code
            == 422
        )
        assert (
            client.post("/match", data={"case_id": "c", "until": stamp}, files=files, headers=key).status_code
            == 422
        )
        posted = client.post(
            "/sightings",
            data={"camera_id": store["cameras"]["toys"], "captured_at": stamp},
            files=[("images", ("a.png", tiny_png(), "image/png"))],
            headers=key,
        )
        assert posted.status_code == 422
    everything = {"start": "0001-01-02T00:00:00Z", "end": "9999-12-30T00:00:00Z", "bucket": "1e300"}
    assert client.get("/density", params=everything, headers=key).status_code == 200
    last_day = {"start": "9999-12-29T00:00:00-01:00", "end": "9999-12-30T23:00:00Z", "bucket": "P1D"}
    assert client.get("/density", params=last_day, headers=key).status_code == 200


def test_tiny_infinite_and_huge_buckets(world):
    client, store = world
    window = {"start": "2025-11-25T09:00:00Z", "end": "2025-11-25T11:00:00Z"}
    for bucket in ("0.0001", "PT0.0001S", "1e-300", "inf", "nan", "-inf", "P" + "9" * 400 + "D", "0.5"):
        answer = client.get("/density", params=window | {"bucket": bucket}, headers=store["headers"])
        assert answer.status_code == 422, (bucket, answer.text)
    for bucket in ("1e300", "P99999999W", "86400e200"):
        answer = client.get("/density", params=window | {"bucket": bucket}, headers=store["headers"])
        assert answer.status_code == 200, (bucket, answer.text)
        buckets = answer.json()["zones"][0]["buckets"]
        assert [(b["start"], b["end"]) for b in buckets] == [("2025-11-25T09:00:00Z", "2025-11-25T11:00:00Z")]


def test_up_to_the_documented_number_of_buckets_on_both_databases(world):
    client, store = world
    week = {"start": "2025-11-19T00:00:00Z", "end": "2025-11-26T00:00:00Z", "bucket": "PT15M"}
    answer = client.get("/density", params=week, headers=store["headers"])
    assert answer.status_code == 200, answer.text
    entrance = next(z for z in answer.json()["zones"] if z["name"] == "entrance")
    assert len(entrance["buckets"]) == 672
    ten = next(b for b in entrance["buckets"] if b["start"] == "2025-11-25T10:00:00Z")
    assert ten["sightings"] == 1 and ten["unique_visitors"] == 1 and entrance["totals"]["sightings"] == 1
    thousand = {"start": "2025-11-25T00:00:00Z", "end": "2025-11-25T16:40:00Z", "bucket": "60"}
    answer = client.get("/density", params=thousand, headers=store["headers"])
    assert answer.status_code == 200 and len(answer.json()["zones"][0]["buckets"]) == 1000
    one_more = {"start": "2025-11-25T00:00:00Z", "end": "2025-11-25T16:41:00Z", "bucket": "60"}
    answer = client.get("/density", params=one_more, headers=store["headers"])
    assert answer.status_code == 422 and "1001 buckets" in answer.text
