"""The API contract as a client reads it: a valid OpenAPI schema that states what the service enforces,
and plain answers for bodies of the wrong kind, long inputs and mangled timestamps."""

from __future__ import annotations

import pytest
from openapi_spec_validator import validate

from service.storage.db import migrate

UPLOADS = {("/sightings", "images"), ("/match", "image"), ("/embed", "images")}


@pytest.fixture
def app_client(tmp_path, settings_for, start_app):
    """An app on SQLite with limits other than the defaults, so the schema must follow the settings."""
    url = f"sqlite:///{tmp_path / 'openapi.db'}"
    migrate(url)
    return start_app(settings_for(url, max_top_k=12, max_images_per_request=5))


@pytest.fixture
def schema(app_client) -> dict:
    return app_client.get("/openapi.json").json()


def body_schema(schema: dict, path: str, method: str = "post", media: str = "multipart/form-data") -> dict:
    body = schema["paths"][path][method]["requestBody"]["content"][media]["schema"]
    return schema["components"]["schemas"][body["$ref"].rsplit("/", 1)[-1]]


def test_the_schema_is_valid_openapi(schema):
    assert schema["openapi"].startswith("3.1")
    validate(schema)


def test_uploads_are_binary_files_and_limits_follow_the_settings(schema):
    for path, field in UPLOADS:
        prop = body_schema(schema, path)["properties"][field]
        file = prop.get("items", prop)
        assert file["type"] == "string" and file["format"] == "binary", (path, prop)
    for path in ("/sightings", "/embed"):
        assert body_schema(schema, path)["properties"]["images"]["maxItems"] == 5
    top_k = body_schema(schema, "/match")["properties"]["top_k"]
    assert (top_k["minimum"], top_k["maximum"], top_k["default"]) == (1, 12, 10)


def test_every_answer_has_a_schema_of_its_real_media_type(schema):
    crop = schema["paths"]["/sightings/{sighting_id}/crop"]["get"]["responses"]["200"]["content"]
    assert set(crop) == {"image/jpeg", "image/png", "image/bmp"}
    assert all(media["schema"] == {"type": "string", "format": "binary"} for media in crop.values())
    metrics = schema["paths"]["/metrics"]["get"]["responses"]["200"]["content"]
    assert list(metrics) == ["text/plain"]
    ready = schema["paths"]["/readyz"]["get"]["responses"]
    assert ready["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ReadinessOut"
    }
    assert ready["503"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ReadinessOut"
    }
    for path, _ in UPLOADS:
        assert "415" in schema["paths"][path]["post"]["responses"], path


def test_the_key_body_is_optional_but_never_null(schema, app_client, helpers):
    body = schema["paths"]["/stores/{store_id}/keys"]["post"]["requestBody"]
    assert not body.get("required", False)
    assert body["content"]["application/json"]["schema"]["$ref"] == "#/components/schemas/KeyIn"
    store = app_client.post("/stores", json={"name": "s"}, headers=helpers.admin).json()
    bare = app_client.post(f"/stores/{store['id']}/keys", headers=helpers.admin)
    assert bare.status_code == 201, bare.text
    assert bare.json()["name"] == "default"
    named = app_client.post(f"/stores/{store['id']}/keys", json={"name": "till"}, headers=helpers.admin)
    assert named.json()["name"] == "till"


def test_a_body_that_is_not_multipart_gets_415(app_client, helpers):
    store = helpers.make_store(app_client, ["entrance"])
    headers = store["headers"]
    as_json = app_client.post(
        "/sightings", json={"camera_id": 1, "captured_at": "2026-11-25T10:00:00Z"}, headers=headers
    )
    assert as_json.status_code == 415, as_json.text
    assert "multipart/form-data" in as_json.json()["detail"]
    assert "application/json" in as_json.json()["detail"]
    raw = app_client.post(
        "/match", content=b"\x89PNG\r\n\x1a\n...", headers={**headers, "content-type": "image/png"}
    )
    assert raw.status_code == 415 and "multipart/form-data" in raw.json()["detail"]
    embed = app_client.post("/embed", content=b"BM...", headers={**headers, "content-type": "image/bmp"})
    assert embed.status_code == 415
    empty = app_client.post("/sightings", headers=headers)
    assert empty.status_code == 422


def test_a_422_echoes_long_inputs_cut(app_client, helpers):
    store = helpers.make_store(app_client, ["entrance"])
    huge = "7" * 1_000_000
    response = app_client.post(
        "/sightings",
        data={"camera_id": huge, "captured_at": "2026-11-25T10:00:00Z"},
        files=[("images", ("a.png", b"not read", "image/png"))],
        headers=store["headers"],
    )
    assert response.status_code == 422
    assert len(response.content) < 2_000
    (error,) = [e for e in response.json()["detail"] if e["loc"][-1] == "camera_id"]
    assert error["input"].startswith("7" * 200) and "1000000 characters, cut" in error["input"]


def test_a_plus_sent_as_a_space_gets_a_hint_and_too_many_buckets_is_a_422(app_client, helpers):
    store = helpers.make_store(app_client, ["entrance"])
    query = "start=2026-11-25T09:00:00+01:00&end=2026-11-25T10:00:00%2B01:00"
    mangled = app_client.get(f"/density?{query}", headers=store["headers"])
    assert mangled.status_code == 422
    assert "%2B" in mangled.json()["detail"], mangled.text
    encoded = app_client.get(f"/density?{query.replace('+', '%2B')}", headers=store["headers"])
    assert encoded.status_code == 200, encoded.text
    many = app_client.get(
        "/density",
        params={"start": "2026-11-01T00:00:00Z", "end": "2026-11-30T00:00:00Z", "bucket": "60"},
        headers=store["headers"],
    )
    assert many.status_code == 422 and "the limit is" in many.json()["detail"]
