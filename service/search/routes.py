"""``POST /match``: find a person across the store from one photo (opt-in per store, audited)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form

from service.common.ids import MAX_ID
from service.common.text import FreeText, PlainText
from service.http.deps import StateDep, StoreCallerDep
from service.http.errors import MULTIPART_RESPONSES
from service.http.forms import UploadedFile
from service.search.schemas import MatchesOut
from service.search.service import SearchRequest, search_person

router = APIRouter(tags=["matching"])


@router.post("/match", response_model=MatchesOut, responses=MULTIPART_RESPONSES)
async def match(
    state: StateDep,
    caller: StoreCallerDep,
    image: Annotated[UploadedFile, File(description="a photo of the person: JPEG, PNG or BMP")],
    case_id: Annotated[
        PlainText | None, Form(max_length=100, description="the case this search is for")
    ] = None,
    reason: Annotated[
        FreeText | None, Form(max_length=500, description="why, when there is no case id")
    ] = None,
    top_k: Annotated[int, Form(ge=1, description="most sightings returned (at most REID_MAX_TOP_K)")] = 10,
    since: Annotated[str | None, Form(description="ISO 8601 with offset (inclusive)")] = None,
    until: Annotated[str | None, Form(description="ISO 8601 with offset (exclusive)")] = None,
    zone_id: Annotated[int | None, Form(ge=1, le=MAX_ID)] = None,
    min_similarity: Annotated[
        float, Form(ge=-1.0, le=1.0, description="leave out sightings less similar than this (cosine)")
    ] = -1.0,
) -> MatchesOut:
    """Sightings most similar to the photo (optionally within [since, until) and one zone), best first.

    Only for stores where the admin enabled person search (403 otherwise); every call is audited.
    """
    request = SearchRequest(case_id, reason, top_k, since, until, zone_id, min_similarity)
    result = await search_person(state, caller=caller, image=image, request=request)
    return MatchesOut.model_validate(result, from_attributes=True)
