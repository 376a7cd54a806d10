"""Response bodies of the density endpoint."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


class DensityBucketOut(BaseModel):
    """Density of one zone in one bucket."""

    start: datetime
    end: datetime
    unique_visitors: int
    sightings: int
    entries: int
    mean_dwell_s: float | None
    occupancy_mean: float
    occupancy_max: int


class DensityTotalsOut(BaseModel):
    """Density of one zone over the whole window (unique visitors are not a sum over buckets)."""

    unique_visitors: int
    sightings: int
    entries: int
    mean_dwell_s: float | None
    occupancy_mean: float
    occupancy_max: int


class ZoneDensityOut(BaseModel):
    """A zone's buckets and totals."""

    zone_id: int
    name: str
    buckets: list[DensityBucketOut]
    totals: DensityTotalsOut


class DensityOut(BaseModel):
    """Density per zone for a store."""

    store_id: int
    timezone: str
    start: datetime
    end: datetime
    bucket_s: float
    gap_s: float
    include_staff: bool = Field(False, description="whether staff were counted (left out by default)")
    zones: list[ZoneDensityOut]
