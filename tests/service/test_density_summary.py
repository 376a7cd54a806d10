"""The density summary (whole local days kept in ``density_days``) answers exactly what the sightings
say, through ingest, erasure, re-linking, staff changes and retention, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from service.common.timeparse import to_ms
from service.density.compute import compute_density
from service.jobs.summaries import MAX_DAYS, warm_summaries
from service.privacy.retention import purge_expired, retention_cutoff
from service.storage.db import make_engine, make_session_factory
from service.storage.models import DensityDay, DensityMark

TZ = "Europe/Berlin"
ZONES = ["entrance", "toys"]


def days_ago(days: int, clock: str) -> datetime:
    """A local time ``days`` days before today in the store's zone."""
    today = datetime.now(ZoneInfo(TZ)).date()
    hour, minute = map(int, clock.split(":"))
    return datetime.combine(today - timedelta(days=days), datetime.min.time(), tzinfo=ZoneInfo(TZ)).replace(
        hour=hour, minute=minute
    )


def test_the_summary_always_equals_the_sightings(database_url, settings_for, start_app, helpers, cast):
    client = start_app(settings_for(database_url, link_time_penalty=0.0))
    store = helpers.make_store(client, ZONES, timezone=TZ)
    sessions = make_session_factory(make_engine(database_url))
    start, end = days_ago(4, "00:00"), days_ago(-1, "00:00")
    params = {"start": start.isoformat(), "end": end.isoformat(), "bucket": "P1D"}

    def summary(include_staff: bool = False) -> list:
        response = client.get(
            "/density",
            params=params | {"include_staff": str(include_staff).lower()},
            headers=store["headers"],
        )
        assert response.status_code == 200, response.text
        return [(z["zone_id"], z["buckets"], z["totals"]) for z in response.json()["zones"]]

    def live(include_staff: bool = False) -> list:
        with sessions() as session:
            zones = compute_density(
                session,
                store["id"],
                ZoneInfo(TZ),
                start,
                end,
                86400,
                300.0,
                1000,
                include_staff=include_staff,
            )
        rows = []
        for zone in zones:
            buckets = [
                {
                    "start": b.start.isoformat().replace("+00:00", "Z"),
                    "end": b.end.isoformat().replace("+00:00", "Z"),
                    "unique_visitors": b.unique_visitors,
                    "sightings": b.sightings,
                    "entries": b.entries,
                    "mean_dwell_s": b.mean_dwell_s,
                    "occupancy_mean": b.occupancy_mean,
                    "occupancy_max": b.occupancy_max,
                }
                for b in zone.buckets
            ]
            rows.append((zone.zone_id, buckets, vars(zone.totals)))
        return rows

    def same(include_staff: bool = False) -> None:
        got, want = summary(include_staff), live(include_staff)
        for (zone, buckets, totals), (zone_w, buckets_w, totals_w) in zip(got, want, strict=True):
            assert zone == zone_w
            for cell, cell_w in zip(buckets, buckets_w, strict=True):
                assert cell.keys() == cell_w.keys()
                for key in cell:
                    if isinstance(cell[key], float):
                        assert abs(cell[key] - cell_w[key]) < 1e-9, (key, cell, cell_w)
                    else:
                        assert cell[key] == cell_w[key], (key, cell, cell_w)
            assert totals["unique_visitors"] == totals_w["unique_visitors"]
            assert totals["sightings"] == totals_w["sightings"] and totals["entries"] == totals_w["entries"]

    def post(zone: str, person: int, view: int, when: datetime) -> dict:
        response = helpers.post_sighting(
            client, store, zone, helpers.story_image(person, view), when.isoformat()
        )
        assert response.status_code == 201, response.text
        return response.json()["sightings"][0]

    def rows() -> int:
        with sessions() as session:
            return session.scalar(select(func.count()).select_from(DensityDay))

    one, two, three, four = cast.people[:4]
    post("entrance", one, 0, days_ago(3, "10:00"))
    post("toys", one, 1, days_ago(3, "10:04"))
    late = post("entrance", two, 0, days_ago(2, "23:58"))  # a visit across midnight
    post("entrance", two, 1, days_ago(1, "00:02"))
    post("toys", three, 0, days_ago(1, "12:00"))
    assert warm_summaries(client.app.state.services) == 1  # the background job: days before today
    assert rows() == MAX_DAYS * len(ZONES)
    same()
    assert rows() == (MAX_DAYS + 1) * len(ZONES)  # and today, which the window holds whole
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(DensityMark)) == 0
    report = client.get("/density", params=params, headers=store["headers"]).json()
    totals = {z["name"]: z["totals"]["unique_visitors"] for z in report["zones"]}
    assert totals == {"entrance": 2, "toys": 2}  # the shopper across midnight counts once

    post("toys", three, 1, days_ago(1, "12:03"))  # ingest
    same()

    def crossing() -> set[int]:
        with sessions() as session:
            lists = session.scalars(select(DensityDay.crossing)).all()
        return {int(v) for ids in lists for v in ids.split(",") if v}

    assert late["visitor_id"] in crossing()
    erased = client.delete(f"/visitors/{late['visitor_id']}", headers=store["headers"])  # erasure
    assert erased.status_code == 200
    assert late["visitor_id"] not in crossing()  # gone with the erasure, not at the next read
    same()
    staff = post("entrance", one, 2, days_ago(1, "15:00"))
    marked = client.post(
        f"/visitors/{staff['visitor_id']}/staff", json={"name": "Ola"}, headers=store["headers"]
    )
    assert marked.status_code == 201 and len(marked.json()["visitor_ids"]) == 2  # a staff change
    same()
    same(include_staff=True)

    base = f"/stores/{store['id']}"
    client.patch(base, json={"match_threshold": -1.0}, headers=helpers.admin)
    window = {"start": days_ago(1, "11:00").isoformat(), "end": days_ago(1, "16:00").isoformat()}
    for view in (2, 3):  # a new shopper, linked to someone else while anyone links to anyone
        post("entrance", four, view, days_ago(1, f"12:0{view}"))
    client.patch(base, json={"match_threshold": None}, headers=helpers.admin)
    relinked = client.post(f"{base}/relink", json=window, headers=helpers.admin).json()
    assert relinked["moved"] > 0  # re-linking
    same()
    same(include_staff=True)

    noon = days_ago(0, "12:00")  # retention counts UTC days: at local noon they are the store's days
    purge_expired(sessions, days=2, audit_days=365, now=noon)  # retention: the two oldest days go
    with sessions() as session:
        oldest = session.scalar(select(func.min(DensityDay.start_ms)))
    assert oldest is None or oldest >= to_ms(retention_cutoff(2, noon))  # their summaries went with them
    same()
    report = client.get(
        "/density", params=params | {"include_staff": "true"}, headers=store["headers"]
    ).json()
    assert [z["buckets"][1]["sightings"] for z in report["zones"]] == [0, 0]
