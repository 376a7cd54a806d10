"""``/healthz``, ``/readyz`` and ``/metrics`` (no key needed)."""

from __future__ import annotations

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.concurrency import run_in_threadpool

from service.health.readiness import readiness
from service.http.deps import StateDep

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> dict:
    """The process is alive."""
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(state: StateDep) -> JSONResponse:
    """Database reachable, model loaded, indexes built; 503 otherwise. Untrained model: 200 with a warning."""
    report = await run_in_threadpool(readiness, state)
    return JSONResponse(report.body, status_code=200 if report.ready else 503)


@router.get("/metrics")
def metrics() -> Response:
    """Prometheus exposition."""
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
