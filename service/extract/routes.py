"""``POST /embed``: embeddings of uploaded crops, for any valid key."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File

from service.extract.schemas import EmbedOut
from service.extract.service import embed_uploads
from service.http.deps import AnyKeyDep, StateDep
from service.http.errors import MULTIPART_RESPONSES
from service.http.forms import UploadedFile

router = APIRouter(tags=["embedding"])


@router.post("/embed", response_model=EmbedOut, responses=MULTIPART_RESPONSES)
async def embed(state: StateDep, _: AnyKeyDep, images: Annotated[list[UploadedFile], File()]) -> EmbedOut:
    """Embed 1..max images (JPEG, PNG or BMP person crops)."""
    return EmbedOut.model_validate(await embed_uploads(state, images=images), from_attributes=True)
