"""The index is a cache of SQL: restarts rebuild or reload it, and replicas see each other's sightings."""

from __future__ import annotations

import shutil

import pytest


def ingest(client, helpers, cast, store) -> dict[int, int]:
    """Two photos of each of three people in two zones; returns person -> visitor."""
    visitors = {}
    for index, person in enumerate(cast.people[:3]):
        for zone, view, minute in (("entrance", 0, 0), ("toys", 1, 4)):
            response = helpers.post_sighting(
                client,
                store,
                zone,
                helpers.story_image(person, view),
                f"2026-11-25T09:{index * 10 + minute:02d}:00Z",
            )
            assert response.status_code == 201, response.text
            visitors[person] = response.json()["sightings"][0]["visitor_id"]
    return visitors


def answers(client, helpers, cast, store) -> list[list[tuple[int, float]]]:
    """Top matches for a fresh photo of each person."""
    result = []
    for person in cast.people[:3]:
        body = helpers.post_match(client, store, helpers.story_image(person, 4), top_k=4).json()
        result.append([(m["sighting_id"], round(m["similarity"], 4)) for m in body["matches"]])
    return result


def ingest_answer_and_stop(client, helpers, cast) -> tuple[dict, list[list[tuple[int, float]]]]:
    """Make a store, ingest the three people, note the answers, then shut the app down (saving its index)."""
    store = helpers.make_store(client, ["entrance", "toys"])
    ingest(client, helpers, cast, store)
    before = answers(client, helpers, cast, store)
    client.__exit__(None, None, None)
    return store, before


@pytest.mark.slow
def test_restart_rebuilds_and_reloads_the_index(
    database_url, settings_for, start_app, helpers, cast, tmp_path
):
    settings = settings_for(database_url)
    store, before = ingest_answer_and_stop(start_app(settings), helpers, cast)

    reloaded = start_app(settings)
    ready = reloaded.get("/readyz").json()
    assert ready["indexes"]["loaded_from_disk"] == 1
    assert ready["indexes"]["vectors"] == 6
    assert answers(reloaded, helpers, cast, store) == before
    reloaded.__exit__(None, None, None)

    shutil.rmtree(settings.index_dir)
    rebuilt = start_app(settings)
    ready = rebuilt.get("/readyz").json()
    assert ready["indexes"]["rebuilt_from_sql"] == 1
    assert ready["indexes"]["vectors"] == 6
    assert answers(rebuilt, helpers, cast, store) == before


@pytest.mark.slow
def test_saved_index_catches_up_and_forgets_deleted(
    database_url, settings_for, start_app, helpers, cast, tmp_path
):
    settings = settings_for(database_url)
    first = start_app(settings)
    store = helpers.make_store(first, ["entrance", "toys"])
    visitors = ingest(first, helpers, cast, store)
    first.__exit__(None, None, None)

    other = start_app(settings_for(database_url, index_dir=tmp_path / "other"))
    gone = cast.people[0]
    assert other.delete(f"/visitors/{visitors[gone]}", headers=store["headers"]).status_code == 200
    late = helpers.post_sighting(
        other, store, "toys", helpers.story_image(cast.people[1], 2), "2026-11-25T09:30:00Z"
    )
    assert late.json()["sightings"][0]["visitor_id"] == visitors[cast.people[1]]
    other.__exit__(None, None, None)

    again = start_app(settings)
    assert again.get("/readyz").json()["indexes"]["vectors"] == 5
    body = helpers.post_match(again, store, helpers.story_image(gone, 4), top_k=10).json()
    assert visitors[gone] not in {m["visitor_id"] for m in body["matches"]}


@pytest.mark.slow
def test_two_instances_share_one_postgres(pg_databases, settings_for, start_app, helpers, cast, tmp_path):
    from service.storage.db import migrate

    url = pg_databases()
    migrate(url)
    one = start_app(settings_for(url, index_dir=tmp_path / "one"))
    two = start_app(settings_for(url, index_dir=tmp_path / "two"))
    store = helpers.make_store(one, ["entrance", "toys"])
    child = cast.people[0]
    posted = helpers.post_sighting(
        one, store, "entrance", helpers.story_image(child, 0), "2026-11-25T09:00:00Z"
    )
    assert posted.status_code == 201
    sighting = posted.json()["sightings"][0]

    body = helpers.post_match(two, store, helpers.story_image(child, 4), top_k=3).json()
    assert body["matches"][0]["sighting_id"] == sighting["sighting_id"]
    assert body["visitors"][0]["zone_name"] == "entrance"

    linked = helpers.post_sighting(two, store, "toys", helpers.story_image(child, 1), "2026-11-25T09:05:00Z")
    assert linked.json()["sightings"][0]["visitor_id"] == sighting["visitor_id"]
    back = helpers.post_match(one, store, helpers.story_image(child, 4), top_k=3).json()
    assert back["visitors"][0]["zone_name"] == "toys"
