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
    log_level: Literal["critical", "error", "warning", "info", "debug"] = "info"
    max_header_bytes: int = Field(16 * 1024, ge=1024)  # request line and headers, per request
    header_timeout_s: float = Field(10.0, gt=0)  # to send a request's line and headers
    device: str = "auto"
    runtime: Literal["auto", "torchscript", "onnx", "onnx-int8"] = "auto"  # onnx-int8: export --int8
    untrained_backbone: str = "resnet50"

    match_threshold: float = Field(0.55, ge=-1.0, le=1.0)
    linking: Literal["prototype", "nearest"] = "prototype"
    visitor_window_s: float = Field(4 * 3600.0, gt=0)
    track_gap_s: float = Field(120.0, gt=0)
    min_transit_s: float = Field(2.0, ge=0)
    link_time_penalty: float = Field(0.2, ge=0, le=10)
    link_time_grace_s: float = Field(3600.0, ge=0)
    relink_interval_s: float = Field(300.0, ge=0)
    relink_max_sightings: int = Field(20_000, ge=1)
    link_optimistic_attempts: int = Field(3, ge=0)  # decide on reads, then a short write; 0: under the lock
    retention_days: int = Field(30, ge=1, le=36500)
    audit_retention_days: int = Field(365, ge=1, le=36500)
    maintenance_interval_s: float = Field(3600.0, gt=0)
    store_crops: bool = False
    max_clock_skew_s: float = Field(600.0, ge=0)

    max_images_per_request: int = Field(32, ge=1)
    max_upload_bytes: int = Field(16 * 1024 * 1024, ge=1024)
    image_max_side: int = Field(4096, ge=0)  # 0: no limit beyond the 16-megapixel one
    image_max_aspect: float = Field(8.0, ge=0)  # longest side over shortest; 0: no limit
    decode_memory_mb: int = Field(128, ge=0)  # image decoding under way at once, per process; 0: no limit
    max_top_k: int = Field(100, ge=10)  # at least /match's default top_k
    dashboard_min_similarity: float = Field(0.5, ge=-1.0, le=1.0)
    rate_limit_per_minute: int = Field(600, ge=0)
    rate_limit_backend: Literal["memory", "database"] = "memory"

    embed_batch_size: int = Field(32, ge=1)
    embed_max_wait_ms: float = Field(5.0, ge=0)
    embed_priority: bool = True  # search photos and single-image /embed go ahead of ingest's crops
    bulk_nice: int = Field(10, ge=0, le=19)  # bulk threads (ingest, jobs) run this much nicer than searches
    bulk_threads: int = Field(16, ge=1, le=256)  # ingest linking and background jobs; waiting turns hold one

    density_gap_s: float = Field(300.0, gt=0)
    density_max_buckets: int = Field(1000, ge=1)
    store_visit_gap_s: float = Field(1800.0, gt=0)  # /flows: unseen this long, a visitor has left
    occupancy_poll_s: float = Field(1.0, gt=0)  # live occupancy: how often the database is checked
    occupancy_heartbeat_s: float = Field(15.0, gt=0)
    occupancy_stream_max_s: float = Field(900.0, gt=0)  # then the client reconnects (key checked again)
    occupancy_max_streams: int = Field(1000, ge=1)  # open live streams per process
    returning_max_days: int = Field(31, ge=1, le=366)

    exact_search_max: int = Field(200_000, ge=1)
    ivf_nprobe: int = Field(16, ge=1)
    metrics_per_store: bool = False
    server_timing: bool = True  # a Server-Timing header on each answer: where its time went, per phase

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
