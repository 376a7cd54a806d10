"""Opening the vector store the settings name, and the folder its saved state lives in."""

from __future__ import annotations

from pathlib import Path

from service.settings import Settings
from service.vectors.base import VectorStore

BACKEND_FOLDERS = {"faiss": "", "milvus": "milvus"}


def open_vector_store(settings: Settings, dim: int, model_version: str) -> tuple[VectorStore, Path]:
    """The configured vector store and the folder its per-store state is saved under."""
    folder = settings.index_dir / BACKEND_FOLDERS[settings.vector_backend]
    if settings.vector_backend == "milvus":
        from service.vectors.milvus_store import MilvusVectorStore, collection_name

        token = settings.milvus_token.get_secret_value() if settings.milvus_token else ""
        name = collection_name(settings.milvus_collection, model_version)
        return MilvusVectorStore(settings.milvus_uri, dim, name, token=token), folder
    from service.vectors.faiss_store import FaissVectorStore

    return FaissVectorStore(dim, settings.exact_search_max, settings.ivf_nprobe), folder
