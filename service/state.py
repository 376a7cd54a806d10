"""Everything a running app holds: settings, database, model, batcher, indexes, limits and locks."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from service.access.callers import KeyCheck
from service.access.rate_limit import RateLimiter
from service.common.priority import BulkPool
from service.embedding.batcher import BatchingEmbedder
from service.embedding.model import LoadedModel
from service.embedding.uploads import UploadRules
from service.settings import Settings
from service.storage.locks import StoreWriteQueue
from service.storage.writes import WriteHealth
from service.vectors.sync import IndexSync


@dataclass
class MaintenanceStatus:
    """When maintenance last ran, what it purged, and its last error (shown by ``/readyz``)."""

    last_run: datetime | None = None
    last_error: str | None = None
    purged: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict:
        """JSON-ready view."""
        return {
            "last_run": self.last_run.isoformat() if self.last_run else None,
            "last_error": self.last_error,
            "purged": self.purged,
        }


@dataclass
class AppState:
    """The services of one app instance (one per process in production)."""

    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    model: LoadedModel
    batcher: BatchingEmbedder
    sync: IndexSync
    limiter: RateLimiter
    bulk: BulkPool
    writers: StoreWriteQueue = field(default_factory=StoreWriteQueue)
    writes: WriteHealth = field(default_factory=WriteHealth)
    maintenance: MaintenanceStatus = field(default_factory=MaintenanceStatus)

    @property
    def model_version(self) -> str:
        """Version string of the embedding model."""
        return self.model.embedder.version

    @property
    def key_check(self) -> KeyCheck:
        """What authentication needs from this app."""
        admin = self.settings.admin_key
        return KeyCheck(
            admin.get_secret_value() if admin is not None else None,
            self.sessions,
            self.limiter,
            self.settings.rate_limit_per_minute,
        )

    @property
    def upload_rules(self) -> UploadRules:
        """How uploads are checked, decoded (within the process's decoding budget) and sized for the model."""
        return UploadRules.from_settings(self.settings, self.model.embedder.input_size)
