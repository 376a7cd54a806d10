"""Whether this process can serve (database reachable and writable, model loaded, indexes built), and
what it reports beside: sightings per model version, maintenance state.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from service.state import AppState


@dataclass(frozen=True)
class Readiness:
    """The readiness report and whether it means ready."""

    ready: bool
    body: dict[str, Any]


def check_database(state: AppState) -> str:
    """``ok``, or why the database cannot be reached."""
    try:
        with state.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        return f"unavailable ({type(exc).__name__})"
    return "ok"


def check_writes(state: AppState) -> str:
    """``ok``, or why the database refuses writes (read-only, full disk, ...)."""
    try:
        problem = state.writes.check(state.engine)
    except SQLAlchemyError as exc:
        return f"unknown ({type(exc).__name__})"
    return "ok" if problem is None else f"failing: {problem}"


def sightings_by_model(state: AppState) -> dict[str, Any] | None:
    """Sightings per model version and how many the current model cannot search (None if unknown)."""
    try:
        coverage = state.sync.coverage()
    except SQLAlchemyError:
        return None
    body: dict[str, Any] = {
        "by_model": coverage.by_model,
        "searchable": coverage.searchable,
        "unsearchable": coverage.unsearchable,
    }
    if coverage.unsearchable:
        body["note"] = (
            f"{coverage.unsearchable} sightings were embedded by another model version and cannot be "
            f"searched or linked by {coverage.model_version}: re-embed kept crops (reid-admin reembed) "
            "or let retention age them out"
        )
    return body


def readiness(state: AppState) -> Readiness:
    """Database (reads and writes), model and index state; an untrained model is ready with a warning."""
    database = check_database(state)
    writes = check_writes(state) if database == "ok" else "unknown (database unavailable)"
    ready = database == "ok" and writes == "ok"
    model = state.model
    index = state.sync.status()
    body: dict[str, Any] = {
        "status": "ready" if ready else "not ready",
        "database": database,
        "writes": writes,
        "model": {
            "version": model.embedder.version,
            "trained": model.trained,
            "dim": model.embedder.dim,
            "device": str(model.embedder.device),
            "runtime": model.embedder.runtime,
        },
        "indexes": asdict(index),
        "sightings": sightings_by_model(state) if database == "ok" else None,
        "maintenance": state.maintenance.as_dict(),
    }
    if database != "ok":
        body["reason"] = f"database {database}"
    elif writes != "ok":
        body["reason"] = f"database refuses writes ({writes.removeprefix('failing: ')})"
    if model.warning:
        body["warning"] = model.warning
    return Readiness(ready, body)
