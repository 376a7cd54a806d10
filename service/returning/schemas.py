"""Response bodies of the returning-shoppers endpoint."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, Field


class ReturningDayOut(BaseModel):
    """One local day."""

    day: date
    start: datetime
    end: datetime
    visitors: int = Field(description="visitors seen that day (staff left out)")
    returning: int = Field(description="of them, seen on an earlier day still within retention")
    share: float


class ReturningOut(BaseModel):
    """Returning shoppers per local day: aggregate counts only, no visitor ids."""

    store_id: int
    timezone: str
    start: datetime
    end: datetime
    threshold: float = Field(
        description="the similarity two visits' crops need (the store's linking threshold)"
    )
    kept_from: datetime = Field(description="earlier days are searched back to here (REID_RETENTION_DAYS)")
    days: list[ReturningDayOut]
