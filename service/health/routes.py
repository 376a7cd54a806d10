"""``/healthz``, ``/readyz`` and ``/metrics`` (no key needed)."""

from __future__ import annotations

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.concurrency import run_in_threadpool

from service.health.readiness import readiness
from service.health.schemas import HealthOut, ReadinessOut
from service.http.deps import StateDep
from service.metrics import STORE_REGISTRY

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=HealthOut)
def healthz() -> HealthOut:
    """The process is alive."""
    return HealthOut(status="ok")


@router.get(
    "/readyz",
    response_model=ReadinessOut,
    responses={503: {"model": ReadinessOut, "description": "Not ready: the database cannot be reached"}},
)
async def readyz(state: StateDep) -> JSONResponse:
    """Database reachable, model loaded, indexes built; 503 otherwise. Untrained model: 200 with a warning."""
    report = await run_in_threadpool(readiness, state)
    return JSONResponse(report.body, status_code=200 if report.ready else 503)


@router.get(
    "/metrics",
    response_class=Response,
    responses={
        200: {
            "description": "Prometheus text exposition format",
            "content": {CONTENT_TYPE_LATEST.split(";")[0]: {"schema": {"type": "string"}}},
        }
    },
)
def metrics(state: StateDep) -> Response:
    """Prometheus exposition: totals; per-store series only when ``REID_METRICS_PER_STORE`` is on."""
    body = generate_latest()
    if state.settings.metrics_per_store:
        body += generate_latest(STORE_REGISTRY)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
