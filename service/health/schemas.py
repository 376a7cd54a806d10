"""Response bodies of the health endpoints, as documented in the OpenAPI schema."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field


class ModelStatusOut(BaseModel):
    """The embedding model this process serves."""

    model_config = ConfigDict(extra="allow")

    version: str
    trained: bool = Field(description="false: an untrained network (demo only); matches are meaningless")
    dim: int
    device: str
    runtime: str


class IndexStatusOut(BaseModel):
    """What the vector indexes hold and how they were opened at start."""

    model_config = ConfigDict(extra="allow")

    stores: int
    vectors: int
    loaded_from_disk: int
    rebuilt_from_sql: int
    rebuilt_while_running: int = Field(
        0, description="store indexes rebuilt since start because they no longer matched SQL (a restore)"
    )


class MaintenanceOut(BaseModel):
    """When maintenance (retention purge, index catch-up) last ran and what it did."""

    model_config = ConfigDict(extra="allow")

    last_run: datetime | None
    last_error: str | None
    purged: dict[str, int]


class SightingsCoverageOut(BaseModel):
    """Sightings per model version, and how many the current model cannot search."""

    model_config = ConfigDict(extra="allow")

    by_model: dict[str, int]
    searchable: int
    unsearchable: int
    note: str | None = None


class ReadinessOut(BaseModel):
    """Whether this process can serve (200) or not (503), and why."""

    model_config = ConfigDict(extra="allow")

    status: str = Field(description="ready or not ready")
    database: str = Field(description="ok, or why the database cannot be reached")
    writes: str | None = Field(None, description="ok, or why the database refuses writes")
    model: ModelStatusOut
    indexes: IndexStatusOut
    sightings: SightingsCoverageOut | None = None
    maintenance: MaintenanceOut
    reason: str | None = Field(None, description="why the process is not ready")
    warning: str | None = Field(None, description="a problem that does not stop serving (an untrained model)")


class HealthOut(BaseModel):
    """The process is alive."""

    status: str
