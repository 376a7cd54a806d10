"""Staff from the store's side: enrolled from photos or by marking a visitor, left out of density, flows
and occupancy unless asked for, audited, erasable, and still right after a re-linking pass."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import create_engine, func, select

from service.privacy.retention import purge_expired
from service.storage.db import make_engine, make_session_factory
from service.storage.models import StaffMember, StaffPhoto

DAY = "2026-11-25"
WINDOW = {"start": f"{DAY}T00:00:00Z", "end": f"{DAY}T23:00:00Z"}
ZONES = ["entrance", "toys"]


def at(clock: str) -> str:
    return f"{DAY}T{clock}Z"


def seen(client, helpers, store, zone, person, view, when):
    response = helpers.post_sighting(client, store, zone, helpers.story_image(person, view), when)
    assert response.status_code == 201, response.text
    return response.json()["sightings"][0]


def unique(client, store, include_staff=False, bucket="P1D") -> dict[str, int]:
    params = WINDOW | {"bucket": bucket, "include_staff": str(include_staff).lower()}
    body = client.get("/density", params=params, headers=store["headers"])
    assert body.status_code == 200, body.text
    assert body.json()["include_staff"] is include_staff
    return {z["name"]: z["totals"]["unique_visitors"] for z in body.json()["zones"]}


def photos(helpers, person, views):
    return [
        ("images", (f"p{v}.png", helpers.png(helpers.story_image(person, v)), "image/png")) for v in views
    ]


def store_audit(client, helpers, store_id, **params) -> list[dict]:
    response = client.get(f"/stores/{store_id}/audit", params=params, headers=helpers.admin)
    assert response.status_code == 200, response.text
    return response.json()


def count(url: str, statement) -> int:
    engine = create_engine(url)
    with engine.connect() as connection:
        value = connection.execute(statement).scalar_one()
    engine.dispose()
    return value


def test_staff_enrolled_from_photos_are_left_out_of_the_counts(client, helpers, cast, database_url):
    store = helpers.make_store(client, ZONES)
    shopper, worker = cast.people[:2]
    seen(client, helpers, store, "entrance", shopper, 0, at("10:00:00"))
    seen(client, helpers, store, "toys", shopper, 1, at("10:06:00"))
    before = seen(client, helpers, store, "entrance", worker, 0, at("10:01:00"))
    assert unique(client, store) == {"entrance": 2, "toys": 1}

    enrolled = client.post(
        "/staff", data={"name": "Wanda"}, files=photos(helpers, worker, (2, 3)), headers=store["headers"]
    )
    assert enrolled.status_code == 201, enrolled.text
    member = enrolled.json()
    assert (member["name"], member["source"], member["enrolled"]) == ("Wanda", "photos", 2)
    assert member["visitor_ids"] == [before["visitor_id"]]  # the worker's earlier visitor is flagged at once
    assert unique(client, store) == {"entrance": 1, "toys": 1}
    assert unique(client, store, include_staff=True) == {"entrance": 2, "toys": 1}
    assert unique(client, store, bucket="PT1H") == {"entrance": 1, "toys": 1}

    later = seen(client, helpers, store, "toys", worker, 1, at("16:00:00"))  # a new visitor, hours later
    assert later["visitor_id"] != before["visitor_id"]
    assert unique(client, store) == {"entrance": 1, "toys": 1}
    listed = client.get("/staff", headers=store["headers"]).json()
    assert [(m["id"], set(m["visitor_ids"])) for m in listed] == [
        (member["id"], {before["visitor_id"], later["visitor_id"]})
    ]
    flows = client.get("/flows", params=WINDOW, headers=store["headers"]).json()
    assert (flows["visits"], flows["visitors"]) == (1, 1)
    with_staff = client.get(
        "/flows", params=WINDOW | {"include_staff": "true"}, headers=store["headers"]
    ).json()
    assert (with_staff["visits"], with_staff["visitors"]) == (3, 3)  # the worker is two visitors

    assert count(database_url, select(func.count()).select_from(StaffPhoto)) == 0
    dim = client.app.state.services.model.embedder.dim
    assert count(database_url, select(func.length(StaffMember.prototype))) == 4 * dim

    twice = client.post(
        "/staff", data={"name": "Wanda"}, files=photos(helpers, worker, (4,)), headers=store["headers"]
    )
    assert twice.status_code == 409
    renamed = client.patch(f"/staff/{member['id']}", json={"name": "Wanda M."}, headers=store["headers"])
    assert renamed.status_code == 200 and renamed.json()["name"] == "Wanda M."
    assert client.get("/staff", headers=helpers.admin).status_code == 403
    assert client.get("/staff", headers={}).status_code == 401
    actions = [
        (row["action"], row["staff_id"], row["outcome"]) for row in store_audit(client, helpers, store["id"])
    ]
    assert actions == [("staff-rename", member["id"], "ok"), ("staff-enrol", member["id"], "ok")]
    key_prefix = store["headers"]["X-API-Key"].split("_")[1]
    assert all(key_prefix in row["key_prefix"] for row in store_audit(client, helpers, store["id"]))


def test_a_marked_visitor_is_staff_until_removed_and_erasure_works_for_staff(
    client, helpers, cast, database_url
):
    store = helpers.make_store(client, ZONES)
    shopper, worker = cast.people[2:4]
    seen(client, helpers, store, "entrance", shopper, 0, at("09:00:00"))
    mine = seen(client, helpers, store, "toys", worker, 0, at("09:05:00"))
    other = seen(client, helpers, store, "entrance", worker, 1, at("15:00:00"))
    assert mine["visitor_id"] != other["visitor_id"]  # hours apart: two visitors
    assert unique(client, store) == {"entrance": 2, "toys": 1}

    marked = client.post(
        f"/visitors/{mine['visitor_id']}/staff", json={"name": "Theo"}, headers=store["headers"]
    )
    assert marked.status_code == 201, marked.text
    member = marked.json()
    assert member["source"] == "visitor" and set(member["visitor_ids"]) == {
        mine["visitor_id"],
        other["visitor_id"],
    }
    assert unique(client, store) == {"entrance": 1, "toys": 0}
    both = client.post(
        f"/visitors/{mine['visitor_id']}/staff",
        json={"name": "x", "staff_id": member["id"]},
        headers=store["headers"],
    )
    assert both.status_code == 422
    again = client.post(
        f"/visitors/{mine['visitor_id']}/staff", json={"staff_id": member["id"]}, headers=store["headers"]
    )
    assert again.status_code == 201 and again.json()["enrolled"] == 2

    erased = client.delete(f"/visitors/{other['visitor_id']}", headers=store["headers"])
    assert erased.status_code == 200 and erased.json()["sightings_deleted"] == 1
    assert client.get("/staff", headers=store["headers"]).json()[0]["visitor_ids"] == [mine["visitor_id"]]
    assert unique(client, store, include_staff=True) == {"entrance": 1, "toys": 1}

    removed = client.delete(f"/staff/{member['id']}", headers=store["headers"])
    assert removed.status_code == 200 and removed.json() == {
        "staff_id": member["id"],
        "visitors_counted_again": 1,
    }
    assert client.get("/staff", headers=store["headers"]).json() == []
    assert unique(client, store) == {"entrance": 1, "toys": 1}
    assert count(database_url, select(func.count()).select_from(StaffMember)) == 0
    assert client.delete(f"/staff/{member['id']}", headers=store["headers"]).status_code == 404
    actions = [row["action"] for row in store_audit(client, helpers, store["id"])]
    assert actions == ["staff-delete", "staff-mark", "staff-mark"]
    assert [r["visitor_id"] for r in store_audit(client, helpers, store["id"], action="staff-mark")] == [
        mine["visitor_id"]
    ] * 2

    later = datetime.now(UTC) + timedelta(days=3)  # the audit is kept REID_AUDIT_RETENTION_DAYS, then goes
    engine = make_engine(database_url)
    purge_expired(make_session_factory(engine), days=36500, audit_days=1, now=later)
    engine.dispose()
    assert store_audit(client, helpers, store["id"]) == []


def test_enrolment_photos_are_kept_only_with_crops(database_url, settings_for, start_app, helpers, cast):
    client = start_app(settings_for(database_url, store_crops=True))
    store = helpers.make_store(client, ZONES)
    enrolled = client.post(
        "/staff",
        data={"name": "Kim"},
        files=photos(helpers, cast.people[0], (0, 1)),
        headers=store["headers"],
    )
    assert enrolled.status_code == 201
    assert count(database_url, select(func.count()).select_from(StaffPhoto)) == 2
    client.delete(f"/staff/{enrolled.json()['id']}", headers=store["headers"])
    assert count(database_url, select(func.count()).select_from(StaffPhoto)) == 0


def relink(client, helpers, store) -> dict:
    window = {"start": at("08:00:00"), "end": at("12:00:00")}
    response = client.post(f"/stores/{store['id']}/relink", json=window, headers=helpers.admin)
    assert response.status_code == 200, response.text
    return response.json()


def test_staff_flags_summaries_and_occupancy_stay_right_after_relinking(client, helpers, cast):
    """Re-linking moves sightings between visitors: whatever is derived from visitors follows."""
    base = "/stores/{}"
    shopper, worker = cast.people[:2]
    # Split: the worker's crops become four visitors; one is marked as staff; re-linking merges them all.
    split = helpers.make_store(client, ZONES)
    client.patch(base.format(split["id"]), json={"match_threshold": 0.9999}, headers=helpers.admin)
    crops = [
        seen(client, helpers, split, ZONES[v % 2], worker, v, at(f"10:{3 * v:02d}:00")) for v in range(4)
    ]
    seen(client, helpers, split, "entrance", shopper, 0, at("10:01:00"))
    assert len({c["visitor_id"] for c in crops}) == 4
    marked = client.post(
        f"/visitors/{crops[3]['visitor_id']}/staff", json={"name": "Rae"}, headers=split["headers"]
    )
    assert marked.json()["visitor_ids"] == [crops[3]["visitor_id"]]
    assert unique(client, split) == {"entrance": 3, "toys": 1}  # the summary is filled here
    client.patch(base.format(split["id"]), json={"match_threshold": cast.threshold}, headers=helpers.admin)
    assert relink(client, helpers, split)["moved"] == 3
    assert unique(client, split) == {"entrance": 1, "toys": 0}
    assert unique(client, split, include_staff=True) == {"entrance": 2, "toys": 1}
    (member,) = client.get("/staff", headers=split["headers"]).json()
    assert len(member["visitor_ids"]) == 1

    # Merge: the worker (enrolled from photos) and a shopper were linked as one visitor, which the
    # worker's crops made staff; re-linking splits them apart and only the worker's part stays staff.
    merged = helpers.make_store(client, ZONES)
    enrolled = client.post(
        "/staff", data={"name": "Sol"}, files=photos(helpers, worker, (2, 3)), headers=merged["headers"]
    )
    assert enrolled.status_code == 201, enrolled.text
    client.patch(base.format(merged["id"]), json={"match_threshold": -1.0}, headers=helpers.admin)
    now = datetime.now(UTC).replace(microsecond=0)
    stamps = [(now - timedelta(minutes=m)).isoformat() for m in (4, 3, 2, 1)]
    path = [("entrance", worker, 0), ("entrance", shopper, 0), ("toys", worker, 1), ("toys", shopper, 1)]
    crops = [
        seen(client, helpers, merged, zone, person, view, when)
        for (zone, person, view), when in zip(path, stamps, strict=True)
    ]
    assert len({c["visitor_id"] for c in crops}) == 1
    occupancy = client.get("/occupancy", headers=merged["headers"]).json()
    assert occupancy["total"] == 0  # the shopper went out of the counts with the worker
    client.patch(base.format(merged["id"]), json={"match_threshold": None}, headers=helpers.admin)
    window = {
        "start": (now - timedelta(hours=1)).isoformat(),
        "end": (now + timedelta(minutes=5)).isoformat(),
    }
    moved = client.post(f"/stores/{merged['id']}/relink", json=window, headers=helpers.admin).json()
    assert moved["splits"] == 1, moved
    occupancy = client.get("/occupancy", headers=merged["headers"]).json()
    assert occupancy["total"] == 1
    assert {z["name"]: z["present"] for z in occupancy["zones"]} == {"entrance": 0, "toys": 1}
    everyone = client.get("/occupancy", params={"include_staff": "true"}, headers=merged["headers"]).json()
    assert everyone["total"] == 2
    sightings = {
        s["sighting_id"]: s["visitor_id"] for s in client.get("/sightings", headers=merged["headers"]).json()
    }
    (member,) = client.get("/staff", headers=merged["headers"]).json()
    assert (
        member["visitor_ids"] == [sightings[crops[0]["sighting_id"]]] == [sightings[crops[2]["sighting_id"]]]
    )
