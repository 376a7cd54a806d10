"""An integrator's first hour: generate a Python client from the live ``/openapi.json`` with
openapi-python-client (and ``docs/openapi-client.yaml``), then run a store's whole story through it:
admin setup, sightings with images, person search, density, a kept crop, erasure. Every answer is
parsed into the generated models, and the schema itself passes openapi-spec-validator."""

from __future__ import annotations

import importlib
import io
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import uvicorn
from openapi_spec_validator import validate

from service.app import create_app
from service.storage.db import migrate

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "docs" / "openapi-client.yaml"
PACKAGE = "reid_client"
DAY = "2026-11-24"


@contextmanager
def serving(app) -> Iterator[str]:
    """The app served by uvicorn on a free loopback port (lifespan included)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the service did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()


def generate_client(base_url: str, out: Path):
    """Fetch and validate the schema, generate the package into ``out`` and import it."""
    schema = httpx.get(f"{base_url}/openapi.json", timeout=30).json()
    validate(schema)
    spec = out / "openapi.json"
    spec.write_text(httpx.get(f"{base_url}/openapi.json").text)
    generator = Path(sys.executable).with_name("openapi-python-client")
    command = [str(generator), "generate", "--path", str(spec), "--output-path", str(out / PACKAGE)]
    done = subprocess.run(
        [*command, "--meta", "none", "--config", str(CONFIG)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "WARNING" not in done.stdout + done.stderr, done.stdout + done.stderr
    sys.path.insert(0, str(out))
    try:
        importlib.invalidate_caches()
        return importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(out))


@pytest.fixture
def generated(tmp_path, settings_for, loaded_model):
    """The generated package and the live service it was generated from (crops kept, so they can be read)."""
    url = f"sqlite:///{tmp_path / 'client.db'}"
    migrate(url)
    app = create_app(settings_for(url, store_crops=True, max_top_k=20), loaded_model)
    with serving(app) as base_url:
        package = generate_client(base_url, tmp_path)
        try:
            yield package, base_url
        finally:
            for name in [m for m in sys.modules if m == PACKAGE or m.startswith(f"{PACKAGE}.")]:
                del sys.modules[name]


def api(operation: str):
    """A generated operation module by its tag and operation id, e.g. ``admin.create_store_stores_post``."""
    return importlib.import_module(f"{PACKAGE}.api.{operation}")


def test_the_whole_story_through_a_generated_client(generated, helpers, cast):
    package, base_url = generated
    models = importlib.import_module(f"{PACKAGE}.models")
    types = importlib.import_module(f"{PACKAGE}.types")
    options = {
        "base_url": base_url,
        "prefix": "",
        "auth_header_name": "X-API-Key",
        "raise_on_unexpected_status": True,
    }
    admin = package.AuthenticatedClient(token=helpers.admin["X-API-Key"], **options)
    public = package.Client(base_url=base_url, raise_on_unexpected_status=True)

    def photo(person: int, view: int) -> types.File:
        data = helpers.png(helpers.story_image(person, view))
        return types.File(payload=io.BytesIO(data), file_name=f"{person}-{view}.png", mime_type="image/png")

    ready = api("health.readyz_readyz_get").sync(client=public)
    assert isinstance(ready, models.ReadinessOut) and ready.status == "ready" and ready.model.trained
    assert isinstance(api("health.healthz_healthz_get").sync(client=public), models.HealthOut)
    assert "reid_" in api("health.metrics_metrics_get").sync(client=public)

    # admin setup: a store, two zones with a camera each, a key made without a body
    store = api("admin.create_store_stores_post").sync(
        client=admin, body=models.StoreIn(name="Generated", timezone="Europe/Berlin", match_enabled=True)
    )
    assert isinstance(store, models.StoreOut)
    cameras = {}
    for zone_name in ("Entrance", "Tills"):
        zone = api("admin.create_zone_stores_store_id_zones_post").sync(
            store.id, client=admin, body=models.ZoneIn(name=zone_name)
        )
        assert isinstance(zone, models.ZoneOut)
        camera = api("admin.create_camera_stores_store_id_cameras_post").sync(
            store.id, client=admin, body=models.CameraIn(name=f"{zone_name}-cam", zone_id=zone.id)
        )
        assert isinstance(camera, models.CameraOut)
        cameras[zone_name] = camera
    key = api("admin.create_key_stores_store_id_keys_post").sync(store.id, client=admin)
    assert isinstance(key, models.NewKeyOut) and key.name == "default"
    shop = package.AuthenticatedClient(token=key.key, **options)
    missing = api("admin.get_store_stores_store_id_get").sync(999, client=admin)
    assert isinstance(missing, models.ErrorOut) and "999" in missing.detail

    # sightings with images: two shoppers, the first seen by both cameras
    post = api("sightings.post_sightings_sightings_post")
    first, second = cast.people[:2]
    seen = []
    for person, view, zone, clock in [
        (first, 0, "Entrance", "09:05"),
        (second, 0, "Entrance", "09:10"),
        (first, 1, "Tills", "09:40"),
    ]:
        body = models.BodyPostSightingsSightingsPost(
            images=[photo(person, view)], camera_id=cameras[zone].id, captured_at=[f"{DAY}T{clock}:00+01:00"]
        )
        answer = post.sync(client=shop, body=body)
        assert isinstance(answer, models.SightingsOut), answer
        assert isinstance(answer.sightings[0], models.SightingOut)
        seen.append(answer.sightings[0])
    assert seen[0].visitor_id == seen[2].visitor_id != seen[1].visitor_id
    shopper = seen[0].visitor_id

    crop = api("sightings.get_crop_sightings_sighting_id_crop_get").sync(seen[0].sighting_id, client=shop)
    assert isinstance(crop, types.File)
    assert crop.payload.read() == helpers.png(helpers.story_image(first, 0))

    embedded = api("embedding.embed_embed_post").sync(
        client=shop, body=models.BodyEmbedEmbedPost(images=[photo(first, 2), photo(second, 2)])
    )
    assert isinstance(embedded, models.EmbedOut) and len(embedded.embeddings) == 2
    assert len(embedded.embeddings[0]) == embedded.dim

    # person search: the first shopper, last seen at the tills, by camera name
    match = api("matching.match_match_post")
    found = match.sync(
        client=shop, body=models.BodyMatchMatchPost(image=photo(first, 4), case_id="gen-client-1", top_k=3)
    )
    assert isinstance(found, models.MatchesOut), found
    assert all(isinstance(m, models.MatchOut) for m in found.matches)
    best = found.visitors[0]
    assert isinstance(best, models.LastSeenOut)
    assert (best.visitor_id, best.zone_name, best.camera_name) == (shopper, "Tills", "Tills-cam")
    too_many = match.sync(
        client=shop, body=models.BodyMatchMatchPost(image=photo(first, 4), case_id="gen-client-1", top_k=21)
    )
    assert isinstance(too_many, models.ErrorOut) and "at most 20" in str(too_many.detail)

    # density over the day, in the store's time zone
    report = api("analytics.density_density_get").sync(
        client=shop, start=f"{DAY}T00:00:00+01:00", end=f"{DAY}T12:00:00+01:00", bucket="PT1H"
    )
    assert isinstance(report, models.DensityOut)
    totals = {zone.name: zone.totals.unique_visitors for zone in report.zones}
    assert totals == {"Entrance": 2, "Tills": 1}
    assert all(isinstance(b, models.DensityBucketOut) for z in report.zones for b in z.buckets)

    audit = api("admin.match_audit_stores_store_id_match_audit_get").sync(store.id, client=admin)
    assert [type(row) for row in audit] == [models.MatchAuditOut]  # the refused top_k ran no search
    assert (audit[0].case_id, audit[0].outcome, audit[0].visitors) == (
        "gen-client-1",
        "ok",
        len(found.visitors),
    )

    # erasure: the shopper is gone from SQL, the index and search results
    erased = api("visitors.delete_visitor_visitors_visitor_id_delete").sync(shopper, client=shop)
    assert isinstance(erased, models.VisitorDeleted) and erased.sightings_deleted == 2
    again = match.sync(
        client=shop, body=models.BodyMatchMatchPost(image=photo(first, 4), case_id="gen-client-1", top_k=3)
    )
    assert shopper not in {v.visitor_id for v in again.visitors}
    gone = api("visitors.delete_visitor_visitors_visitor_id_delete").sync(shopper, client=shop)
    assert isinstance(gone, models.ErrorOut)
