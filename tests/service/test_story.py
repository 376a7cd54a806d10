"""The full story on synthetic shoppers: ingest, link, find a lost child, density, erase."""

from __future__ import annotations

import pytest

from service.storage.db import migrate

ZONES = ["entrance", "toys", "checkout"]
PATH = [("entrance", 0, 0), ("toys", 1, 3), ("toys", 2, 6), ("checkout", 3, 15)]
WINDOW = {"start": "2026-11-25T10:00:00Z", "end": "2026-11-25T10:45:00Z", "bucket": "PT15M"}


def at(minute: int) -> str:
    """An ISO timestamp ``minute`` minutes after 10:00 UTC."""
    return f"2026-11-25T{10 + minute // 60:02d}:{minute % 60:02d}:00Z"


def ingest_story(client, helpers, cast) -> tuple[dict, dict[int, dict]]:
    """Four shoppers walk entrance -> toys (two photos, 3 min apart) -> checkout; the last returns to toys."""
    store = helpers.make_store(client, ZONES, timezone="Europe/Berlin")
    people = cast.people[:4]
    seen: dict[int, dict] = {p: {"sightings": [], "visitors": set(), "new": []} for p in people}
    for index, person in enumerate(people):
        for zone, view, minute in PATH:
            image = helpers.story_image(person, view)
            response = helpers.post_sighting(client, store, zone, image, at(2 * index + minute))
            assert response.status_code == 201, response.text
            (result,) = response.json()["sightings"]
            seen[person]["sightings"].append(result["sighting_id"])
            seen[person]["visitors"].add(result["visitor_id"])
            seen[person]["new"].append(result["new_visitor"])
    last = people[3]
    response = helpers.post_sighting(client, store, "toys", helpers.story_image(last, 1), at(25))
    assert response.status_code == 201
    seen[last]["sightings"].append(response.json()["sightings"][0]["sighting_id"])
    seen[last]["visitors"].add(response.json()["sightings"][0]["visitor_id"])
    return store, seen


def zone_report(body: dict, name: str) -> dict:
    """One zone's entry in a /density response."""
    return next(z for z in body["zones"] if z["name"] == name)


@pytest.mark.slow
def test_story(client, helpers, cast):
    run_story(client, helpers, cast)


@pytest.mark.slow
def test_story_with_the_milvus_backend(tmp_path, settings_for, start_app, helpers, cast):
    url = f"sqlite:///{tmp_path / 'reid.db'}"
    migrate(url)
    settings = settings_for(url, vector_backend="milvus", milvus_uri=str(tmp_path / "milvus.db"))
    run_story(start_app(settings), helpers, cast)


def run_story(client, helpers, cast) -> None:
    """Ingest the story, then check linking, /match, /density and erasure end to end."""
    store, seen = ingest_story(client, helpers, cast)
    people = cast.people[:4]

    visitor = {}
    for person in people:
        assert len(seen[person]["visitors"]) == 1, f"person {person} split into {seen[person]['visitors']}"
        assert seen[person]["new"] == [True, False, False, False]
        visitor[person] = next(iter(seen[person]["visitors"]))
    assert len(set(visitor.values())) == len(people)

    child = people[0]
    found = helpers.post_match(client, store, helpers.story_image(child, 4), top_k=6)
    assert found.status_code == 200, found.text
    body = found.json()
    assert {m["sighting_id"] for m in body["matches"][:4]} == set(seen[child]["sightings"])
    assert all(m["visitor_id"] == visitor[child] for m in body["matches"][:4])
    assert body["visitors"][0]["visitor_id"] == visitor[child]
    assert body["visitors"][0]["zone_name"] == "checkout"
    assert body["visitors"][0]["captured_at"] == "2026-11-25T10:15:00Z"

    in_toys = helpers.post_match(
        client, store, helpers.story_image(child, 4), zone_id=store["zones"]["toys"]
    ).json()
    assert {m["zone_id"] for m in in_toys["matches"]} == {store["zones"]["toys"]}
    assert {m["sighting_id"] for m in in_toys["matches"][:2]} == set(seen[child]["sightings"][1:3])

    early = helpers.post_match(
        client, store, helpers.story_image(child, 4), since=at(0), until=at(5), min_similarity=cast.threshold
    ).json()
    assert {m["sighting_id"] for m in early["matches"]} == set(seen[child]["sightings"][:2])

    density = client.get("/density", params=WINDOW, headers=store["headers"])
    assert density.status_code == 200, density.text
    report = density.json()
    entrance, toys, checkout = (zone_report(report, z) for z in ZONES)
    assert [b["start"] for b in toys["buckets"]] == [at(0), at(15), at(30)]
    assert entrance["buckets"][0] | {"start": None, "end": None} == {
        "start": None,
        "end": None,
        "unique_visitors": 4,
        "sightings": 4,
        "entries": 4,
        "mean_dwell_s": 0.0,
        "occupancy_mean": 0.0,
        "occupancy_max": 1,
    }
    first = toys["buckets"][0]
    assert (first["unique_visitors"], first["sightings"], first["entries"]) == (4, 8, 4)
    assert first["mean_dwell_s"] == pytest.approx(180.0)
    assert first["occupancy_mean"] == pytest.approx(4 * 180 / 900)
    assert first["occupancy_max"] == 2
    second = toys["buckets"][1]
    assert (second["unique_visitors"], second["sightings"], second["entries"], second["occupancy_max"]) == (
        1,
        1,
        1,
        1,
    )
    assert toys["totals"]["unique_visitors"] == 4
    assert toys["totals"]["sightings"] == 9
    assert toys["totals"]["entries"] == 5
    assert checkout["buckets"][1]["unique_visitors"] == 4
    assert checkout["buckets"][0]["sightings"] == 0
    assert checkout["totals"]["occupancy_max"] == 1

    gone = client.delete(f"/visitors/{visitor[child]}", headers=store["headers"])
    assert gone.status_code == 200
    assert gone.json()["sightings_deleted"] == 4
    after = helpers.post_match(client, store, helpers.story_image(child, 4), top_k=20).json()
    assert visitor[child] not in {m["visitor_id"] for m in after["matches"]}
    assert not set(seen[child]["sightings"]) & {m["sighting_id"] for m in after["matches"]}
    toys_after = zone_report(client.get("/density", params=WINDOW, headers=store["headers"]).json(), "toys")
    assert toys_after["buckets"][0]["unique_visitors"] == 3
    assert toys_after["buckets"][0]["sightings"] == 6
    assert toys_after["buckets"][0]["occupancy_mean"] == pytest.approx(3 * 180 / 900)
    assert toys_after["totals"]["unique_visitors"] == 3
    assert client.delete(f"/visitors/{visitor[child]}", headers=store["headers"]).status_code == 404
