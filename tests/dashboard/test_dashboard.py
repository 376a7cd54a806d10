"""The store dashboard in a real browser: key entry, density heatmap, auto-refresh, finding a person."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
from playwright.sync_api import BrowserContext, Page, expect

from tests.dashboard.conftest import floor_for
from tests.dashboard.store_day import (
    ADMIN_KEY,
    DAY,
    TIMEZONE,
    TOTALS,
    UNIQUE_BY_HOUR,
    VISITS,
    Scenario,
    local_time,
    make_store,
    png_bytes,
    post,
    story_image,
    track_of,
)

NOON = datetime.fromisoformat(f"{DAY}T12:00:00").replace(tzinfo=ZoneInfo(TIMEZONE))
CELLS_JS = "els => els.map(e => [Number(e.dataset.zone), e.dataset.bucket, Number(e.dataset.value)])"


def utc(text: str) -> datetime:
    """An aware UTC datetime from an ISO string (with Z or an offset)."""
    return datetime.fromisoformat(text).astimezone(UTC)


def open_page(context: BrowserContext, base_url: str) -> tuple[Page, list[str]]:
    """A page at the dashboard with the store's clock at noon on DAY; uncaught script errors and
    Content-Security-Policy violations are collected."""
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: "Content Security Policy" in msg.text and errors.append(msg.text))
    page.clock.install(time=NOON)
    page.goto(base_url)
    return page, errors


def enter_key(page: Page, key: str) -> None:
    """Type a key into the key form and submit it."""
    page.fill("#key-input", key)
    page.click("#key-form button")


def density(api: httpx.Client, key: str, day: str, bucket: str) -> dict:
    """What ``GET /density`` returns for one local day."""
    next_day = (datetime.fromisoformat(day) + timedelta(days=1)).date().isoformat()
    params = {"start": local_time("00:00", day), "end": local_time("00:00", next_day), "bucket": bucket}
    response = api.get("/density", params=params, headers={"X-API-Key": key})
    assert response.status_code == 200, response.text
    return response.json()


def density_cells(scenario: Scenario, day: str, bucket: str) -> dict[tuple[int, datetime], int]:
    """``GET /density``'s unique visitors for one local day: (zone id, bucket start) -> count."""
    report = density(scenario.api, scenario.key, day, bucket)
    return {
        (zone["zone_id"], utc(b["start"])): b["unique_visitors"]
        for zone in report["zones"]
        for b in zone["buckets"]
    }


def heatmap_cells(page: Page) -> dict[tuple[int, datetime], int]:
    """The heatmap's numbers as the page exposes them: (zone id, bucket start) -> unique visitors."""
    rows = page.eval_on_selector_all("#heatmap rect.cell", CELLS_JS)
    return {(zone, utc(bucket)): value for zone, bucket, value in rows}


def test_bad_keys_are_refused_plainly(context: BrowserContext, scenario: Scenario, artifacts):
    page, errors = open_page(context, scenario.base_url)
    expect(page.locator("#key-panel")).to_be_visible()
    enter_key(page, "not-a-real-key")
    expect(page.locator("#key-error")).to_contain_text("This key was not accepted: invalid API key")
    expect(page.locator("#dashboard")).to_be_hidden()
    page.screenshot(path=str(artifacts / "bad-key.png"))
    enter_key(page, ADMIN_KEY)
    expect(page.locator("#key-error")).to_contain_text("needs a store key")
    assert page.evaluate("Object.keys(sessionStorage)") == []

    page.evaluate("key => sessionStorage.setItem('reid-dashboard.store-key', key)", "revoked-key")
    page.reload()
    expect(page.locator("#key-error")).to_contain_text("The saved key no longer works: invalid API key")
    expect(page.locator("#dashboard")).to_be_hidden()
    assert page.evaluate("Object.keys(sessionStorage)") == []
    assert errors == []


def test_heatmap_shows_what_density_returns(context: BrowserContext, scenario: Scenario, artifacts):
    page, errors = open_page(context, scenario.base_url)
    enter_key(page, scenario.key)
    expect(page.locator("#from")).to_have_value(DAY)
    expect(page.locator("#heatmap rect.cell")).to_have_count(len(scenario.store["zones"]) * 24)

    report = density(scenario.api, scenario.key, DAY, "PT1H")
    shown = heatmap_cells(page)
    assert shown == density_cells(scenario, DAY, "PT1H")

    midnight = NOON.replace(hour=0).astimezone(UTC)
    by_construction = {
        (scenario.store["zones"][zone], midnight + timedelta(hours=hour)): count
        for (zone, hour), count in UNIQUE_BY_HOUR.items()
    }
    assert {cell: value for cell, value in shown.items() if value} == by_construction

    totals = page.eval_on_selector_all(
        "#heatmap .row-total", "els => els.map(e => [Number(e.dataset.zone), Number(e.dataset.total)])"
    )
    assert dict(totals) == {scenario.store["zones"][name]: n for name, n in TOTALS.items()}
    lines = page.eval_on_selector_all(
        "#lines polyline.series", "els => els.map(e => [Number(e.dataset.zone), e.dataset.values])"
    )
    assert dict(lines) == {
        z["zone_id"]: ",".join(str(b["unique_visitors"]) for b in z["buckets"]) for z in report["zones"]
    }
    toys_ten = page.locator(f'#heatmap rect.cell[data-zone="{scenario.store["zones"]["Toys"]}"]').nth(10)
    expect(toys_ten.locator("title")).to_have_text(
        "Toys, 24 Nov 10:00–11:00: 2 unique visitors (2 sightings)"
    )

    page.select_option("#bucket", "P1D")
    page.click("#density-form button")
    expect(page.locator("#heatmap rect.cell")).to_have_count(len(scenario.store["zones"]))
    daily = {zone: value for (zone, _), value in heatmap_cells(page).items()}
    assert daily == {scenario.store["zones"][name]: n for name, n in TOTALS.items()}

    page.fill("#from", "2026-11-23")
    page.fill("#to", "2026-11-25")
    page.select_option("#bucket", "PT15M")
    page.click("#density-form button")
    expect(page.locator("#heatmap rect.cell")).to_have_count(len(scenario.store["zones"]) * 3 * 96)
    quarter = {
        (zone, start): value
        for day in ("2026-11-23", DAY, "2026-11-25")
        for (zone, start), value in density_cells(scenario, day, "PT15M").items()
    }
    assert heatmap_cells(page) == quarter
    page.screenshot(path=str(artifacts / "three-days.png"), full_page=True)

    assert page.evaluate("Object.keys(localStorage)") == []  # the key lives in this tab only
    page.reload()
    expect(page.locator("#dashboard")).to_be_visible()
    expect(page.locator("#key-panel")).to_be_hidden()
    page.click("#change-key")
    expect(page.locator("#key-panel")).to_be_visible()
    assert page.evaluate("Object.keys(sessionStorage)") == []
    assert errors == []


def test_density_follows_the_live_stream_not_a_timer(context: BrowserContext, scenario: Scenario, cast):
    store = make_store(scenario.api, ["Floor"], timezone=TIMEZONE)
    post(scenario.api, store, "Floor", cast.people[0], 0, local_time("09:30"))
    page, errors = open_page(context, scenario.base_url)
    enter_key(page, store["headers"]["X-API-Key"])
    cell = page.locator("#heatmap rect.cell").nth(9)
    expect(cell).to_have_attribute("data-value", "1")
    expect(page.locator("#density")).to_have_attribute("data-refreshes", "1")
    expect(page.locator("#live")).to_have_attribute("data-state", "live")
    page.clock.fast_forward("05:00")  # no polling: time passing alone reloads nothing
    page.wait_for_timeout(300)
    expect(page.locator("#density")).to_have_attribute("data-refreshes", "1")

    post(scenario.api, store, "Floor", cast.people[1], 0, local_time("09:40"))  # the stream tells the page
    expect(cell).to_have_attribute("data-value", "2", timeout=15_000)
    expect(page.locator("#density")).to_have_attribute("data-refreshes", "2")
    assert errors == []


def test_a_photo_finds_the_person_newest_first(context: BrowserContext, scenario: Scenario, cast, artifacts):
    page, errors = open_page(context, scenario.base_url)
    enter_key(page, scenario.key)
    expect(page.locator("#heatmap rect.cell").first).to_be_visible()
    query = png_bytes(story_image(cast.people[0], 4))
    page.set_input_files(
        "#photo", files=[{"name": "lost-child.png", "mimeType": "image/png", "buffer": query}]
    )
    expect(page.locator("#match-error")).to_contain_text("Enter the case ID first")
    expect(page.locator("#match-results .visitor")).to_have_count(0)
    expect(page.locator("#search-button")).to_have_text("Search")
    page.fill("#case-id", "lost-child-2611")
    page.click("#match-form button")
    expect(page.locator("#search-button")).to_have_text("Search again")

    best = page.locator("#match-results .visitor").first
    expect(best).to_have_attribute("data-visitor", str(scenario.visitors[0]))
    rows = best.locator("tr.sighting")
    expect(rows).to_have_count(len(VISITS[0]))
    shown = [utc(t) for t in rows.evaluate_all("els => els.map(e => e.dataset.capturedAt)")]
    posted = sorted((utc(s.captured_at) for s in scenario.sightings[0]), reverse=True)
    assert shown == posted
    zones = rows.evaluate_all("els => els.map(e => e.children[1].textContent)")
    assert zones == [
        s.zone for s in sorted(scenario.sightings[0], key=lambda s: utc(s.captured_at), reverse=True)
    ]
    cameras = rows.evaluate_all("els => els.map(e => e.children[2].textContent)")
    views = sorted(VISITS[0], key=lambda v: v[2], reverse=True)
    assert cameras == [
        f"{zone}-cam · track {track_of(cast.people[0], view)}"
        for zone, (_, view, _) in zip(zones, views, strict=True)
    ]

    last = best.locator(".last-seen")
    expect(last).to_have_attribute("data-zone", str(scenario.store["zones"]["Tills"]))
    expect(last).to_have_attribute("data-camera", str(scenario.store["cameras"]["Tills"]))
    expect(last).to_contain_text("Last seen in Tills by camera Tills-cam")
    expect(last).to_contain_text("11:10")
    assert "camera #" not in page.locator("#match-results").inner_text()

    shot = artifacts / "dashboard.png"
    page.screenshot(path=str(shot), full_page=True)
    print(f"dashboard screenshot: {shot}")

    page.check("#match-in-range")
    page.fill("#from", "2026-11-23")
    page.fill("#to", "2026-11-23")
    page.click("#match-form button")
    expect(page.locator("#match-results")).to_contain_text(
        f"Nobody above similarity {floor_for(cast):.2f} matches this photo."
    )
    audit = scenario.api.get(
        f"/stores/{scenario.store['id']}/match-audit", headers={"X-API-Key": ADMIN_KEY}
    ).json()
    assert [(row["case_id"], row["outcome"]) for row in audit[:2]] == [("lost-child-2611", "ok")] * 2
    assert audit[0]["results"] == 0 and audit[1]["results"] >= len(VISITS[0])
    assert errors == []


def test_a_bad_image_is_reported_plainly(context: BrowserContext, scenario: Scenario, artifacts):
    page, errors = open_page(context, scenario.base_url)
    enter_key(page, scenario.key)
    expect(page.locator("#dashboard")).to_be_visible()
    page.fill("#case-id", "bad-image-check")
    payload = base64.b64encode(b"this is not a picture").decode()
    transfer = page.evaluate_handle(
        """data => {
            const bytes = Uint8Array.from(atob(data), c => c.charCodeAt(0));
            const transfer = new DataTransfer();
            transfer.items.add(new File([bytes], "broken.png", { type: "image/png" }));
            return transfer;
        }""",
        payload,
    )
    page.dispatch_event("#drop", "drop", {"dataTransfer": transfer})
    error = page.locator("#match-error")
    expect(error).to_contain_text("This photo could not be used")
    expect(error).to_contain_text("cannot decode image")
    expect(page.locator("#match-results .visitor")).to_have_count(0)
    page.locator("#find").screenshot(path=str(artifacts / "bad-image.png"))
    assert errors == []


def test_the_page_and_its_files_are_served(scenario: Scenario):
    api = scenario.api
    page = api.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert 'src="static/app.js"' in page.text
    assert api.get("/static/app.js").headers["content-type"].startswith("text/javascript")
    assert api.get("/static/style.css").headers["content-type"].startswith("text/css")
    assert api.get("/static/../main.py").status_code == 404
    assert api.get("/static/nothing.js").status_code == 404


def test_the_similarity_floor_is_in_the_form_and_nobody_above_it_is_said_so(
    context: BrowserContext, scenario: Scenario, cast
):
    page, errors = open_page(context, scenario.base_url)
    enter_key(page, scenario.key)
    floor = floor_for(cast)
    expect(page.locator("#min-similarity")).to_have_value(f"{floor:g}")
    page.fill("#case-id", "stranger-check")
    stranger = png_bytes(story_image(cast.people[3], 4))
    page.set_input_files(
        "#photo", files=[{"name": "stranger.png", "mimeType": "image/png", "buffer": stranger}]
    )
    expect(page.locator("#match-results")).to_contain_text(
        f"Nobody above similarity {floor:.2f} matches this photo."
    )
    expect(page.locator("#match-results .visitor")).to_have_count(0)
    page.fill("#min-similarity", "")
    page.click("#match-form button")
    expect(page.locator("#match-results .visitor").first).to_be_visible()
    shown = page.eval_on_selector_all(
        "#match-results tr.sighting", "els => els.map(e => Number(e.dataset.similarity))"
    )
    assert shown and max(shown) < floor
    assert errors == []


def test_an_untrained_model_is_announced_at_the_top(
    context: BrowserContext, untrained_url: str, scenario: Scenario, artifacts
):
    page, errors = open_page(context, untrained_url)
    banner = page.locator("#model-warning")
    expect(banner).to_be_visible()
    expect(banner).to_contain_text("untrained model")
    expect(banner).to_contain_text("mean nothing")
    first = page.evaluate("document.body.firstElementChild.id")
    assert first == "model-warning"
    box = banner.bounding_box()
    assert box is not None and box["y"] < 40
    page.screenshot(path=str(artifacts / "untrained.png"))
    trained, _ = open_page(context, scenario.base_url)
    expect(trained.locator("#model-warning")).to_be_hidden()
    assert errors == []


def test_charts_stay_readable_and_too_many_buckets_suggests_a_larger_one(
    context: BrowserContext, scenario: Scenario
):
    page, errors = open_page(context, scenario.base_url)
    enter_key(page, scenario.key)
    expect(page.locator("#heatmap rect.cell").first).to_be_visible()
    series = page.eval_on_selector_all(
        "#lines polyline.series",
        "els => els.map(e => [e.getAttribute('stroke-width'), e.getAttribute('stroke-dasharray')])",
    )
    assert len(series) == 3 and len(set(map(tuple, series))) == 3

    page.fill("#from", "2026-11-23")
    page.fill("#to", "2026-11-25")
    page.select_option("#bucket", "PT15M")
    page.click("#density-form button")
    expect(page.locator("#heatmap rect.cell")).to_have_count(3 * 3 * 96)
    widths = page.eval_on_selector_all(
        "#heatmap rect.cell", "els => els.map(e => Number(e.getAttribute('width')))"
    )
    assert min(widths) >= 7

    page.fill("#from", "2026-11-14")
    page.fill("#to", "2026-11-24")
    page.click("#density-form button")
    error = page.locator("#density-error")
    expect(error).to_contain_text("Too many time buckets for 11 days")
    expect(error).to_contain_text("choose a larger bucket, e.g. 30 minutes")
    assert errors == []
