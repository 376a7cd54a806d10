"""The day the dashboard tests replay: a Berlin store, three zones, three shoppers at known times."""

from __future__ import annotations

from dataclasses import dataclass, field

import httpx

from tests.service.conftest import ADMIN_KEY, make_store, png_bytes, story_image

__all__ = ["ADMIN_KEY", "make_store", "png_bytes", "story_image"]

TIMEZONE = "Europe/Berlin"
DAY = "2026-11-24"
OFFSET = "+01:00"
ZONES = ["Entrance", "Toys", "Tills"]
VISITS = [
    [("Entrance", 0, "09:05"), ("Toys", 1, "09:20"), ("Toys", 2, "10:40"), ("Tills", 3, "11:10")],
    [("Entrance", 0, "09:10"), ("Tills", 1, "09:50")],
    [("Entrance", 0, "10:15"), ("Toys", 1, "10:30")],
]
UNIQUE_BY_HOUR = {
    ("Entrance", 9): 2,
    ("Entrance", 10): 1,
    ("Toys", 9): 1,
    ("Toys", 10): 2,
    ("Tills", 9): 1,
    ("Tills", 11): 1,
}
TOTALS = {"Entrance": 3, "Toys": 2, "Tills": 2}


def local_time(clock: str, day: str = DAY) -> str:
    """An ISO timestamp at ``clock`` (HH:MM) on ``day`` in the store's zone (CET in November)."""
    return f"{day}T{clock}:00{OFFSET}"


@dataclass
class Sighting:
    """One sighting the test posted."""

    sighting_id: int
    zone: str
    captured_at: str


@dataclass
class Scenario:
    """A live service and the store the test filled, with what it knows by construction."""

    base_url: str
    api: httpx.Client
    store: dict
    key: str
    visitors: list[int] = field(default_factory=list)
    sightings: list[list[Sighting]] = field(default_factory=list)


def track_of(person: int, view: int) -> str:
    """The camera tracker's id the day sends with each photo (one track per photo)."""
    return f"{person}-{view}"


def post(api: httpx.Client, store: dict, zone: str, person: int, view: int, when: str) -> dict:
    """Post one synthetic photo of ``person`` from the zone's camera as its own camera track."""
    response = api.post(
        "/sightings",
        data={"camera_id": store["cameras"][zone], "captured_at": when, "track_id": track_of(person, view)},
        files=[("images", ("crop.png", png_bytes(story_image(person, view)), "image/png"))],
        headers=store["headers"],
    )
    assert response.status_code == 201, response.text
    return response.json()["sightings"][0]


def replay_day(base_url: str, api: httpx.Client, people: list[int]) -> Scenario:
    """Create the store and post every shopper's path; each shopper must come out as one visitor."""
    store = make_store(api, ZONES, timezone=TIMEZONE)
    result = Scenario(base_url, api, store, store["headers"]["X-API-Key"])
    for person, path in zip(people, VISITS, strict=False):
        seen = [post(api, store, zone, person, view, local_time(clock)) for zone, view, clock in path]
        visitors = {s["visitor_id"] for s in seen}
        assert len(visitors) == 1, f"shopper {person} was split into visitors {visitors}"
        result.visitors.append(visitors.pop())
        result.sightings.append(
            [
                Sighting(s["sighting_id"], zone, s["captured_at"])
                for s, (zone, _, _) in zip(seen, path, strict=True)
            ]
        )
    assert len(set(result.visitors)) == len(VISITS)
    return result
