"""Paths between zones: transitions within each visit (counts, median transit), first and last zones,
the funnel to a chosen zone, and visits split by the store visit gap."""

from __future__ import annotations

import pytest

DAY = "2026-11-25"
ZONES = ["entrance", "toys", "tills"]
# person index -> (zone, view, HH:MM:SS); the last person comes back after more than the 30-minute gap
PATHS = {
    0: [("entrance", 0, "10:00:00"), ("toys", 1, "10:02:00"), ("tills", 2, "10:10:00")],
    1: [("entrance", 0, "10:01:00"), ("tills", 1, "10:05:00")],
    2: [
        ("entrance", 0, "11:00:00"),
        ("toys", 1, "11:04:00"),
        ("entrance", 2, "12:00:00"),
        ("toys", 3, "12:01:00"),
    ],
}


def at(clock: str) -> str:
    return f"{DAY}T{clock}Z"


def flows(client, store, **params):
    window = {"start": at("00:00:00"), "end": at("23:59:59")}
    response = client.get("/flows", params=window | params, headers=store["headers"])
    assert response.status_code == 200, response.text
    return response.json()


def test_transitions_first_and_last_zones_and_the_funnel(client, helpers, cast):
    store = helpers.make_store(client, ZONES)
    ids = store["zones"]
    for person, path in PATHS.items():
        visitors = set()
        for zone, view, clock in path:
            response = helpers.post_sighting(
                client, store, zone, helpers.story_image(cast.people[person], view), at(clock)
            )
            assert response.status_code == 201, response.text
            visitors.add(response.json()["sightings"][0]["visitor_id"])
        assert len(visitors) == 1

    body = flows(client, store, zone_id=ids["tills"])
    assert (body["visits"], body["visitors"], body["visit_gap_s"]) == (4, 3, 1800.0)
    moves = {
        (t["from_zone_id"], t["to_zone_id"]): (t["count"], t["median_transit_s"]) for t in body["transitions"]
    }
    assert moves == {
        (ids["entrance"], ids["toys"]): (3, 120.0),  # 120 s, 240 s and 60 s
        (ids["toys"], ids["tills"]): (1, 480.0),
        (ids["entrance"], ids["tills"]): (1, 240.0),
    }
    assert body["transitions"][0]["count"] == 3  # most frequent first
    zones = {z["name"]: (z["visits"], z["first"], z["last"]) for z in body["zones"]}
    assert zones == {"entrance": (4, 4, 0), "toys": (3, 0, 2), "tills": (2, 0, 2)}
    assert body["funnel"] == {
        "zone_id": ids["tills"],
        "name": "tills",
        "visits": 4,
        "reached": 2,
        "share": 0.5,
    }
    assert flows(client, store)["funnel"] is None

    morning = flows(client, store, end=at("10:30:00"))
    assert (morning["visits"], len(morning["transitions"])) == (2, 3)
    assert flows(client, store, start=at("13:00:00"))["visits"] == 0


@pytest.mark.parametrize(
    ("params", "status", "message"),
    [
        ({"start": f"{DAY}T10:00:00Z", "end": f"{DAY}T09:00:00Z"}, 422, "start must be before end"),
        ({"start": "2026-10-01T00:00:00Z", "end": "2026-11-05T00:00:00Z"}, 422, "at most 31 days"),
        ({"start": f"{DAY}T10:00:00", "end": f"{DAY}T11:00:00Z"}, 422, "time zone"),
        ({"start": f"{DAY}T10:00:00Z", "end": f"{DAY}T11:00:00Z", "zone_id": 987654}, 404, "zone 987654"),
    ],
)
def test_bad_windows_and_zones_are_refused(client, helpers, params, status, message):
    store = helpers.make_store(client, ["entrance"])
    response = client.get("/flows", params=params, headers=store["headers"])
    assert response.status_code == status, response.text
    assert message in str(response.json()["detail"])
