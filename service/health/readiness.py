"""Whether this process can serve: database reachable, model loaded, indexes built, maintenance state."""

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


def readiness(state: AppState) -> Readiness:
    """Database, model and index state; an untrained model is ready but flagged with a warning."""
    database = check_database(state)
    model = state.model
    index = state.sync.status()
    body: dict[str, Any] = {
        "status": "ready" if database == "ok" else "not ready",
        "database": database,
        "model": {
            "version": model.embedder.version,
            "trained": model.trained,
            "dim": model.embedder.dim,
            "device": str(model.embedder.device),
            "runtime": model.embedder.runtime,
        },
        "indexes": asdict(index),
        "maintenance": state.maintenance.as_dict(),
    }
    if database != "ok":
        body["reason"] = f"database {database}"
    if model.warning:
        body["warning"] = model.warning
    return Readiness(database == "ok", body)
