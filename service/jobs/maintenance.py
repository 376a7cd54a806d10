"""Periodic maintenance: retention purge in SQL and in the index, then a catch-up of every store."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

from sqlalchemy.orm import Session, sessionmaker

from service.common.priority import BulkPool
from service.common.timeparse import to_ms
from service.metrics import PURGED
from service.privacy.retention import purge_expired
from service.settings import Settings
from service.state import MaintenanceStatus
from service.vectors.sync import IndexSync

log = logging.getLogger(__name__)


def run_maintenance(
    sessions: sessionmaker[Session], sync: IndexSync, settings: Settings, status: MaintenanceStatus
) -> None:
    """One pass: purge expired rows, drop expired index shards, catch every store up; errors are recorded."""
    try:
        result = purge_expired(sessions, settings.retention_days, settings.audit_retention_days)
        dropped = sync.drop_before(to_ms(result.cutoff))
        sync.refresh_all()
    except Exception as exc:
        status.last_error = f"{type(exc).__name__}: {exc}"
        log.warning("maintenance failed; retrying in %.0f s", settings.maintenance_interval_s, exc_info=True)
        return
    status.last_run, status.last_error = datetime.now(UTC), None
    status.purged = {
        "sightings": result.sightings,
        "visitors": result.visitors,
        "audit_rows": result.audit_rows,
        "index_vectors": dropped,
    }
    for kind, count in status.purged.items():
        PURGED.labels(kind=kind).inc(count)
    if result.sightings or dropped:
        log.info("retention: purged %s (captured before %s)", status.purged, result.cutoff.date())


async def maintenance_loop(
    sessions: sessionmaker[Session],
    sync: IndexSync,
    settings: Settings,
    status: MaintenanceStatus,
    bulk: BulkPool,
) -> None:
    """Run maintenance (on a bulk thread) now and then every ``REID_MAINTENANCE_INTERVAL_S`` seconds,
    until cancelled."""
    while True:
        await bulk.run(run_maintenance, sessions, sync, settings, status)
        await asyncio.sleep(settings.maintenance_interval_s)
