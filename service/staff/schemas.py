"""Request and response bodies of the staff endpoints."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, Field

from service.common.ids import MAX_ID
from service.common.text import PlainText
from service.common.timeparse import as_utc

UtcDatetime = Annotated[datetime, AfterValidator(as_utc)]


class StaffOut(BaseModel):
    """A staff member: left out of density, flows, occupancy and returning shoppers."""

    id: int
    name: str
    source: str = Field(description="photos (enrolled from photos) or visitor (a visitor was marked)")
    created_at: UtcDatetime
    enrolled: int = Field(description="embeddings the enrolment averages (photos or the visitor's crops)")
    model_version: str = Field(description="the model that embedded them; after a model change, enrol again")
    visitor_ids: list[int] = Field(
        description="visitors flagged as this member (erase them with DELETE /visitors)"
    )


class StaffRename(BaseModel):
    """A staff member's new name."""

    name: PlainText = Field(min_length=1, max_length=200)


class MarkStaffIn(BaseModel):
    """Mark a visitor as staff: a new member by ``name``, or one more enrolment of ``staff_id``."""

    name: PlainText | None = Field(None, min_length=1, max_length=200)
    staff_id: int | None = Field(None, ge=1, le=MAX_ID)


class StaffRemovedOut(BaseModel):
    """A removed staff member."""

    staff_id: int
    visitors_counted_again: int
