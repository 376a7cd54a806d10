"""Service settings, read from the environment (prefix ``REID_``) and an optional ``.env`` file."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Every knob of the service; see README's settings table."""

    model_config = SettingsConfigDict(env_prefix="REID_", env_file=".env", extra="ignore")

    database_url: str = "sqlite:///./data/reid.db"
    model_dir: Path = Path("./exports/current")
    index_dir: Path = Path("./data/indexes")
    admin_key: SecretStr | None = None
    admin_key_file: Path = Path("./data/admin_key")
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    device: str = "auto"
    runtime: str = "auto"
    untrained_backbone: str = "resnet50"

    match_threshold: float = Field(0.75, ge=-1.0, le=1.0)
    visitor_window_s: float = Field(4 * 3600.0, gt=0)
    retention_days: int = Field(30, ge=1, le=36500)
    audit_retention_days: int = Field(365, ge=1, le=36500)
    maintenance_interval_s: float = Field(3600.0, gt=0)
    store_crops: bool = False
    max_clock_skew_s: float = Field(600.0, ge=0)

    max_images_per_request: int = Field(32, ge=1)
    max_upload_bytes: int = Field(16 * 1024 * 1024, ge=1024)
    max_top_k: int = Field(100, ge=1)
    rate_limit_per_minute: int = Field(600, ge=0)
    rate_limit_backend: Literal["memory", "database"] = "memory"

    embed_batch_size: int = Field(32, ge=1)
    embed_max_wait_ms: float = Field(5.0, ge=0)

    density_gap_s: float = Field(300.0, gt=0)
    density_max_buckets: int = Field(1000, ge=1)

    exact_search_max: int = Field(200_000, ge=1)
    ivf_nprobe: int = Field(16, ge=1)

    vector_backend: Literal["faiss", "milvus"] = "faiss"
    milvus_uri: str = "./data/milvus.db"
    milvus_token: SecretStr | None = None
    milvus_collection: str = "sightings"

    @field_validator("admin_key", "milvus_token", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        """An empty variable (as in a copied .env.example) means the secret is not set."""
        return None if value == "" else value


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings (cached)."""
    return Settings()
