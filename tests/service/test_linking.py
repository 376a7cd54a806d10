"""Visitor linking from the user's side: camera tracks, one person in one place at a time, re-linking."""

from __future__ import annotations

import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta

import numpy as np
from sqlalchemy import create_engine, func, select

from service.storage.models import LinkEvent

ZONES = ["entrance", "toys"]
DAY = "2026-11-25"


def at(clock: str) -> str:
    """An ISO timestamp on the test day, UTC."""
    return f"{DAY}T{clock}Z"


def post(
    client, store: dict, zone: str, images: list[np.ndarray], captured_at: str, track_id=None, helpers=None
):
    """POST crops from the zone's camera (one timestamp for all), optionally as one camera track."""
    data = {"camera_id": store["cameras"][zone], "captured_at": captured_at}
    if track_id is not None:
        data["track_id"] = track_id
    files = [("images", (f"crop{i}.png", helpers.png(image), "image/png")) for i, image in enumerate(images)]
    response = client.post("/sightings", data=data, files=files, headers=store["headers"])
    assert response.status_code == 201, response.text
    return response.json()["sightings"]


def test_a_track_links_as_one_person_and_its_later_crops_join_it(client, helpers, cast):
    store = helpers.make_store(client, ZONES)
    first, second = cast.people[:2]
    views = [helpers.story_image(first, v) for v in range(3)] + [helpers.story_image(second, 0)]
    track = post(client, store, "entrance", views, at("10:00:00"), track_id="7", helpers=helpers)
    assert len({s["visitor_id"] for s in track}) == 1
    assert [s["new_visitor"] for s in track] == [True, False, False, False]
    assert {s["track_id"] for s in track} == {"7"} and {s["link_rule"] for s in track} == {"new"}
    visitor = track[0]["visitor_id"]

    (continued,) = post(
        client, store, "entrance", [helpers.story_image(first, 3)], at("10:00:05"), "7", helpers
    )
    assert continued["visitor_id"] == visitor and continued["link_rule"] == "track"

    (reused,) = post(
        client, store, "entrance", [helpers.story_image(second, 2)], at("10:05:00"), "7", helpers
    )
    assert reused["visitor_id"] != visitor and reused["link_rule"] == "new"

    listed = client.get("/sightings", params={"track_id": "7"}, headers=store["headers"]).json()
    assert len(listed) == 6 and {s["track_id"] for s in listed} == {"7"}
    assert [s["sighting_id"] for s in listed] == sorted((s["sighting_id"] for s in listed), reverse=True)

    mixed = post(
        client,
        store,
        "toys",
        [helpers.story_image(first, 0), helpers.story_image(second, 3)],
        at("10:10:00"),
        ["9", "10"],
        helpers,
    )
    assert mixed[0]["visitor_id"] == visitor and mixed[1]["visitor_id"] != visitor


def test_track_ids_are_checked(client, helpers, cast):
    store = helpers.make_store(client, ZONES)
    image = helpers.png(helpers.story_image(cast.people[0], 0))
    files = [("images", ("a.png", image, "image/png")), ("images", ("b.png", image, "image/png"))]
    for track_id, message in ((["1", "2", "3"], "one track_id for all"), ("x" * 65, "at most 64")):
        response = client.post(
            "/sightings",
            data={"camera_id": store["cameras"]["toys"], "captured_at": at("10:00:00"), "track_id": track_id},
            files=files,
            headers=store["headers"],
        )
        assert response.status_code == 422 and message in response.json()["detail"]


def test_one_person_is_never_in_two_places_at_once(client, helpers, cast):
    store = helpers.make_store(client, ZONES)
    admin, base = helpers.admin, f"/stores/{store['id']}"
    person, other, third = cast.people[:3]
    (entrance,) = post(
        client, store, "entrance", [helpers.story_image(person, 0)], at("10:00:00"), helpers=helpers
    )
    (toys,) = post(client, store, "toys", [helpers.story_image(person, 1)], at("10:00:01"), helpers=helpers)
    assert toys["visitor_id"] != entrance["visitor_id"] and toys["link_rule"] == "new-refused"
    assert toys["runner_up"] is not None and toys["runner_up"] >= cast.threshold
    (later,) = post(client, store, "toys", [helpers.story_image(person, 2)], at("10:05:00"), helpers=helpers)
    assert later["link_rule"] == "matched" and later["visitor_id"] in {
        entrance["visitor_id"],
        toys["visitor_id"],
    }

    cameras = store["cameras"]
    overlap = client.put(
        f"{base}/cameras/{cameras['entrance']}/overlaps",
        json={"camera_ids": [cameras["toys"]]},
        headers=admin,
    )
    assert overlap.status_code == 200 and overlap.json()["overlaps"] == [cameras["toys"]]
    listed = {c["id"]: c["overlaps"] for c in client.get(f"{base}/cameras", headers=admin).json()}
    assert listed == {cameras["entrance"]: [cameras["toys"]], cameras["toys"]: [cameras["entrance"]]}
    (seen,) = post(
        client, store, "entrance", [helpers.story_image(other, 0)], at("10:10:00"), helpers=helpers
    )
    (both,) = post(client, store, "toys", [helpers.story_image(other, 1)], at("10:10:01"), helpers=helpers)
    assert both["visitor_id"] == seen["visitor_id"] and both["link_rule"] == "matched"

    client.put(f"{base}/cameras/{cameras['entrance']}/overlaps", json={"camera_ids": []}, headers=admin)
    zones = store["zones"]
    transit = {"transits": [{"zone_ids": [zones["entrance"], zones["toys"]], "min_seconds": 120}]}
    saved = client.put(f"{base}/transit-times", json=transit, headers=admin)
    assert saved.status_code == 200 and saved.json() == [
        {"zone_ids": sorted([zones["entrance"], zones["toys"]]), "min_seconds": 120.0}
    ]
    (start,) = post(
        client, store, "entrance", [helpers.story_image(third, 0)], at("10:20:00"), helpers=helpers
    )
    (fast,) = post(client, store, "toys", [helpers.story_image(third, 1)], at("10:21:00"), helpers=helpers)
    (slow,) = post(client, store, "toys", [helpers.story_image(third, 2)], at("10:23:30"), helpers=helpers)
    assert fast["link_rule"] == "new-refused" and fast["visitor_id"] != start["visitor_id"]
    assert slow["link_rule"] == "matched"

    foreign = client.put(
        f"{base}/cameras/{cameras['entrance']}/overlaps", json={"camera_ids": [10**6]}, headers=admin
    )
    assert foreign.status_code == 404
    twice = {"transits": [transit["transits"][0], transit["transits"][0]]}
    assert client.put(f"{base}/transit-times", json=twice, headers=admin).status_code == 422


def visitors_by_person(client, store: dict, owners: dict[int, int]) -> dict[int, set[int]]:
    """Each person's current visitors, read back through GET /sightings."""
    listed = client.get("/sightings", params={"limit": 1000}, headers=store["headers"]).json()
    found: dict[int, set[int]] = defaultdict(set)
    for sighting in listed:
        found[owners[sighting["sighting_id"]]].add(sighting["visitor_id"])
    return found


def ingest_two_people(client, helpers, cast, store: dict) -> dict[int, int]:
    """Two people, four photos each, alternating zones a few minutes apart; returns sighting -> person."""
    owners = {}
    for minute in range(8):
        person = cast.people[minute % 2]
        zone = ZONES[(minute // 2) % 2]
        image = helpers.story_image(person, minute // 2)
        (result,) = post(client, store, zone, [image], at(f"10:{3 * minute:02d}:00"), helpers=helpers)
        owners[result["sighting_id"]] = person
    return owners


def relink(client, store: dict, helpers) -> dict:
    window = {"start": at("09:00:00"), "end": at("12:00:00")}
    response = client.post(f"/stores/{store['id']}/relink", json=window, headers=helpers.admin)
    assert response.status_code == 200, response.text
    return response.json()


def unique_visitors(client, store: dict) -> int:
    params = {"start": at("09:00:00"), "end": at("12:00:00"), "bucket": "P1D"}
    body = client.get("/density", params=params, headers=store["headers"]).json()
    return sum(z["totals"]["unique_visitors"] for z in body["zones"])


def test_relinking_merges_split_people_and_splits_merged_ones(client, helpers, cast, database_url):
    base = "/stores/{}"
    split = helpers.make_store(client, ZONES)
    client.patch(base.format(split["id"]), json={"match_threshold": 0.9999}, headers=helpers.admin)
    owners = ingest_two_people(client, helpers, cast, split)
    assert all(len(v) == 4 for v in visitors_by_person(client, split, owners).values())
    client.patch(base.format(split["id"]), json={"match_threshold": cast.threshold}, headers=helpers.admin)
    result = relink(client, split, helpers)
    assert result["moved"] == 6 and result["merges"] == 6 and result["splits"] == 0
    assert (result["visitors_before"], result["visitors_after"]) == (8, 2)
    found = visitors_by_person(client, split, owners)
    assert all(len(v) == 1 for v in found.values()) and len(set.union(*found.values())) == 2
    assert unique_visitors(client, split) == 4
    assert relink(client, split, helpers)["moved"] == 0

    merged = helpers.make_store(client, ZONES)
    client.patch(base.format(merged["id"]), json={"match_threshold": -1.0}, headers=helpers.admin)
    owners = ingest_two_people(client, helpers, cast, merged)
    assert len(set.union(*visitors_by_person(client, merged, owners).values())) == 1
    client.patch(base.format(merged["id"]), json={"match_threshold": None}, headers=helpers.admin)
    result = relink(client, merged, helpers)
    assert result["splits"] == 1 and result["moved"] == 4
    found = visitors_by_person(client, merged, owners)
    assert all(len(v) == 1 for v in found.values()) and len(set.union(*found.values())) == 2
    assert {s["link_rule"] for s in client.get("/sightings", headers=merged["headers"]).json()} >= {
        "relinked"
    }

    engine = create_engine(database_url)
    with engine.connect() as connection:
        kinds = dict(
            connection.execute(
                select(LinkEvent.kind, func.count())
                .where(LinkEvent.store_id.in_([split["id"], merged["id"]]))
                .group_by(LinkEvent.kind)
            ).all()
        )
    engine.dispose()
    assert kinds == {"merge": 6, "split": 1}
    assert client.post(f"/stores/{10**6}/relink", headers=helpers.admin).status_code == 404
    assert client.post(f"/stores/{split['id']}/relink", headers=split["headers"]).status_code == 403


def test_the_service_relinks_by_itself(database_url, settings_for, start_app, helpers, cast):
    client = start_app(settings_for(database_url, relink_interval_s=0.2))
    store = helpers.make_store(client, ZONES)
    base = f"/stores/{store['id']}"
    client.patch(base, json={"match_threshold": 0.9999}, headers=helpers.admin)
    now = datetime.now(UTC)
    owners = {}
    for minute in range(4):
        person = cast.people[minute % 2]
        image = helpers.story_image(person, minute // 2)
        when = (now - timedelta(minutes=30 - 3 * minute)).isoformat()
        (result,) = post(client, store, ZONES[minute // 2], [image], when, helpers=helpers)
        owners[result["sighting_id"]] = person
    assert len(set.union(*visitors_by_person(client, store, owners).values())) == 4
    client.patch(base, json={"match_threshold": cast.threshold}, headers=helpers.admin)
    deadline = time.monotonic() + 60
    while len(set.union(*visitors_by_person(client, store, owners).values())) != 2:
        assert time.monotonic() < deadline, "the periodic pass did not re-link the store"
        time.sleep(0.2)
    assert all(len(v) == 1 for v in visitors_by_person(client, store, owners).values())
