"""``POST /embed``: embeddings of uploaded crops, for any valid key."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, UploadFile

from service.extract.schemas import EmbedOut
from service.extract.service import embed_uploads
from service.http.deps import AnyKeyDep, StateDep

router = APIRouter(tags=["embedding"])


@router.post("/embed", response_model=EmbedOut)
async def embed(state: StateDep, _: AnyKeyDep, images: Annotated[list[UploadFile], File()]) -> EmbedOut:
    """Embed 1..max images (JPEG, PNG or BMP person crops)."""
    return EmbedOut.model_validate(await embed_uploads(state, images=images), from_attributes=True)
