"""The person-search use case: check purpose and opt-in, embed the photo, search, audit, answer."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import UploadFile

from service.access.callers import Caller
from service.common.errors import ForbiddenError, InvalidInputError
from service.common.phases import in_thread, mark_since_start
from service.common.timeparse import parse_timestamp, to_ms
from service.embedding.uploads import read_uploads
from service.search.audit import OK, REFUSED, SearchPurpose, record_search
from service.search.matching import LastSeen, Match, MatchQuery, find_matches
from service.state import AppState
from service.storage.lookups import find_owned
from service.storage.models import Zone


@dataclass(frozen=True)
class SearchRequest:
    """A person search as the caller asked for it (times still as text)."""

    case_id: str | None
    reason: str | None
    top_k: int
    since: str | None
    until: str | None
    zone_id: int | None
    min_similarity: float


@dataclass(frozen=True)
class SearchResult:
    """Ranked matches, each matched visitor's last sighting, and the model that embedded the photo."""

    model: str
    matches: list[Match]
    visitors: list[LastSeen]
    other_model_sightings: int


def purpose_of(case_id: str | None, reason: str | None) -> SearchPurpose:
    """The audited purpose of a search; one of case id and reason is required."""
    case_id, reason = (case_id or "").strip() or None, (reason or "").strip() or None
    if case_id is None and reason is None:
        raise InvalidInputError("a person search needs a case_id or a reason (it goes to the audit log)")
    return SearchPurpose(case_id, reason)


def _ms(value: str | None, name: str) -> int | None:
    return None if value is None else to_ms(parse_timestamp(value, name))


async def search_person(
    state: AppState, *, caller: Caller, image: UploadFile, request: SearchRequest
) -> SearchResult:
    """Sightings most similar to the photo; refused (and audited) unless the store enabled person search.

    Phases (``Server-Timing``): ``request`` (body, form and key check), the upload's, the embedding's,
    ``search`` and ``audit``, with the thread and event-loop waits between them.
    """
    mark_since_start("request")
    store = caller.store
    assert store is not None
    purpose = purpose_of(request.case_id, request.reason)
    audit = (state.sessions, store.id, caller.key_id, caller.key_prefix or "", purpose)
    if not store.match_enabled:
        await in_thread("audit", record_search, *audit, REFUSED)
        raise ForbiddenError(
            f"person search is not enabled for store {store.id}; the admin can enable it (PATCH /stores)"
        )
    if request.top_k > state.settings.max_top_k:
        raise InvalidInputError(f"top_k must be at most {state.settings.max_top_k}")
    since_ms, until_ms = _ms(request.since, "since"), _ms(request.until, "until")
    if since_ms is not None and until_ms is not None and since_ms >= until_ms:
        raise InvalidInputError("since must be before until")
    if request.zone_id is not None:
        await in_thread("zone-check", find_owned, state.sessions, Zone, request.zone_id, store.id)
    uploads = await read_uploads([image], state.upload_rules, field="image")
    vector = (await state.batcher.embed([uploads[0].pixels], interactive=True))[0]
    query = MatchQuery(
        store.id, vector, request.top_k, since_ms, until_ms, request.zone_id, request.min_similarity
    )

    def run():
        with state.sessions() as session:
            return find_matches(session, state.sync, query)

    found = await in_thread("search", run)
    await in_thread("audit", record_search, *audit, OK, len(found.matches), len(found.visitors))
    return SearchResult(state.model_version, found.matches, found.visitors, found.other_model_sightings)
