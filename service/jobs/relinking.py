"""The periodic re-linking pass: every store's recent window, every ``REID_RELINK_INTERVAL_S`` seconds."""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy import select

from service.ingest.service import relink, relink_context
from service.metrics import RELINKED
from service.state import AppState
from service.storage.models import Store

log = logging.getLogger(__name__)


def relink_all(state: AppState) -> int:
    """One pass over every store; returns how many sightings moved. A failing store is logged, not fatal."""
    with state.sessions() as session:
        store_ids = list(session.scalars(select(Store.id).order_by(Store.id)))
    moved = 0
    for store_id in store_ids:
        try:
            result = relink(relink_context(state), store_id=store_id)
        except Exception:
            log.warning("re-linking store %d failed; retrying next pass", store_id, exc_info=True)
            continue
        moved += result.moved
        RELINKED.inc(result.moved)
        if result.moved:
            log.info(
                "re-linked store %d: %d sightings moved (%d merges, %d splits), %d -> %d visitors",
                store_id,
                result.moved,
                result.merges,
                result.splits,
                result.visitors_before,
                result.visitors_after,
            )
    return moved


async def relink_loop(state: AppState) -> None:
    """Re-link every store (on a bulk thread) every interval, until cancelled (off when the interval is 0)."""
    interval = state.settings.relink_interval_s
    if interval <= 0:
        return
    while True:
        await asyncio.sleep(interval)
        await state.bulk.run(relink_all, state)
