"""Privacy: person search is opt-in and audited, crops kept only on request, expired and erased data go."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import create_engine, func, select, text

from service.storage.db import migrate
from service.storage.models import DeletedSighting, MatchAudit, Sighting, SightingCrop, Visitor


def iso(moment: datetime) -> str:
    """An ISO 8601 UTC timestamp with a Z."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def count(url: str, statement) -> int:
    """One scalar count read straight from the database."""
    engine = create_engine(url)
    with engine.connect() as connection:
        value = connection.execute(statement).scalar_one()
    engine.dispose()
    return value


def audit(client, helpers, store_id: int, **params) -> list[dict]:
    """The admin's view of a store's person-search audit log."""
    response = client.get(f"/stores/{store_id}/match-audit", params=params, headers=helpers.admin)
    assert response.status_code == 200, response.text
    return response.json()


def test_person_search_is_off_until_enabled_needs_a_case_and_is_audited(client, helpers, cast):
    store = helpers.make_store(client, ["entrance"], person_search=False)
    other = helpers.make_store(client, ["entrance"])
    person = cast.people[0]
    posted = helpers.post_sighting(
        client, store, "entrance", helpers.story_image(person, 0), "2026-11-25T10:00:00Z"
    )
    assert posted.status_code == 201
    photo = helpers.story_image(person, 4)

    refused = helpers.post_match(client, store, photo, case_id="lost-child-17")
    assert refused.status_code == 403
    assert "not enabled" in refused.json()["detail"]

    enabled = client.patch(f"/stores/{store['id']}", json={"match_enabled": True}, headers=helpers.admin)
    assert enabled.status_code == 200 and enabled.json()["match_enabled"] is True
    assert (
        client.patch(
            f"/stores/{store['id']}", json={"match_enabled": True}, headers=store["headers"]
        ).status_code
        == 403
    )

    no_purpose = client.post(
        "/match", files={"image": ("q.png", helpers.png(photo), "image/png")}, headers=store["headers"]
    )
    assert no_purpose.status_code == 422 and "case_id" in no_purpose.json()["detail"]
    blank = helpers.post_match(client, store, photo, case_id="   ")
    assert blank.status_code == 422

    found = helpers.post_match(client, store, photo, case_id="lost-child-17", top_k=3)
    assert found.status_code == 200
    assert found.json()["matches"][0]["sighting_id"] == posted.json()["sightings"][0]["sighting_id"]
    assert (
        helpers.post_match(
            client, store, photo, reason="security asked about a shoplifting report"
        ).status_code
        == 200
    )
    assert helpers.post_match(client, other, photo, case_id="other-store-case").status_code == 200

    rows = audit(client, helpers, store["id"])
    assert [r["outcome"] for r in rows] == ["ok", "ok", "refused"]
    newest, middle, first = rows
    assert (newest["case_id"], newest["reason"]) == (None, "security asked about a shoplifting report")
    assert (middle["case_id"], middle["results"], middle["visitors"]) == ("lost-child-17", 1, 1)
    assert (first["case_id"], first["results"]) == ("lost-child-17", 0)
    key_prefix = store["headers"]["X-API-Key"].split("_")[1]
    assert all(key_prefix in r["key_prefix"] and r["key_id"] for r in rows)
    assert all(r["store_id"] == store["id"] for r in rows)
    assert [r["id"] for r in audit(client, helpers, store["id"], case_id="lost-child-17")] == [
        middle["id"],
        first["id"],
    ]
    assert [r["id"] for r in audit(client, helpers, store["id"], limit=1, before_id=newest["id"])] == [
        middle["id"]
    ]
    assert audit(client, helpers, store["id"], since=iso(datetime.now(UTC) + timedelta(hours=1))) == []
    assert [r["case_id"] for r in audit(client, helpers, other["id"])] == ["other-store-case"]
    assert client.get(f"/stores/{store['id']}/match-audit", headers=store["headers"]).status_code == 403
    assert (
        client.get(
            f"/stores/{store['id']}/match-audit", params={"since": "soon"}, headers=helpers.admin
        ).status_code
        == 422
    )

    client.patch(f"/stores/{store['id']}", json={"match_enabled": False}, headers=helpers.admin)
    assert helpers.post_match(client, store, photo, case_id="lost-child-17").status_code == 403


def test_no_response_but_embeds_carries_an_embedding(client):
    schema = client.get("/openapi.json").json()
    carriers = {
        name
        for name, body in schema["components"]["schemas"].items()
        if any("embedding" in field for field in body.get("properties", {}))
    }
    assert carriers == {"EmbedOut"}
    embed_responses = {
        path
        for path, operations in schema["paths"].items()
        for operation in operations.values()
        if "EmbedOut" in str(operation.get("responses", {}))
    }
    assert embed_responses == {"/embed"}


@pytest.mark.parametrize("keep", [False, True], ids=["default", "store_crops"])
def test_crops_are_kept_only_when_the_setting_asks(keep, tmp_path, settings_for, start_app, helpers, cast):
    url = f"sqlite:///{tmp_path / 'crops.db'}"
    migrate(url)
    overrides = {"store_crops": True} if keep else {}
    client = start_app(settings_for(url, **overrides))
    store = helpers.make_store(client, ["entrance"])
    image = helpers.story_image(cast.people[0], 0)
    posted = helpers.post_sighting(client, store, "entrance", image, "2026-11-25T10:00:00Z").json()
    sighting, visitor = posted["sightings"][0]["sighting_id"], posted["sightings"][0]["visitor_id"]
    crop = client.get(f"/sightings/{sighting}/crop", headers=store["headers"])
    embedding_bytes = count(url, select(func.length(Sighting.embedding)))
    assert embedding_bytes == 4 * client.app.state.services.model.embedder.dim
    if keep:
        assert crop.status_code == 200
        assert crop.headers["content-type"] == "image/png"
        assert crop.content == helpers.png(image)
    else:
        assert crop.status_code == 404 and "REID_STORE_CROPS" in crop.json()["detail"]
        assert count(url, select(func.count()).select_from(SightingCrop)) == 0
    assert client.delete(f"/visitors/{visitor}", headers=store["headers"]).status_code == 200
    assert count(url, select(func.count()).select_from(SightingCrop)) == 0
    assert client.get(f"/sightings/{sighting}/crop", headers=store["headers"]).status_code == 404


def wait_for(condition, status=None, timeout_s: float = 30.0) -> None:
    """Poll ``condition`` until it holds (the maintenance task runs in the background)."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"maintenance did not get there in time: {status}"
        time.sleep(0.1)


@pytest.mark.slow
def test_the_service_purges_expired_data_by_itself(database_url, settings_for, start_app, helpers, cast):
    settings = settings_for(
        database_url, retention_days=1, audit_retention_days=1, maintenance_interval_s=0.2
    )
    client = start_app(settings)
    state = client.app.state.services
    store = helpers.make_store(client, ["entrance", "toys"])
    now = datetime.now(UTC)
    old_person, new_person = cast.people[:2]
    old = [
        helpers.post_sighting(
            client,
            store,
            zone,
            helpers.story_image(old_person, view),
            iso(now - timedelta(days=3, minutes=m)),
        )
        for zone, view, m in (("entrance", 0, 5), ("toys", 1, 0))
    ]
    recent = helpers.post_sighting(
        client, store, "toys", helpers.story_image(new_person, 0), iso(now - timedelta(minutes=1))
    )
    assert all(r.status_code == 201 for r in [*old, recent])
    old_ids = {r.json()["sightings"][0]["sighting_id"] for r in old}
    old_visitor = old[0].json()["sightings"][0]["visitor_id"]
    recent_id = recent.json()["sightings"][0]["sighting_id"]
    stale_audit = now - timedelta(days=5)
    engine = create_engine(database_url)
    with engine.begin() as connection:
        connection.execute(
            MatchAudit.__table__.insert().values(
                store_id=store["id"],
                key_prefix="reid_old",
                case_id="old-case",
                requested_at=stale_audit,
                outcome="ok",
                results=0,
                visitors=0,
            )
        )
    engine.dispose()

    wait_for(lambda: count(database_url, select(func.count()).select_from(Sighting)) == 1, state.maintenance)
    wait_for(lambda: not set(state.sync.indexed_ids(store["id"]).tolist()) & old_ids, state.maintenance)
    wait_for(
        lambda: (
            count(database_url, select(func.count()).select_from(Visitor).where(Visitor.id == old_visitor))
            == 0
        ),
        state.maintenance,
    )
    assert count(database_url, select(Sighting.id)) == recent_id
    assert set(state.sync.indexed_ids(store["id"]).tolist()) == {recent_id}
    wait_for(
        lambda: count(database_url, select(func.count()).select_from(MatchAudit)) == 0, state.maintenance
    )
    found = helpers.post_match(client, store, helpers.story_image(old_person, 4), top_k=5).json()
    assert not {m["sighting_id"] for m in found["matches"]} & old_ids
    ready = client.get("/readyz").json()["maintenance"]
    assert ready["last_error"] is None and ready["last_run"] is not None


@pytest.mark.slow
def test_reid_admin_purge_deletes_expired_sightings(
    tmp_path, monkeypatch, settings_for, start_app, helpers, cast, model_dir, capsys
):
    from service import cli
    from service.settings import get_settings

    url = f"sqlite:///{tmp_path / 'purge.db'}"
    migrate(url)
    client = start_app(settings_for(url))
    store = helpers.make_store(client, ["entrance"])
    now = datetime.now(UTC)
    for days, person in ((10, cast.people[0]), (0, cast.people[1])):
        stamp = iso(now - timedelta(days=days, minutes=1))
        assert (
            helpers.post_sighting(
                client, store, "entrance", helpers.story_image(person, 0), stamp
            ).status_code
            == 201
        )
    monkeypatch.setenv("REID_DATABASE_URL", url)
    monkeypatch.setenv("REID_MODEL_DIR", str(model_dir))
    monkeypatch.setenv("REID_INDEX_DIR", str(tmp_path / "indexes"))
    get_settings.cache_clear()
    try:
        with pytest.raises(SystemExit) as exit_info:
            cli.admin(["purge", "--days", "5"])
    finally:
        get_settings.cache_clear()
    assert exit_info.value.code == 0
    assert "deleted 1 sightings" in capsys.readouterr().out
    assert count(url, select(func.count()).select_from(Sighting)) == 1
    assert count(url, select(func.count()).select_from(Visitor)) == 1


@pytest.mark.slow
def test_erasure_leaves_nothing_in_sql_or_in_any_replica_index(
    database_url, settings_for, start_app, helpers, cast
):
    first = start_app(settings_for(database_url, store_crops=True))
    second = start_app(settings_for(database_url))
    store = helpers.make_store(first, ["entrance", "toys"])
    person, bystander = cast.people[:2]
    ids = []
    for zone, view, clock in (("entrance", 0, "10:00"), ("toys", 1, "10:02")):
        body = helpers.post_sighting(
            first, store, zone, helpers.story_image(person, view), f"2026-11-25T{clock}:00Z"
        ).json()
        ids.append(body["sightings"][0]["sighting_id"])
        visitor = body["sightings"][0]["visitor_id"]
    kept = helpers.post_sighting(
        first, store, "toys", helpers.story_image(bystander, 0), "2026-11-25T10:01:00Z"
    )
    kept_id = kept.json()["sightings"][0]["sighting_id"]
    seen = helpers.post_match(second, store, helpers.story_image(person, 4), top_k=3).json()
    assert set(ids) <= {m["sighting_id"] for m in seen["matches"]}
    replicas = [first.app.state.services, second.app.state.services]
    assert all(set(ids) <= set(r.sync.indexed_ids(store["id"]).tolist()) for r in replicas)

    erased = first.delete(f"/visitors/{visitor}", headers=store["headers"])
    assert erased.status_code == 200 and erased.json()["sightings_deleted"] == 2
    assert not set(ids) & set(replicas[0].sync.indexed_ids(store["id"]).tolist())
    replicas[1].sync.refresh_all()
    assert set(replicas[1].sync.indexed_ids(store["id"]).tolist()) == {kept_id}
    for table, column in ((Sighting, Sighting.id), (SightingCrop, SightingCrop.sighting_id)):
        assert count(database_url, select(func.count()).select_from(table).where(column.in_(ids))) == 0
    assert count(database_url, select(func.count()).select_from(Visitor).where(Visitor.id == visitor)) == 0
    tombstones = count(
        database_url,
        select(func.count()).select_from(DeletedSighting).where(DeletedSighting.sighting_id.in_(ids)),
    )
    assert tombstones == 2
    again = helpers.post_match(second, store, helpers.story_image(person, 4), top_k=3).json()
    assert not {m["sighting_id"] for m in again["matches"]} & set(ids)
    assert count(database_url, text("SELECT count(*) FROM sightings")) == 1
