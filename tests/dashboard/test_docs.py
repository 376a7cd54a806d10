"""The API docs on a store server without internet: /docs and /redoc load everything from the service."""

from __future__ import annotations

import httpx
from playwright.sync_api import BrowserContext, Route, expect

HIDDEN = {"HEAD", "OPTIONS"}


def operations(base_url: str) -> list[tuple[str, str]]:
    """(method, path) of every documented operation."""
    schema = httpx.get(f"{base_url}/openapi.json", timeout=30).json()
    return [
        (method.upper(), path)
        for path, item in schema["paths"].items()
        for method in item
        if method.upper() not in HIDDEN
    ]


def offline_page(context: BrowserContext, base_url: str):
    """A page that can reach the service and nothing else; returns it and what it asked for elsewhere."""
    refused: list[tuple[str, str]] = []

    def refuse(route: Route) -> None:
        refused.append((route.request.resource_type, route.request.url))
        route.abort("internetdisconnected")

    page = context.new_page()
    page.route(lambda url: not url.startswith(base_url), refuse)
    return page, refused


def test_swagger_ui_lists_every_operation_offline(context: BrowserContext, live_url: str, artifacts):
    page, refused = offline_page(context, live_url)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: "Content Security Policy" in msg.text and errors.append(msg.text))
    page.goto(f"{live_url}/docs")
    expected = operations(live_url)
    expect(page.locator(".opblock").first).to_be_visible(timeout=30_000)
    shown = page.eval_on_selector_all(
        ".opblock",
        """els => els.map(e => [
            e.querySelector('.opblock-summary-method').textContent.trim(),
            e.querySelector('.opblock-summary-path').getAttribute('data-path'),
        ])""",
    )
    assert set(map(tuple, shown)) == set(expected)  # an operation with two tags is listed under both
    page.screenshot(path=str(artifacts / "docs-offline.png"))
    assert refused == [] and errors == []


def test_redoc_renders_offline(context: BrowserContext, live_url: str):
    page, refused = offline_page(context, live_url)
    violations: list[str] = []
    page.on("console", lambda msg: "Content Security Policy" in msg.text and violations.append(msg.text))
    page.goto(f"{live_url}/redoc")
    expect(page.locator("h1")).to_contain_text("RGA re-id retail service", timeout=30_000)
    schema = httpx.get(f"{live_url}/openapi.json", timeout=30).json()
    summaries = {
        op["summary"] for item in schema["paths"].values() for op in item.values() if "summary" in op
    }
    shown = set(page.eval_on_selector_all("h2", "els => els.map(e => e.textContent.trim())"))
    assert summaries <= shown, summaries - shown
    # ReDoc's "API docs by Redocly" badge is an image on their CDN: offline it is a broken image, nothing more
    assert all(kind == "image" for kind, _ in refused), refused
    # ... which the Content-Security-Policy now blocks before it is even asked for; nothing else is blocked
    assert all(v.startswith("Loading the image 'https://cdn.redoc.ly/") for v in violations), violations
