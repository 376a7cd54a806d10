"""Density buckets follow the store's clock (DST included) and the presence-gap rule."""

from __future__ import annotations

import pytest


def report(client, store, **params):
    response = client.get("/density", params=params, headers=store["headers"])
    assert response.status_code == 200, response.text
    return response.json()


def test_day_buckets_follow_local_midnight_across_dst(client, helpers):
    store = helpers.make_store(client, ["floor"], timezone="Europe/Berlin")
    body = report(
        client, store, start="2026-10-24T00:00:00+02:00", end="2026-10-27T00:00:00+01:00", bucket="P1D"
    )
    buckets = body["zones"][0]["buckets"]
    assert [b["start"] for b in buckets] == [
        "2026-10-23T22:00:00Z",
        "2026-10-24T22:00:00Z",
        "2026-10-25T23:00:00Z",
    ]
    assert buckets[1]["end"] == "2026-10-25T23:00:00Z"


def test_buckets_align_to_the_local_hour_and_clip_to_the_window(client, helpers):
    store = helpers.make_store(client, ["floor"], timezone="Asia/Kolkata")
    body = report(client, store, start="2026-11-25T10:05:00Z", end="2026-11-25T11:50:00Z", bucket="3600")
    buckets = body["zones"][0]["buckets"]
    assert [b["start"] for b in buckets] == [
        "2026-11-25T10:05:00Z",
        "2026-11-25T10:30:00Z",
        "2026-11-25T11:30:00Z",
    ]
    assert buckets[-1]["end"] == "2026-11-25T11:50:00Z"


@pytest.mark.slow
def test_gap_splits_visits_and_window_totals_are_not_bucket_sums(client, helpers, cast):
    store = helpers.make_store(client, ["floor"])
    shopper = cast.people[0]

    def seen(minute: int, view: int = 0) -> int:
        stamp = f"2026-11-25T10:{minute:02d}:00Z"
        response = helpers.post_sighting(client, store, "floor", helpers.story_image(shopper, view), stamp)
        assert response.status_code == 201
        return response.json()["sightings"][0]["visitor_id"]

    visitors = {seen(0), seen(4, 1), seen(8, 2), seen(20, 3)}
    assert len(visitors) == 1
    body = report(client, store, start="2026-11-25T10:00:00Z", end="2026-11-25T10:30:00Z", bucket="PT10M")
    zone = body["zones"][0]
    first, second, third = zone["buckets"]
    assert (first["entries"], first["sightings"], first["unique_visitors"]) == (1, 3, 1)
    assert first["mean_dwell_s"] == pytest.approx(480.0)
    assert first["occupancy_mean"] == pytest.approx(480 / 600)
    assert first["occupancy_max"] == 1
    assert (second["entries"], second["sightings"], second["occupancy_max"]) == (0, 0, 0)
    assert (third["entries"], third["sightings"], third["mean_dwell_s"]) == (1, 1, 0.0)
    assert zone["totals"]["unique_visitors"] == 1
    assert zone["totals"]["entries"] == 2
    assert zone["totals"]["occupancy_mean"] == pytest.approx(480 / 1800)
