"""The store dashboard: ``/`` serves the page, ``/static/{name}`` its script and stylesheet."""

from __future__ import annotations

from importlib.resources import files
from importlib.resources.abc import Traversable

from fastapi import APIRouter, HTTPException, Response

router = APIRouter(include_in_schema=False)

ASSETS = {
    "index.html": "text/html; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
    "style.css": "text/css; charset=utf-8",
}
NO_CACHE = {"Cache-Control": "no-cache"}


def static_dir() -> Traversable:
    """The page's files, shipped inside the ``service`` package."""
    return files("service.dashboard").joinpath("static")


def _asset(name: str) -> Response:
    if name not in ASSETS:
        raise HTTPException(404, f"no static file {name!r}")
    try:
        body = static_dir().joinpath(name).read_bytes()
    except FileNotFoundError as exc:
        raise HTTPException(404, f"dashboard file {name!r} is not installed with the service") from exc
    return Response(body, media_type=ASSETS[name], headers=NO_CACHE)


@router.get("/")
def index() -> Response:
    """The dashboard page (public; every figure on it needs a store key)."""
    return _asset("index.html")


@router.get("/static/{name}")
def asset(name: str) -> Response:
    """One of the page's own files; anything else is a 404."""
    return _asset(name)
