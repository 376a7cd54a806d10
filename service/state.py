"""Everything a running app holds: settings, database, model, batcher, vector indexes and rate limits."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from service.core.config import Settings
from service.core.rate_limit import RateLimiter
from service.embedding import BatchingEmbedder, LoadedModel
from service.index_sync import IndexSync
from service.maintenance import MaintenanceStatus
from service.shared_rate_limit import SharedRateLimiter
from service.vector_store import VectorStore


@dataclass
class AppState:
    """The services of one app instance (one per process in production)."""

    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    model: LoadedModel
    batcher: BatchingEmbedder
    vectors: VectorStore
    sync: IndexSync
    limiter: RateLimiter | SharedRateLimiter
    maintenance: MaintenanceStatus = field(default_factory=MaintenanceStatus)

    @property
    def model_version(self) -> str:
        """Version string of the embedding model."""
        return self.model.embedder.version
