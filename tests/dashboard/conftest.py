"""Dashboard fixtures: the service live on loopback with a known day of sightings, and headless Chromium."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from playwright.sync_api import Browser, BrowserContext, sync_playwright

from service.app import create_app
from service.dashboard import routes as dashboard
from service.embedding.model import UNTRAINED_WARNING, LoadedModel
from service.settings import Settings
from service.storage.db import migrate
from tests.dashboard.store_day import ADMIN_KEY, Scenario, replay_day
from tests.service import conftest as service_fixtures

model_dir = service_fixtures.model_dir
loaded_model = service_fixtures.loaded_model
cast = service_fixtures.cast

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).parent / "artifacts"


def _free_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


def floor_for(cast) -> float:
    """The find-a-person floor the dashboard tests serve: the cast's threshold, to two places (it lies
    between the least similarity of a person to themselves and the most to anyone else)."""
    return round(cast.threshold, 2)


@pytest.fixture(scope="session")
def live_url(loaded_model: LoadedModel, cast, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The service (dashboard router included) served by uvicorn on a free loopback port, temp SQLite DB."""
    yield from serve(loaded_model, cast, tmp_path_factory.mktemp("dashboard-service"))


@pytest.fixture(scope="session")
def untrained_url(loaded_model: LoadedModel, cast, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The same service as it runs when no exported model exists: the untrained fallback, flagged."""
    untrained = LoadedModel(loaded_model.embedder, trained=False, warning=UNTRAINED_WARNING)
    yield from serve(untrained, cast, tmp_path_factory.mktemp("dashboard-untrained"))


def serve(model: LoadedModel, cast, root: Path) -> Iterator[str]:
    """Serve an app with ``model`` on a fresh SQLite database under ``root``; yields its base URL."""
    database_url = f"sqlite:///{root / 'reid.db'}"
    migrate(database_url)
    settings = Settings(
        _env_file=None,
        database_url=database_url,
        index_dir=root / "indexes",
        admin_key=ADMIN_KEY,
        match_threshold=cast.threshold,
        embed_max_wait_ms=2.0,
        retention_days=service_fixtures.LONG_RETENTION_DAYS,
        dashboard_min_similarity=floor_for(cast),
        relink_interval_s=0,
        occupancy_poll_s=0.3,
        occupancy_stream_max_s=5,  # live streams end every few seconds: the page must reconnect
        link_time_penalty=0.0,  # the replayed day's first shopper goes unseen for 80 minutes in one visit
    )
    app = create_app(settings, model)
    if not any(getattr(route, "path", None) == "/" for route in app.routes):
        app.include_router(dashboard.router)
    sock = _free_socket()
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the service did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    server.should_exit = True
    thread.join(timeout=30)
    sock.close()


@pytest.fixture(scope="session")
def api_client(live_url: str) -> Iterator[httpx.Client]:
    """An HTTP client for the live service (admin calls and posting sightings)."""
    with httpx.Client(base_url=live_url, timeout=30) as client:
        yield client


@pytest.fixture(scope="session")
def scenario(live_url: str, api_client: httpx.Client, cast) -> Scenario:
    """A Berlin store with three zones and three shoppers walking through it on ``DAY`` (see store_day)."""
    return replay_day(live_url, api_client, cast.people)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Headless Debian Chromium driven by Playwright (no downloaded browser), one per test module.

    Playwright's sync API keeps an event loop running in the main thread while it is open, and later
    tests that call asyncio.run would fail."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: install the Debian 'chromium' package")
    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield instance
        instance.close()


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    """A fresh browser profile (empty localStorage), in a time zone other than the store's."""
    ctx = browser.new_context(
        viewport={"width": 1280, "height": 1000}, locale="en-GB", timezone_id="America/New_York"
    )
    yield ctx
    ctx.close()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """Where screenshots go (``tests/dashboard/artifacts/``, ignored by git)."""
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
