"""``POST /match``: find a person across the store from one photo (opt-in per store, audited)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, HTTPException, UploadFile
from starlette.concurrency import run_in_threadpool

from service.api.deps import StateDep, StoreCallerDep, find_in_store
from service.api.uploads import read_images
from service.audit import OK, REFUSED, SearchPurpose, record_search
from service.matching import MatchQuery, find_matches
from service.models import Zone
from service.schemas import MAX_ID, LastSeenOut, MatchesOut, MatchOut
from service.timeparse import TimeParseError, parse_timestamp, to_ms

router = APIRouter(tags=["matching"])


def _ms(value: str | None, name: str) -> int | None:
    if value is None:
        return None
    try:
        return to_ms(parse_timestamp(value, name))
    except TimeParseError as exc:
        raise HTTPException(422, str(exc)) from exc


def _purpose(case_id: str | None, reason: str | None) -> SearchPurpose:
    case_id, reason = (case_id or "").strip() or None, (reason or "").strip() or None
    if case_id is None and reason is None:
        raise HTTPException(422, "a person search needs a case_id or a reason (it goes to the audit log)")
    return SearchPurpose(case_id, reason)


@router.post("/match", response_model=MatchesOut)
async def match(
    state: StateDep,
    caller: StoreCallerDep,
    image: Annotated[UploadFile, File()],
    case_id: Annotated[str | None, Form(max_length=100, description="the case this search is for")] = None,
    reason: Annotated[str | None, Form(max_length=500, description="why, when there is no case id")] = None,
    top_k: Annotated[int, Form(ge=1)] = 10,
    since: Annotated[str | None, Form()] = None,
    until: Annotated[str | None, Form()] = None,
    zone_id: Annotated[int | None, Form(ge=1, le=MAX_ID)] = None,
    min_similarity: Annotated[float, Form(ge=-1.0, le=1.0)] = -1.0,
) -> MatchesOut:
    """Sightings most similar to the photo (optionally within [since, until) and one zone), best first.

    Only for stores where the admin enabled person search (403 otherwise); every call is audited.
    """
    store = caller.store
    purpose = _purpose(case_id, reason)
    audit = (state.sessions, store.id, caller.key_id, caller.key_prefix or "", purpose)
    if not store.match_enabled:
        await run_in_threadpool(record_search, *audit, REFUSED)
        raise HTTPException(
            403, f"person search is not enabled for store {store.id}; the admin can enable it (PATCH /stores)"
        )
    if top_k > state.settings.max_top_k:
        raise HTTPException(422, f"top_k must be at most {state.settings.max_top_k}")
    since_ms, until_ms = _ms(since, "since"), _ms(until, "until")
    if since_ms is not None and until_ms is not None and since_ms >= until_ms:
        raise HTTPException(422, "since must be before until")
    if zone_id is not None:
        await run_in_threadpool(find_in_store, state, Zone, zone_id, store)
    arrays = await read_images(state, [image], field="image")
    vector = (await state.batcher.embed(arrays))[0]
    query = MatchQuery(store.id, vector, top_k, since_ms, until_ms, zone_id, min_similarity)

    def run() -> tuple[list[dict], list[dict]]:
        with state.sessions() as search_session:
            return find_matches(search_session, state.sync, query)

    matches, visitors = await run_in_threadpool(run)
    await run_in_threadpool(record_search, *audit, OK, len(matches), len(visitors))
    return MatchesOut(
        model=state.model_version,
        matches=[MatchOut(**m) for m in matches],
        visitors=[LastSeenOut(**v) for v in visitors],
    )
