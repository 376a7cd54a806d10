"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool

from service.api.deps import StateDep

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> dict:
    """The process is alive."""
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(state: StateDep) -> JSONResponse:
    """Database reachable, model loaded, indexes built; 503 otherwise. Untrained model: 200 with a warning."""

    def database_ok() -> str:
        try:
            with state.engine.connect() as connection:
                connection.execute(text("SELECT 1"))
        except SQLAlchemyError as exc:
            return f"unavailable ({type(exc).__name__})"
        return "ok"

    database = await run_in_threadpool(database_ok)
    model = state.model
    body = {
        "status": "ready" if database == "ok" else "not ready",
        "database": database,
        "model": {
            "version": model.embedder.version,
            "trained": model.trained,
            "dim": model.embedder.dim,
            "device": str(model.embedder.device),
            "runtime": model.embedder.runtime,
        },
        "indexes": {
            "stores": len(state.sync.watermarks),
            "vectors": state.vectors.size(),
            "loaded_from_disk": state.sync.started["loaded"],
            "rebuilt_from_sql": state.sync.started["rebuilt"],
        },
        "maintenance": state.maintenance.as_dict(),
    }
    if database != "ok":
        body["reason"] = f"database {database}"
    if model.warning:
        body["warning"] = model.warning
    return JSONResponse(body, status_code=200 if database == "ok" else 503)


@router.get("/metrics")
def metrics() -> Response:
    """Prometheus exposition."""
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
