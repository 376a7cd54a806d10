"""``POST /embed``: embeddings of uploaded crops, for any valid key."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, UploadFile

from service.api.deps import AnyKeyDep, StateDep
from service.api.uploads import read_images
from service.schemas import EmbedOut

router = APIRouter(tags=["embedding"])


@router.post("/embed", response_model=EmbedOut)
async def embed(state: StateDep, _: AnyKeyDep, images: Annotated[list[UploadFile], File()]) -> EmbedOut:
    """Embed 1..max images (JPEG, PNG or BMP person crops)."""
    arrays = await read_images(state, images)
    vectors = await state.batcher.embed(arrays)
    return EmbedOut(model=state.model_version, dim=vectors.shape[1], embeddings=vectors.tolist())
