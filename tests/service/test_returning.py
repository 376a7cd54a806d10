"""Returning shoppers: off until the admin enables them for the store, every report and refusal
audited, per local day the visitors seen on an earlier day (staff left out), only counts returned."""

from __future__ import annotations

WINDOW = {"start": "2026-11-23T00:00:00+01:00", "end": "2026-11-26T00:00:00+01:00"}


def test_returning_shoppers_are_opt_in_audited_and_counted_per_day(client, helpers, cast):
    store = helpers.make_store(client, ["entrance", "tills"], timezone="Europe/Berlin")
    again, once, worker = cast.people[:3]
    visits = [
        ("entrance", again, 0, "2026-11-23T10:00:00+01:00"),
        ("entrance", worker, 0, "2026-11-23T09:00:00+01:00"),
        ("tills", again, 1, "2026-11-24T17:30:00+01:00"),  # the next day: a new visitor, the same person
        ("entrance", once, 0, "2026-11-24T11:00:00+01:00"),
        ("tills", worker, 1, "2026-11-24T09:00:00+01:00"),
    ]
    visitors = {}
    for zone, person, view, when in visits:
        response = helpers.post_sighting(client, store, zone, helpers.story_image(person, view), when)
        assert response.status_code == 201, response.text
        visitors.setdefault(person, set()).add(response.json()["sightings"][0]["visitor_id"])
    assert len(visitors[again]) == 2
    enrolled = client.post(
        "/staff",
        data={"name": "Wes"},
        files=[("images", ("w.png", helpers.png(helpers.story_image(worker, 2)), "image/png"))],
        headers=store["headers"],
    )
    assert enrolled.status_code == 201 and len(enrolled.json()["visitor_ids"]) == 2

    refused = client.get("/returning", params=WINDOW, headers=store["headers"])
    assert refused.status_code == 403 and "not enabled" in refused.json()["detail"]
    base = f"/stores/{store['id']}"
    assert client.get(base, headers=helpers.admin).json()["returning_enabled"] is False
    on = client.patch(base, json={"returning_enabled": True}, headers=helpers.admin)
    assert on.status_code == 200 and on.json()["returning_enabled"] is True

    report = client.get("/returning", params=WINDOW, headers=store["headers"])
    assert report.status_code == 200, report.text
    body = report.json()
    assert body["timezone"] == "Europe/Berlin" and body["threshold"] == cast.threshold
    days = [(d["day"], d["visitors"], d["returning"], d["share"]) for d in body["days"]]
    assert days == [("2026-11-23", 1, 0, 0.0), ("2026-11-24", 2, 1, 0.5), ("2026-11-25", 0, 0, 0.0)]
    assert body["days"][0]["start"] == "2026-11-22T23:00:00Z"
    assert "visitor_id" not in report.text  # counts only

    too_long = client.get(
        "/returning",
        params={"start": "2026-10-01T00:00:00Z", "end": "2026-11-05T00:00:00Z"},
        headers=store["headers"],
    )
    assert too_long.status_code == 422 and "REID_RETURNING_MAX_DAYS" in too_long.json()["detail"]
    assert client.get("/returning", params=WINDOW, headers=helpers.admin).status_code == 403
    off = client.patch(base, json={"returning_enabled": False}, headers=helpers.admin)
    assert off.json()["returning_enabled"] is False
    assert client.get("/returning", params=WINDOW, headers=store["headers"]).status_code == 403

    audit = client.get(f"{base}/audit", headers=helpers.admin).json()
    rows = [
        (r["action"], r["outcome"], r["key_prefix"] == "admin") for r in audit if r["action"] != "staff-enrol"
    ]
    assert rows == [
        ("returning-report", "refused", False),
        ("returning-off", "ok", True),
        ("returning-report", "ok", False),
        ("returning-on", "ok", True),
        ("returning-report", "refused", False),
    ]
    ok = next(r for r in audit if r["outcome"] == "ok" and r["action"] == "returning-report")
    assert "3 visitors, 1 returning" in ok["detail"] and ok["key_id"] is not None
    only = client.get(f"{base}/audit", params={"action": "returning-on"}, headers=helpers.admin).json()
    assert [r["action"] for r in only] == ["returning-on"]
