"""The embedding use case: decode the uploads, embed them in the shared batches, store nothing."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import UploadFile

from service.embedding.uploads import read_uploads
from service.state import AppState


@dataclass(frozen=True)
class Embeddings:
    """The model's version, its dimension, and one vector per image in upload order."""

    model: str
    dim: int
    embeddings: list[list[float]]


async def embed_uploads(state: AppState, *, images: list[UploadFile]) -> Embeddings:
    """L2-normalised embeddings of 1..max uploaded crops."""
    uploads = await read_uploads(images, state.upload_rules)
    # one image is someone waiting on an answer; several are a bulk job (behind search, ahead of nothing)
    vectors = await state.batcher.embed([upload.pixels for upload in uploads], interactive=len(uploads) == 1)
    return Embeddings(state.model_version, int(vectors.shape[1]), vectors.tolist())
