"""``GET /returning``: returning shoppers per day (opt-in per store, audited)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from service.http.deps import StateDep, StoreCallerDep
from service.returning.schemas import ReturningOut
from service.returning.service import returning_report

router = APIRouter(tags=["analytics"])


@router.get("/returning", response_model=ReturningOut)
async def returning(
    state: StateDep,
    caller: StoreCallerDep,
    start: Annotated[str, Query(description="window start, timezone-aware ISO 8601 (inclusive)")],
    end: Annotated[str, Query(description="window end, timezone-aware ISO 8601 (exclusive)")],
) -> ReturningOut:
    """Per local day, how many visitors were seen on an earlier day within the retention window.

    This links people across days by appearance, so it is off until the admin enables it for the store
    (``PATCH /stores/{id}`` with ``returning_enabled``: 403 otherwise); every report and every refusal is
    written to the store's audit log (``GET /stores/{id}/audit``). Only counts are returned.
    """
    report = await returning_report(state, caller=caller, start=start, end=end)
    return ReturningOut.model_validate(report, from_attributes=True)
