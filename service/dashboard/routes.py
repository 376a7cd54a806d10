"""The store dashboard: ``/`` serves the page, ``/static/{name}`` its script and stylesheet.

The page is filled in per app: the find-a-person form's similarity floor (``REID_DASHBOARD_MIN_SIMILARITY``)
and, when the service runs an untrained network, a warning at the top that its figures mean nothing.
"""

from __future__ import annotations

import html
from importlib.resources import files
from importlib.resources.abc import Traversable
from string import Template

from fastapi import APIRouter, HTTPException, Response

from service.http.deps import StateDep

router = APIRouter(include_in_schema=False)

ASSETS = {
    "index.html": "text/html; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
    "style.css": "text/css; charset=utf-8",
}
NO_CACHE = {"Cache-Control": "no-cache"}
UNTRAINED_NOTICE = (
    "This service runs an untrained model. It cannot tell people apart: visitor counts, dwell times "
    "and person search below mean nothing. Ask whoever runs the service to install a trained model."
)


def static_dir() -> Traversable:
    """The page's files, shipped inside the ``service`` package."""
    return files("service.dashboard").joinpath("static")


def _read(name: str) -> bytes:
    if name not in ASSETS:
        raise HTTPException(404, f"no static file {name!r}")
    try:
        return static_dir().joinpath(name).read_bytes()
    except FileNotFoundError as exc:
        raise HTTPException(404, f"dashboard file {name!r} is not installed with the service") from exc


def _asset(name: str) -> Response:
    return Response(_read(name), media_type=ASSETS[name], headers=NO_CACHE)


@router.get("/")
def index(state: StateDep) -> Response:
    """The dashboard page (public; every figure on it needs a store key)."""
    model = state.model
    page = Template(_read("index.html").decode()).substitute(
        min_similarity=f"{state.settings.dashboard_min_similarity:g}",
        model_notice=html.escape(UNTRAINED_NOTICE if not model.trained else ""),
        model_detail=html.escape(model.warning or ""),
        model_notice_hidden="" if not model.trained else "hidden",
    )
    return Response(page.encode(), media_type=ASSETS["index.html"], headers=NO_CACHE)


@router.get("/static/{name}")
def asset(name: str) -> Response:
    """One of the page's own files; anything else is a 404."""
    return _asset(name)
