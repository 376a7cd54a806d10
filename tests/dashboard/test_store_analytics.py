"""The dashboard's store analytics in a real browser: live occupancy over server-sent events (with
reconnects), paths between a dozen zones, staff left out of the counts, returning shoppers (opt-in)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from playwright.sync_api import BrowserContext, Page, expect

from tests.dashboard.store_day import (
    ADMIN_KEY,
    DAY,
    TIMEZONE,
    Scenario,
    local_time,
    make_store,
    png_bytes,
    post,
    story_image,
)
from tests.dashboard.test_dashboard import enter_key, open_page

DOZEN = [
    "Entrance",
    "Fruit & vegetables",
    "Bakery",
    "Dairy",
    "Frozen food",
    "Drinks",
    "Household",
    "Toys",
    "Garden",
    "Pharmacy",
    "Customer service",
    "Tills",
]
ADMIN = {"X-API-Key": ADMIN_KEY}


def now(seconds_ago: float = 0.0) -> str:
    """The server's clock (the page's clock is set to another day)."""
    return (datetime.now(UTC) - timedelta(seconds=seconds_ago)).isoformat()


def totals(page: Page) -> dict[str, int]:
    """Unique visitors per zone in the totals table."""
    rows = page.eval_on_selector_all(
        "#totals tbody tr",
        "els => els.map(e => [e.children[0].textContent, Number(e.children[1].dataset.totalUnique)])",
    )
    return dict(rows)


def test_live_occupancy_follows_sightings_and_survives_reconnects(
    context: BrowserContext, scenario: Scenario, cast, artifacts
):
    store = make_store(scenario.api, ["Entrance", "Tills"], timezone=TIMEZONE)
    page, errors = open_page(context, scenario.base_url)
    enter_key(page, store["headers"]["X-API-Key"])
    live, total = page.locator("#live"), page.locator("#live-total")
    expect(live).to_have_attribute("data-state", "live")
    expect(total).to_have_attribute("data-total", "0")
    entrance = page.locator(f'#live-zones li[data-zone="{store["zones"]["Entrance"]}"]')
    expect(entrance).to_have_attribute("data-present", "0")

    post(scenario.api, store, "Entrance", cast.people[0], 0, now(5))
    expect(total).to_have_attribute("data-total", "1", timeout=10_000)
    expect(entrance).to_have_attribute("data-present", "1")
    # the server ends each stream after a few seconds here: the page reconnects by itself
    expect(live).to_have_attribute("data-reconnects", re.compile("[1-9]"), timeout=20_000)
    post(scenario.api, store, "Tills", cast.people[1], 0, now(2))
    expect(total).to_have_attribute("data-total", "2", timeout=15_000)
    expect(page.locator(f'#live-zones li[data-zone="{store["zones"]["Tills"]}"]')).to_have_attribute(
        "data-present", "1"
    )
    expect(live).to_have_attribute("data-state", "live")
    page.locator("#live").screenshot(path=str(artifacts / "live.png"))
    assert errors == []


def test_paths_between_a_dozen_zones_read_as_a_matrix(
    context: BrowserContext, scenario: Scenario, cast, artifacts
):
    store = make_store(scenario.api, DOZEN, timezone=TIMEZONE)
    walks = [
        [("Entrance", "10:00"), ("Bakery", "10:03"), ("Dairy", "10:06"), ("Tills", "10:12")],
        [("Entrance", "10:01"), ("Toys", "10:05"), ("Tills", "10:09")],
        [("Entrance", "10:02"), ("Garden", "10:04")],
    ]
    for person, walk in zip(cast.people, walks, strict=False):
        for view, (zone, clock) in enumerate(walk):
            post(scenario.api, store, zone, person, view, local_time(clock))
    params = {
        "start": local_time("00:00"),
        "end": "2026-11-25T00:00:00+01:00",
        "zone_id": store["zones"]["Tills"],
    }
    expected = scenario.api.get("/flows", params=params, headers=store["headers"]).json()

    page, errors = open_page(context, scenario.base_url)
    enter_key(page, store["headers"]["X-API-Key"])
    expect(page.locator("#from")).to_have_value(DAY)
    expect(page.locator("#flows-summary")).to_have_text("3 visits by 3 visitors")
    cells = page.eval_on_selector_all(
        "#flows-matrix td[data-to]",
        "els => els.filter(e => e.dataset.count !== '0')"
        ".map(e => [Number(e.dataset.from), Number(e.dataset.to), Number(e.dataset.count)])",
    )
    assert sorted(map(tuple, cells)) == sorted(
        (t["from_zone_id"], t["to_zone_id"], t["count"]) for t in expected["transitions"]
    )
    firsts = page.eval_on_selector_all(
        "#flows-matrix td[data-first]", "els => els.map(e => Number(e.dataset.count))"
    )
    lasts = page.eval_on_selector_all(
        "#flows-matrix td[data-last]", "els => els.map(e => Number(e.dataset.count))"
    )
    assert firsts == [z["first"] for z in expected["zones"]] and lasts == [
        z["last"] for z in expected["zones"]
    ]
    move = page.locator(
        f'#flows-matrix td[data-from="{store["zones"]["Bakery"]}"][data-to="{store["zones"]["Dairy"]}"]'
    )
    expect(move).to_have_attribute("title", "Bakery → Dairy: 1 move, median 3 min 0 s")

    page.select_option("#funnel-zone", label="Tills")
    funnel = page.locator("#funnel")
    expect(funnel).to_contain_text("2 of 3 visits (67 %) reached Tills")
    assert float(funnel.get_attribute("data-share")) == expected["funnel"]["share"]

    # a dozen zones fit the page: no sideways scrolling, every zone named and legible
    fits = page.eval_on_selector("#flows-matrix", "e => e.scrollWidth <= e.clientWidth")
    assert fits
    heads = page.eval_on_selector_all(
        "#flows-matrix thead th[data-zone]",
        "els => els.map(e => [e.textContent, e.getBoundingClientRect().width,"
        " e.scrollWidth <= e.clientWidth + 1])",
    )
    assert [h[0] for h in heads] == DOZEN
    assert all(width >= 50 and whole for _, width, whole in heads), heads
    page.locator("#flows").screenshot(path=str(artifacts / "flows-dozen-zones.png"))
    assert errors == []


def test_staff_are_enrolled_marked_and_left_out(context: BrowserContext, scenario: Scenario, cast, artifacts):
    store = make_store(scenario.api, ["Floor"], timezone=TIMEZONE)
    shopper, worker = cast.people[2], cast.people[3]
    post(scenario.api, store, "Floor", shopper, 0, local_time("09:30"))
    post(scenario.api, store, "Floor", worker, 0, local_time("09:35"))
    page, errors = open_page(context, scenario.base_url)
    enter_key(page, store["headers"]["X-API-Key"])
    expect(page.locator("#totals tbody tr")).to_have_count(1)
    assert totals(page) == {"Floor": 2}

    page.fill("#staff-name", "Wanda")
    photo = {"name": "wanda.png", "mimeType": "image/png", "buffer": png_bytes(story_image(worker, 2))}
    page.set_input_files("#staff-photos", files=[photo])
    page.click("#staff-form button")
    row = page.locator("#staff-table tbody tr")
    expect(row).to_have_count(1)
    expect(row.first).to_have_attribute("data-visitors", "1")
    expect(row.first).to_contain_text("Wanda")
    expect(page.locator("#totals tbody tr td").nth(1)).to_have_text("1")

    page.check("#include-staff")
    expect(page.locator("#totals tbody tr td").nth(1)).to_have_text("2")
    page.uncheck("#include-staff")
    expect(page.locator("#totals tbody tr td").nth(1)).to_have_text("1")

    page.fill("#case-id", "staff-check")
    query = {"name": "shopper.png", "mimeType": "image/png", "buffer": png_bytes(story_image(shopper, 4))}
    page.set_input_files("#photo", files=[query])
    card = page.locator("#match-results .visitor.best")
    expect(card).to_be_visible()
    card.locator(".mark-staff input").fill("Sam")
    card.locator(".mark-staff button").click()
    expect(row).to_have_count(2)
    expect(page.locator("#totals tbody tr td").nth(1)).to_have_text("0")
    page.locator("#staff").screenshot(path=str(artifacts / "staff.png"))

    page.locator('#staff-table tbody tr:has-text("Wanda") button').click()
    expect(row).to_have_count(1)
    expect(page.locator("#totals tbody tr td").nth(1)).to_have_text("1")
    audit = scenario.api.get(f"/stores/{store['id']}/audit", headers=ADMIN).json()
    assert [r["action"] for r in audit] == ["staff-delete", "staff-mark", "staff-enrol"]
    assert errors == []


def test_returning_shoppers_are_shown_only_once_enabled(context: BrowserContext, scenario: Scenario, cast):
    store = make_store(scenario.api, ["Floor"], timezone=TIMEZONE)
    again, once = cast.people[0], cast.people[1]
    post(scenario.api, store, "Floor", again, 0, local_time("10:00", "2026-11-23"))
    post(scenario.api, store, "Floor", again, 1, local_time("16:00"))
    post(scenario.api, store, "Floor", once, 0, local_time("11:00"))
    page, errors = open_page(context, scenario.base_url)
    enter_key(page, store["headers"]["X-API-Key"])
    page.fill("#from", "2026-11-23")
    page.fill("#to", DAY)
    page.click("#returning-button")
    expect(page.locator("#returning-note")).to_contain_text("Returning shoppers are off for this store")
    expect(page.locator("#returning-table")).to_be_hidden()

    enabled = scenario.api.patch(f"/stores/{store['id']}", json={"returning_enabled": True}, headers=ADMIN)
    assert enabled.status_code == 200
    page.click("#returning-button")
    rows = page.locator("#returning-table tbody tr")
    expect(rows).to_have_count(2)
    shown = rows.evaluate_all(
        "els => els.map(e => [e.dataset.day, Number(e.dataset.visitors), Number(e.dataset.returning)])"
    )
    assert shown == [["2026-11-23", 1, 0], [DAY, 2, 1]]
    expect(rows.nth(1)).to_contain_text("50 %")
    expect(page.locator("#returning-note")).to_be_hidden()
    assert errors == []
