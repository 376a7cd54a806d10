"""``DELETE /visitors/{id}``: erase a visitor, their sightings, crops and vectors (on every replica)."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, HTTPException
from sqlalchemy import delete, insert, select
from starlette.concurrency import run_in_threadpool

from service.api.deps import BigIdPath, StateDep, StoreDep
from service.db import session_scope
from service.linking import lock_store
from service.models import DeletedSighting, Sighting, Visitor
from service.schemas import VisitorDeleted

router = APIRouter(tags=["visitors"])


@router.delete("/visitors/{visitor_id}", response_model=VisitorDeleted)
async def delete_visitor(visitor_id: BigIdPath, state: StateDep, store: StoreDep) -> VisitorDeleted:
    """Erase the visitor (404 if not in the caller's store); tombstones tell the other replicas' indexes."""

    def run() -> list[int]:
        with state.sync.writer(store.id), session_scope(state.sessions) as session:
            lock_store(session, store.id)
            visitor = session.get(Visitor, visitor_id)
            if visitor is None or visitor.store_id != store.id:
                raise HTTPException(404, f"visitor {visitor_id} not found in store {store.id}")
            ids = list(session.scalars(select(Sighting.id).where(Sighting.visitor_id == visitor_id)))
            if ids:
                now = datetime.now(UTC)
                tombstones = [{"store_id": store.id, "sighting_id": i, "deleted_at": now} for i in ids]
                session.execute(insert(DeletedSighting), tombstones)
            session.execute(delete(Sighting).where(Sighting.visitor_id == visitor_id))
            session.execute(delete(Visitor).where(Visitor.id == visitor_id))
        state.sync.remove(store.id, ids)
        return ids

    ids = await run_in_threadpool(run)
    return VisitorDeleted(visitor_id=visitor_id, sightings_deleted=len(ids))
