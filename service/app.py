"""The FastAPI application factory and its lifespan (database, model, batcher, indexes, maintenance)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline
from sqlalchemy import inspect
from starlette.concurrency import run_in_threadpool

from service.access.rate_limit import build_rate_limiter
from service.common.priority import BulkPool
from service.dashboard import routes as dashboard
from service.density import routes as density
from service.embedding.batcher import BatchingEmbedder
from service.embedding.model import LoadedModel, load_model
from service.extract import routes as extract
from service.flows import routes as flows
from service.health import routes as health
from service.http.errors import ERROR_RESPONSES, install_error_handlers, internal_error
from service.http.gc_pauses import PAUSES, freeze_startup_objects, thaw_startup_objects
from service.http.middleware import (
    DOCS_PATHS,
    BodyLimitMiddleware,
    InternalErrorMiddleware,
    MetricsMiddleware,
    SecurityHeadersMiddleware,
)
from service.http.openapi import with_limits
from service.ingest import routes as ingest
from service.jobs.maintenance import maintenance_loop
from service.jobs.relinking import relink_loop
from service.jobs.summaries import summary_loop
from service.occupancy import routes as occupancy
from service.privacy import routes as privacy
from service.returning import routes as returning
from service.search import routes as search
from service.settings import Settings, get_settings
from service.staff import routes as staff
from service.state import AppState
from service.storage.db import make_engine, make_session_factory
from service.storage.writes import watch_writes
from service.stores import routes as stores
from service.vectors.factory import open_vector_store
from service.vectors.folder_lock import IndexFolderLock
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
    writes = watch_writes(engine)
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
    batcher = BatchingEmbedder(
        model.embedder,
        settings.embed_batch_size,
        settings.embed_max_wait_ms / 1000,
        priority=settings.embed_priority,
        bulk_nice=settings.bulk_nice,
    )
    limiter = build_rate_limiter(settings.rate_limit_backend, settings.rate_limit_per_minute, sessions)
    bulk = BulkPool(settings.bulk_threads, settings.bulk_nice)
    return AppState(settings, engine, sessions, model, batcher, sync, limiter, bulk, writes=writes)


def create_app(settings: Settings | None = None, model: LoadedModel | None = None) -> FastAPI:
    """The service app; ``model`` lets tests share one loaded model between app instances."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        with IndexFolderLock(settings.index_dir):  # one index folder, one process
            async with serving(app):
                yield

    @asynccontextmanager
    async def serving(app: FastAPI) -> AsyncIterator[None]:
        state = await run_in_threadpool(build_state, settings, model)
        await state.batcher.start()
        app.state.services = state
        PAUSES.install()
        freeze_startup_objects()
        background = [
            asyncio.create_task(
                maintenance_loop(state.sessions, state.sync, settings, state.maintenance, state.bulk)
            ),
            asyncio.create_task(relink_loop(state)),
            asyncio.create_task(summary_loop(state)),
        ]
        try:
            yield
        finally:
            for task in background:
                task.cancel()
            for task in background:
                with suppress(asyncio.CancelledError):
                    await task
            await state.batcher.stop()
            await run_in_threadpool(state.bulk.shutdown)
            await run_in_threadpool(state.sync.save)
            thaw_startup_objects()
            state.engine.dispose()

    app = FastAPIOffline(  # /docs and /redoc load Swagger UI and ReDoc from the package, not a CDN
        title="RGA re-id retail service",
        version="0.1.0",
        summary="Ingest person sightings, link them into visitors, find people, report density per zone.",
        lifespan=lifespan,
    )
    app.openapi = with_limits(app.openapi, settings)  # type: ignore[method-assign]
    for module in (health, dashboard):
        app.include_router(module.router)
    for module in (stores, extract, ingest, search, density, flows, occupancy, returning, staff, privacy):
        app.include_router(module.router, responses=ERROR_RESPONSES)
    # Innermost: an unforeseen error becomes a JSON 500 that keeps the connection open.
    app.add_middleware(InternalErrorMiddleware, handler=internal_error)
    app.add_middleware(BodyLimitMiddleware, limit=settings.max_upload_bytes)
    app.add_middleware(MetricsMiddleware, server_timing=settings.server_timing)
    app.add_middleware(SecurityHeadersMiddleware, docs_paths=DOCS_PATHS)  # outermost: on every answer
    install_error_handlers(app)
    return app
