"""``DELETE /visitors/{id}``: erase a visitor, their sightings, crops and vectors (on every replica)."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool

from service.http.deps import BigIdPath, StateDep, StoreDep
from service.privacy.erasure import erase_visitor
from service.privacy.schemas import VisitorDeleted

router = APIRouter(tags=["visitors"])


@router.delete("/visitors/{visitor_id}", response_model=VisitorDeleted)
async def delete_visitor(visitor_id: BigIdPath, state: StateDep, store: StoreDep) -> VisitorDeleted:
    """Erase the visitor (404 if not in the caller's store); tombstones tell the other replicas' indexes."""
    ids = await run_in_threadpool(erase_visitor, state, store_id=store.id, visitor_id=visitor_id)
    return VisitorDeleted(visitor_id=visitor_id, sightings_deleted=len(ids))
