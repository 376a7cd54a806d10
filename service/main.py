"""The FastAPI application factory and its lifespan (database, model, batcher, indexes)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy import inspect
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.concurrency import run_in_threadpool

from service.api.middleware import BodyLimitMiddleware, MetricsMiddleware
from service.api.routes import admin, dashboard, density, embed, health, match, sightings, visitors
from service.core.config import Settings, get_settings
from service.core.rate_limit import RateLimiter
from service.db import make_engine, make_session_factory
from service.embedding import BatchingEmbedder, LoadedModel, load_model
from service.index_sync import IndexSync
from service.maintenance import maintenance_loop
from service.schemas import ERROR_RESPONSES
from service.shared_rate_limit import SharedRateLimiter
from service.state import AppState
from service.vector_store import open_vector_store

DATABASE_RETRY_S = 5
log = logging.getLogger(__name__)


class NotMigratedError(RuntimeError):
    """The database has no schema yet."""


def build_state(settings: Settings, model: LoadedModel | None) -> AppState:
    """Open the database, load the model (once) and build the vector indexes from SQL or disk."""
    engine = make_engine(settings.database_url)
    if not inspect(engine).has_table("sightings"):
        engine.dispose()
        raise NotMigratedError(f"{settings.database_url}: no schema; run `reid-admin migrate` first")
    sessions = make_session_factory(engine)
    model = model or load_model(settings)
    vectors, index_dir = open_vector_store(settings, model.embedder.dim, model.embedder.version)
    sync = IndexSync(vectors, sessions, model.embedder.version, index_dir)
    started = time.perf_counter()
    counts = sync.start()
    log.info(
        "indexes ready in %.1fs: %d stores loaded from disk, %d rebuilt, %d vectors",
        time.perf_counter() - started,
        counts["loaded"],
        counts["rebuilt"],
        vectors.size(),
    )
    batcher = BatchingEmbedder(model.embedder, settings.embed_batch_size, settings.embed_max_wait_ms / 1000)
    limiter: RateLimiter | SharedRateLimiter = (
        SharedRateLimiter(sessions, settings.rate_limit_per_minute)
        if settings.rate_limit_backend == "database"
        else RateLimiter(settings.rate_limit_per_minute)
    )
    return AppState(settings, engine, sessions, model, batcher, vectors, sync, limiter)


def create_app(settings: Settings | None = None, model: LoadedModel | None = None) -> FastAPI:
    """The service app; ``model`` lets tests share one loaded model between app instances."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state = await run_in_threadpool(build_state, settings, model)
        await state.batcher.start()
        app.state.services = state
        retention = asyncio.create_task(
            maintenance_loop(state.sessions, state.sync, settings, state.maintenance)
        )
        try:
            yield
        finally:
            retention.cancel()
            with suppress(asyncio.CancelledError):
                await retention
            await state.batcher.stop()
            await run_in_threadpool(state.sync.save)
            state.engine.dispose()

    app = FastAPI(
        title="RGA re-id retail service",
        version="0.1.0",
        summary="Ingest person sightings, link them into visitors, find people, report density per zone.",
        lifespan=lifespan,
    )
    for module in (health, dashboard):
        app.include_router(module.router)
    for module in (admin, embed, sightings, match, density, visitors):
        app.include_router(module.router, responses=ERROR_RESPONSES)
    app.add_middleware(BodyLimitMiddleware, limit=settings.max_upload_bytes)
    app.add_middleware(MetricsMiddleware)

    @app.exception_handler(OperationalError)
    @app.exception_handler(InterfaceError)
    @app.exception_handler(PoolTimeoutError)
    async def database_unavailable(request: Request, exc: Exception) -> JSONResponse:
        log.warning("database unavailable on %s %s: %s", request.method, request.url.path, exc)
        return JSONResponse(
            {"detail": f"database unavailable ({type(exc).__name__}); retry in {DATABASE_RETRY_S} s"},
            status_code=503,
            headers={"Retry-After": str(DATABASE_RETRY_S)},
        )

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return JSONResponse({"detail": "internal server error"}, status_code=500)

    return app
