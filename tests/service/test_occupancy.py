"""Live occupancy from a client's side: a server-sent event stream over a real server (uvicorn on
loopback, as reid-serve runs it), updated as sightings arrive, with heartbeats, reconnects, a bounded
life, a few hundred streams at once, and a clean shutdown while streams are open."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import uvicorn

from service.app import create_app
from service.http.server import ReidServer
from service.storage.db import migrate

STREAMS = 300
ZONES = ["entrance", "toys"]


class Live:
    """A running server and how to stop it."""

    def __init__(self, app, settings) -> None:
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.sock = sock
        self.url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        config = uvicorn.Config(app, log_level="warning", lifespan="on", timeout_keep_alive=30, backlog=2048)
        self.server = ReidServer(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [sock]}, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 60
        while not self.server.started:
            assert self.thread.is_alive() and time.monotonic() < deadline, "the server did not start"
            time.sleep(0.05)

    def stop(self) -> float:
        """Stop the server; returns how long it took."""
        started = time.monotonic()
        self.server.should_exit = True
        self.thread.join(timeout=30)
        self.sock.close()
        return time.monotonic() - started


@pytest.fixture
def serve(settings_for, loaded_model) -> Iterator[Callable[..., Live]]:
    running: list[Live] = []

    def start(url: str, **overrides) -> Live:
        values = {
            "rate_limit_per_minute": 0,
            "occupancy_poll_s": 0.2,
            "occupancy_heartbeat_s": 0.5,
        } | overrides
        live = Live(create_app(settings_for(url, **values), loaded_model), values)
        running.append(live)
        return live

    yield start
    for live in running:
        if live.thread.is_alive():
            live.stop()


def now_iso(seconds_ago: float = 0.0) -> str:
    return (datetime.now(UTC) - timedelta(seconds=seconds_ago)).isoformat()


async def events(response: httpx.Response):
    """Parse a text/event-stream: yields ("retry", ms), ("heartbeat", None) or (event name, data)."""
    fields: dict[str, str] = {}
    async for line in response.aiter_lines():
        if line.startswith(":"):
            yield "heartbeat", None
        elif line.startswith("retry:"):
            yield "retry", int(line.split(":", 1)[1])
        elif line == "":
            if "data" in fields:
                yield fields.get("event", "message"), json.loads(fields["data"]) | {"_id": fields.get("id")}
            fields = {}
        else:
            name, _, value = line.partition(":")
            fields[name] = value.strip()


async def next_occupancy(stream, timeout: float = 10.0) -> dict:
    """The next occupancy event (heartbeats before it are skipped)."""
    async with asyncio.timeout(timeout):
        async for kind, data in stream:
            if kind == "occupancy":
                return data
    raise AssertionError("the stream ended")


def counts(event: dict) -> dict[str, int]:
    return {z["name"]: z["present"] for z in event["zones"]}


def test_the_stream_follows_sightings_erasures_and_reconnects(database_url, serve, helpers, cast):
    live = serve(database_url, occupancy_stream_max_s=6)
    with httpx.Client(base_url=live.url, timeout=30) as api:
        store = helpers.make_store(api, ZONES)
        shopper = cast.people[0]

        async def scenario():
            async with httpx.AsyncClient(base_url=live.url, timeout=30, headers=store["headers"]) as client:
                async with client.stream("GET", "/occupancy/live") as response:
                    assert response.status_code == 200
                    assert response.headers["content-type"].startswith("text/event-stream")
                    assert response.headers["cache-control"] == "no-store"
                    stream = events(response)
                    assert await anext(stream) == ("retry", 3000)
                    first = await next_occupancy(stream)
                    assert (first["total"], counts(first)) == (0, {"entrance": 0, "toys": 0})

                    posted = await asyncio.to_thread(
                        helpers.post_sighting, api, store, "toys", helpers.story_image(shopper, 0), now_iso(5)
                    )
                    assert posted.status_code == 201, posted.text
                    sent = time.monotonic()
                    update = await next_occupancy(stream)
                    assert time.monotonic() - sent < 3.0  # polled every 0.2 s
                    assert counts(update) == {"entrance": 0, "toys": 1}
                    assert int(update["_id"]) > int(first["_id"])

                    visitor = posted.json()["sightings"][0]["visitor_id"]
                    async with asyncio.timeout(5):  # nothing changes: heartbeats only (every 0.5 s)
                        kinds = [kind for kind, _ in [await anext(stream) for _ in range(2)]]
                    assert kinds == ["heartbeat", "heartbeat"]

                    erased = await asyncio.to_thread(
                        api.delete, f"/visitors/{visitor}", headers=store["headers"]
                    )
                    assert erased.status_code == 200
                    assert (await next_occupancy(stream))["total"] == 0

                # a reconnect gets the current figures at once
                await asyncio.to_thread(
                    helpers.post_sighting, api, store, "entrance", helpers.story_image(shopper, 1), now_iso(1)
                )
                async with client.stream("GET", "/occupancy/live", headers={"Last-Event-ID": "3"}) as again:
                    stream = events(again)
                    await anext(stream)
                    assert counts(await next_occupancy(stream)) == {"entrance": 1, "toys": 0}
                    started = time.monotonic()
                    async for _ in stream:  # the server ends the stream after REID_OCCUPANCY_STREAM_MAX_S
                        pass
                    assert time.monotonic() - started < 10
                async with client.stream("GET", "/occupancy/live", params={"max_s": 0}) as short:
                    kinds = [kind async for kind, _ in events(short)]
                    assert kinds == ["retry", "occupancy"]
                unauthenticated = await client.get("/occupancy/live", headers={"X-API-Key": "nope"})
                assert unauthenticated.status_code == 401

        asyncio.run(scenario())
        snapshot = api.get("/occupancy", headers=store["headers"]).json()
        assert snapshot["total"] == 1 and snapshot["include_staff"] is False


def test_hundreds_of_streams_get_one_update_and_the_server_still_stops(tmp_path, serve, helpers, cast):
    """300 open streams share one database poll; all hear of a new sighting; stopping the server while
    they are open ends them (bounded: the whole test has a time limit)."""
    url = f"sqlite:///{tmp_path / 'streams.db'}"
    migrate(url)
    live = serve(url, occupancy_max_streams=STREAMS)
    with httpx.Client(base_url=live.url, timeout=30) as api:
        store = helpers.make_store(api, ZONES)
    opened = asyncio.Event()

    async def one(client: httpx.AsyncClient, ready: list, heard: list) -> None:
        async with client.stream("GET", "/occupancy/live") as response:
            assert response.status_code == 200
            stream = events(response)
            await anext(stream)
            await next_occupancy(stream, timeout=60)
            ready.append(1)
            if len(ready) == STREAMS:
                opened.set()
            heard.append(await next_occupancy(stream, timeout=60))
            with EndsQuietly():
                async for _ in stream:  # until the server stops
                    pass

    async def scenario() -> tuple[list, float, int]:
        limits = httpx.Limits(max_connections=STREAMS + 10, max_keepalive_connections=0)
        async with httpx.AsyncClient(
            base_url=live.url, timeout=90, limits=limits, headers=store["headers"]
        ) as client:
            ready: list = []
            heard: list = []
            tasks = [asyncio.create_task(one(client, ready, heard)) for _ in range(STREAMS)]
            async with asyncio.timeout(90):
                await opened.wait()
                refused = await client.get("/occupancy/live")
                assert refused.status_code == 429 and "Retry-After" in refused.headers
                image = helpers.story_image(cast.people[0], 0)
                posted = await client.post(
                    "/sightings",
                    data={"camera_id": store["cameras"]["entrance"], "captured_at": now_iso(2)},
                    files=[("images", ("crop.png", helpers.png(image), "image/png"))],
                )
                assert posted.status_code == 201, posted.text
                while len(heard) < STREAMS:
                    await asyncio.sleep(0.1)
                stopping = asyncio.to_thread(live.stop)
                took = await stopping
                await asyncio.gather(*tasks)
            return heard, took, len(ready)

    heard, took, ready = asyncio.run(scenario())
    assert ready == STREAMS
    assert all(counts(event) == {"entrance": 1, "toys": 0} for event in heard)
    assert took < 15  # uvicorn would wait for every open stream without the shutdown hook


class EndsQuietly:
    """A stream cut by the server's shutdown may end cleanly or with a protocol error: both are fine."""

    def __enter__(self):
        return self

    def __exit__(self, kind, value, traceback):
        return kind is None or issubclass(kind, httpx.HTTPError)
