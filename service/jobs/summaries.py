"""Keeping the density summary warm: every ``REID_MAINTENANCE_INTERVAL_S`` (first a minute after start),
each store's whole local days before today, back over the retention window (two months at most), are
computed in the background where the summary lacks them or a change marked them, so that a month view
seldom waits for them. A failing store is logged and tried again next time."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select

from service.density.service import density_zones
from service.state import AppState
from service.storage.models import Store

START_DELAY_S = 60.0
MAX_DAYS = 62
log = logging.getLogger(__name__)


def warm_summaries(state: AppState) -> int:
    """Fill the summary of every store's recent whole days; returns how many stores were done."""
    with state.sessions() as session:
        stores = list(session.scalars(select(Store).order_by(Store.id)))
    days = min(state.settings.retention_days, MAX_DAYS)
    done = 0
    for store in stores:
        tz = ZoneInfo(store.timezone)
        today = datetime.now(tz).date()
        end = datetime.combine(today, time(0), tzinfo=tz)
        start = datetime.combine(today - timedelta(days=days), time(0), tzinfo=tz)
        try:
            density_zones(state.sessions, state.settings, store=store, start=start, end=end, bucket_s=86400)
        except Exception:
            log.warning(
                "density summary of store %d: warming failed; trying again later", store.id, exc_info=True
            )
            continue
        done += 1
    return done


async def summary_loop(state: AppState, start_delay_s: float = START_DELAY_S) -> None:
    """Warm the summaries a while after start, then every maintenance interval, until cancelled."""
    await asyncio.sleep(start_delay_s)
    while True:
        await state.bulk.run(warm_summaries, state)
        await asyncio.sleep(state.settings.maintenance_interval_s)
