"""The find-a-person results say how many sightings in the range an earlier model embedded."""

from __future__ import annotations

from playwright.sync_api import BrowserContext, Route, expect

from tests.service.conftest import png_bytes, story_image


def test_results_say_how_many_sightings_an_earlier_model_embedded(context: BrowserContext, scenario, cast):
    seen: list[int] = []

    def after_a_model_change(route: Route) -> None:
        """The service's real answer, as it would read with 3 sightings of an earlier model in range."""
        response = route.fetch()
        body = response.json()
        seen.append(body["other_model_sightings"])
        route.fulfill(response=response, json={**body, "other_model_sightings": 3})

    page = context.new_page()
    page.route("**/match", after_a_model_change)
    page.goto(scenario.base_url)
    page.fill("#key-input", scenario.key)
    page.click("#key-form button")
    page.fill("#case-id", "model-change-1")
    query = png_bytes(story_image(cast.people[0], 4))
    page.set_input_files("#photo", files=[{"name": "q.png", "mimeType": "image/png", "buffer": query}])
    expect(page.locator("#other-model-note")).to_contain_text(
        "3 sightings in this range came from an earlier model"
    )
    expect(page.locator("#match-results .visitor").first).to_be_visible()
    assert seen == [0]  # the live service has only the current model's sightings
