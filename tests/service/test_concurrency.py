"""Concurrent posts of the same shoppers, to two app instances on one database, link into one visitor each."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest


@pytest.mark.slow
def test_concurrent_ingest_on_two_instances_links_each_person_once(
    database_url, settings_for, start_app, helpers, cast, tmp_path
):
    one = start_app(settings_for(database_url, index_dir=tmp_path / "one"))
    two = start_app(settings_for(database_url, index_dir=tmp_path / "two"))
    store = helpers.make_store(one, ["entrance", "toys"])
    people = cast.people[:2]
    jobs = [
        ((one, two)[(view + i) % 2], person, view) for view in range(4) for i, person in enumerate(people)
    ]

    def post(job):
        app, person, view = job
        zone = "entrance" if view % 2 == 0 else "toys"
        stamp = f"2026-11-25T10:0{view}:00Z"
        return person, helpers.post_sighting(app, store, zone, helpers.story_image(person, view), stamp)

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(post, jobs))
    assert all(response.status_code == 201 for _, response in results)
    visitors = {person: set() for person in people}
    for person, response in results:
        visitors[person].add(response.json()["sightings"][0]["visitor_id"])
    assert all(len(ids) == 1 for ids in visitors.values()), visitors
    assert visitors[people[0]] != visitors[people[1]]
    new = [response.json()["sightings"][0]["new_visitor"] for _, response in results]
    assert sum(new) == 2
