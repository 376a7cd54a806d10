"""Every bad input gets a clear 4xx JSON error, and nothing acknowledged is lost."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

BAD_REQUESTS = [
    ("no key", {}, 401),
    ("unknown key", {"X-API-Key": "reid_0123456789ab_nope"}, 401),
    ("garbage key", {"X-API-Key": "x"}, 401),
]


@pytest.fixture
def sqlite_client(tmp_path, settings_for, start_app):
    from service.storage.db import migrate

    url = f"sqlite:///{tmp_path / 'errors.db'}"
    migrate(url)
    return start_app(settings_for(url, max_images_per_request=3, max_upload_bytes=200_000))


@pytest.fixture
def store(sqlite_client, helpers):
    return helpers.make_store(sqlite_client, ["entrance", "toys"])


def person(helpers, seed=0):
    from training.datasets.synthetic import render_person

    return helpers.png(render_person(7, 0, seed))


def assert_json_error(response, status):
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert response.json()["detail"]


@pytest.mark.parametrize(("case", "headers", "status"), BAD_REQUESTS)
def test_authentication(sqlite_client, case, headers, status):
    assert_json_error(sqlite_client.get("/stores", headers=headers), status)
    assert_json_error(sqlite_client.get("/density", headers=headers), status)


def test_roles(sqlite_client, store, helpers):
    assert_json_error(sqlite_client.get("/stores", headers=store["headers"]), 403)
    assert_json_error(sqlite_client.post("/stores", json={"name": "x"}, headers=store["headers"]), 403)
    sighting = sqlite_client.post(
        "/sightings",
        data={"camera_id": store["cameras"]["entrance"], "captured_at": "2026-11-25T10:00:00Z"},
        files=[("images", ("a.png", person(helpers), "image/png"))],
        headers=helpers.admin,
    )
    assert_json_error(sighting, 403)
    embedded = sqlite_client.post(
        "/embed", files=[("images", ("a.png", person(helpers), "image/png"))], headers=helpers.admin
    )
    assert embedded.status_code == 200
    assert len(embedded.json()["embeddings"]) == 1


def test_admin_inputs(sqlite_client, store, helpers):
    admin = helpers.admin
    assert_json_error(
        sqlite_client.post("/stores", json={"name": "x", "timezone": "Mars/Base"}, headers=admin), 422
    )
    assert_json_error(sqlite_client.get("/stores/999", headers=admin), 404)
    assert_json_error(sqlite_client.post("/stores/999/zones", json={"name": "a"}, headers=admin), 404)
    assert_json_error(
        sqlite_client.post(f"/stores/{store['id']}/zones", json={"name": "toys"}, headers=admin), 409
    )
    other = helpers.make_store(sqlite_client, ["elsewhere"])
    camera = {"name": "c", "zone_id": other["zones"]["elsewhere"]}
    assert_json_error(sqlite_client.post(f"/stores/{store['id']}/cameras", json=camera, headers=admin), 404)
    keys = sqlite_client.get(f"/stores/{store['id']}/keys", headers=admin).json()
    assert keys and "key" not in keys[0] and "key_hash" not in keys[0]


def post(client, store, files, **data):
    fields = {"camera_id": store["cameras"]["entrance"], "captured_at": "2026-11-25T10:00:00Z"} | data
    return client.post("/sightings", data=fields, files=files, headers=store["headers"])


def test_bad_uploads(sqlite_client, store, helpers):
    good = ("images", ("a.png", person(helpers), "image/png"))
    assert_json_error(post(sqlite_client, store, [("images", ("a.png", b"not an image", "image/png"))]), 422)
    assert_json_error(post(sqlite_client, store, [("images", ("a.png", b"", "image/png"))]), 422)
    gif = ("images", ("a.gif", b"GIF89a\x01\x00\x01\x00\x00\x00\x00;", "image/gif"))
    assert_json_error(post(sqlite_client, store, [gif]), 422)
    assert_json_error(post(sqlite_client, store, [good] * 4), 422)
    mislabelled = ("images", ("photo.jpg", person(helpers), "image/jpeg"))
    assert post(sqlite_client, store, [mislabelled]).status_code == 201
    assert_json_error(post(sqlite_client, store, []), 422)
    big = np.random.default_rng(0).integers(0, 255, (400, 400, 3), dtype=np.uint8)
    assert_json_error(
        post(sqlite_client, store, [("images", ("big.png", helpers.png(big), "image/png"))]), 413
    )
    assert_json_error(post(sqlite_client, store, [good], camera_id="999"), 404)
    assert_json_error(post(sqlite_client, store, [good], camera_id="abc"), 422)
    other = helpers.make_store(sqlite_client, ["elsewhere"])
    assert_json_error(post(sqlite_client, store, [good], camera_id=str(other["cameras"]["elsewhere"])), 404)
    far_future = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    for stamp in (
        "yesterday",
        "2026-11-25T10:00:00",
        "2026-13-01T00:00:00Z",
        "1969-12-31T23:59:59Z",
        far_future,
    ):
        assert_json_error(post(sqlite_client, store, [good], captured_at=stamp), 422)
    two_stamps = {"captured_at": ["2026-11-25T10:00:00Z", "2026-11-25T10:01:00Z"]}
    assert_json_error(post(sqlite_client, store, [good] * 3, **two_stamps), 422)
    embed = sqlite_client.post("/embed", files=[good] * 4, headers=store["headers"])
    assert_json_error(embed, 422)


def test_a_bad_image_stores_nothing_and_keeps_what_was_acknowledged(sqlite_client, store, helpers):
    good = ("images", ("a.png", person(helpers), "image/png"))
    assert post(sqlite_client, store, [good]).status_code == 201
    bad = ("images", ("b.png", b"broken", "image/png"))
    assert_json_error(post(sqlite_client, store, [good, bad]), 422)
    params = {"start": "2026-11-25T09:00:00Z", "end": "2026-11-25T11:00:00Z", "bucket": "PT2H"}
    report = sqlite_client.get("/density", params=params, headers=store["headers"]).json()
    entrance = next(z for z in report["zones"] if z["name"] == "entrance")
    assert entrance["totals"]["sightings"] == 1


def test_bad_match_and_density_queries(sqlite_client, store, helpers):
    image = person(helpers)
    headers = store["headers"]

    def match(**data):
        files = {"image": ("q.png", image, "image/png")}
        return sqlite_client.post("/match", data={"case_id": "c-1"} | data, files=files, headers=headers)

    assert_json_error(match(zone_id="999"), 404)
    assert_json_error(match(top_k="0"), 422)
    assert_json_error(match(top_k="100000"), 422)
    assert_json_error(match(since="soon"), 422)
    assert_json_error(match(since="2026-11-25T10:00:00Z", until="2026-11-25T09:00:00Z"), 422)
    assert_json_error(sqlite_client.post("/match", headers=headers), 422)
    assert match().status_code == 200

    def density(**params):
        base = {"start": "2026-11-25T09:00:00Z", "end": "2026-11-25T10:00:00Z"}
        return sqlite_client.get("/density", params=base | params, headers=headers)

    assert_json_error(density(bucket="fortnight"), 422)
    assert_json_error(density(bucket="-5"), 422)
    assert_json_error(density(bucket="1"), 422)
    assert_json_error(density(start="2026-11-25T09:00:00"), 422)
    assert_json_error(density(end="2026-11-25T08:00:00Z"), 422)
    assert_json_error(density(zone_id="999"), 404)
    assert_json_error(sqlite_client.get("/density", headers=headers), 422)
    assert density(bucket="PT15M").status_code == 200
    assert_json_error(sqlite_client.delete("/visitors/12345", headers=headers), 404)
    assert_json_error(sqlite_client.get("/no/such/route"), 404)


def test_health_and_metrics(sqlite_client, store, helpers):
    assert sqlite_client.get("/healthz").json() == {"status": "ok"}
    ready = sqlite_client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["model"]["trained"] is True
    assert "warning" not in ready.json()
    post(sqlite_client, store, [("images", ("a.png", person(helpers), "image/png"))])
    metrics = sqlite_client.get("/metrics").text
    assert "reid_embed_batch_size_count" in metrics
    assert 'reid_http_requests_total{method="POST",route="/sightings",status="201"}' in metrics
    assert "reid_index_vectors" in metrics
