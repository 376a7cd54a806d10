"""The FastAPI application factory and its lifespan (database, model, batcher, indexes, maintenance)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress

from fastapi import FastAPI
from sqlalchemy import inspect
from starlette.concurrency import run_in_threadpool

from service.access.rate_limit import build_rate_limiter
from service.dashboard import routes as dashboard
from service.density import routes as density
from service.embedding.batcher import BatchingEmbedder
from service.embedding.model import LoadedModel, load_model
from service.extract import routes as extract
from service.health import routes as health
from service.http.errors import ERROR_RESPONSES, install_error_handlers
from service.http.middleware import BodyLimitMiddleware, MetricsMiddleware
from service.ingest import routes as ingest
from service.privacy import routes as privacy
from service.privacy.maintenance import maintenance_loop
from service.search import routes as search
from service.settings import Settings, get_settings
from service.state import AppState
from service.storage.db import make_engine, make_session_factory
from service.stores import routes as stores
from service.vectors.factory import open_vector_store
from service.vectors.sync import IndexSync

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
    sync.start()
    status = sync.status()
    log.info(
        "indexes ready in %.1fs: %d stores loaded from disk, %d rebuilt, %d vectors",
        time.perf_counter() - started,
        status.loaded_from_disk,
        status.rebuilt_from_sql,
        status.vectors,
    )
    batcher = BatchingEmbedder(model.embedder, settings.embed_batch_size, settings.embed_max_wait_ms / 1000)
    limiter = build_rate_limiter(settings.rate_limit_backend, settings.rate_limit_per_minute, sessions)
    return AppState(settings, engine, sessions, model, batcher, sync, limiter)


def create_app(settings: Settings | None = None, model: LoadedModel | None = None) -> FastAPI:
    """The service app; ``model`` lets tests share one loaded model between app instances."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state = await run_in_threadpool(build_state, settings, model)
        await state.batcher.start()
        app.state.services = state
        maintenance = asyncio.create_task(
            maintenance_loop(state.sessions, state.sync, settings, state.maintenance)
        )
        try:
            yield
        finally:
            maintenance.cancel()
            with suppress(asyncio.CancelledError):
                await maintenance
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
    for module in (stores, extract, ingest, search, density, privacy):
        app.include_router(module.router, responses=ERROR_RESPONSES)
    app.add_middleware(BodyLimitMiddleware, limit=settings.max_upload_bytes)
    app.add_middleware(MetricsMiddleware)
    install_error_handlers(app)
    return app
