"""Response bodies of the ingest and linking endpoints."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

RULES = (
    "new: no visitor was similar enough; new-refused: the best visitors were seen elsewhere at the same"
    " time; matched: joined the most similar visitor; track: continued a camera track; nearest: joined"
    " the single most similar sighting (nearest linking); relinked: moved by a re-linking pass"
)


class SightingOut(BaseModel):
    """The outcome of one posted image, and why it was linked as it was."""

    sighting_id: int
    visitor_id: int
    new_visitor: bool
    similarity: float | None = Field(
        description="similarity to the visitor it joined (mean over that visitor's recent crops); null if new"
    )
    runner_up: float | None = Field(
        None, description="the next best visitor's similarity; for a new visitor, the best candidate's"
    )
    link_rule: str = Field(description=RULES)
    track_id: str | None = Field(None, description="the camera tracker's id, when one was sent")
    captured_at: datetime


class SightingsOut(BaseModel):
    """The outcome of a batch of posted images, in upload order."""

    model: str
    sightings: list[SightingOut]


class SightingRecordOut(BaseModel):
    """A stored sighting: where and when, its visitor now, and why it was linked."""

    sighting_id: int
    visitor_id: int
    camera_id: int
    zone_id: int
    captured_at: datetime
    track_id: str | None
    similarity: float | None
    runner_up: float | None
    link_rule: str | None = Field(description=RULES + "; null for sightings stored before link rules")
    model_version: str


class RelinkIn(BaseModel):
    """The window of a re-linking pass; by default the visitor window up to now."""

    start: datetime | None = Field(None, description="window start (timezone-aware), inclusive")
    end: datetime | None = Field(None, description="window end (timezone-aware), exclusive")


class RelinkOut(BaseModel):
    """What a re-linking pass looked at and changed."""

    sightings: int
    units: int = Field(description="tracks and single crops clustered")
    moved: int = Field(description="sightings now linked to another visitor")
    merges: int
    splits: int
    visitors_before: int
    visitors_after: int
