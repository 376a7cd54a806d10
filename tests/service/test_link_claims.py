"""Ingest decides on reads, then writes in a short transaction that claims the store's row only if no
other writer committed since; otherwise it decides again (and, when contended, under the row lock)."""

from __future__ import annotations

from prometheus_client import REGISTRY

import service.ingest.service as ingest_service


def retries() -> float:
    return REGISTRY.get_sample_value("reid_link_retries_total") or 0.0


def test_another_replicas_commit_while_deciding_makes_the_ingest_decide_again(
    database_url, settings_for, start_app, helpers, cast, tmp_path, monkeypatch
):
    one = start_app(settings_for(database_url, index_dir=tmp_path / "one"))
    two = start_app(settings_for(database_url, index_dir=tmp_path / "two"))
    store = helpers.make_store(one, ["entrance", "toys"])
    person = cast.people[0]
    plans = []
    plan_links = ingest_service.plan_links

    def plan_while_the_other_replica_writes(*args, **kwargs):
        plans.append(plan_links(*args, **kwargs))
        if len(plans) == 1:  # replica two has decided; replica one now stores the same person
            first = helpers.post_sighting(
                one, store, "entrance", helpers.story_image(person, 0), "2026-11-25T09:00:00Z"
            )
            assert first.status_code == 201, first.text
        return plans[-1]

    monkeypatch.setattr(ingest_service, "plan_links", plan_while_the_other_replica_writes)
    before = retries()
    second = helpers.post_sighting(two, store, "toys", helpers.story_image(person, 1), "2026-11-25T09:04:00Z")
    assert second.status_code == 201, second.text

    assert len(plans) == 3  # two's plan, one's plan, two's plan again
    assert plans[0].units[0].creates  # on what it had read: a new visitor
    assert not plans[2].units[0].creates  # decided again on one's commit: the same visitor
    assert retries() == before + 1
    sightings = two.get("/sightings", headers=store["headers"]).json()
    assert len(sightings) == 2 and len({s["visitor_id"] for s in sightings}) == 1


def test_a_store_that_stays_contended_is_linked_under_the_row_lock(client, helpers, cast, monkeypatch):
    store = helpers.make_store(client, ["entrance"])
    person = cast.people[1]
    monkeypatch.setattr(ingest_service, "claim_store_row", lambda *args: False)
    before = retries()
    for minute in (0, 1):
        response = helpers.post_sighting(
            client, store, "entrance", helpers.story_image(person, minute), f"2026-11-25T10:0{minute}:00Z"
        )
        assert response.status_code == 201, response.text
    assert retries() == before + 2 * 3  # REID_LINK_OPTIMISTIC_ATTEMPTS, the default
    sightings = client.get("/sightings", headers=store["headers"]).json()
    assert len(sightings) == 2 and len({s["visitor_id"] for s in sightings}) == 1
