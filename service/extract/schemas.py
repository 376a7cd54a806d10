"""Response body of the embedding endpoint."""

from __future__ import annotations

from pydantic import BaseModel


class EmbedOut(BaseModel):
    """Embeddings of the uploaded images, in upload order."""

    model: str
    dim: int
    embeddings: list[list[float]]
