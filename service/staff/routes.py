"""``/staff``: the store's staff, enrolled from photos or by marking a visitor (store key; audited)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form

from service.common.text import PlainText
from service.http.deps import BigIdPath, IdPath, StateDep, StoreCallerDep
from service.http.errors import MULTIPART_RESPONSES
from service.http.forms import UploadedFile
from service.staff.schemas import MarkStaffIn, StaffOut, StaffRemovedOut, StaffRename
from service.staff.service import (
    enrol_from_photos,
    list_staff,
    mark_visitor_as_staff,
    remove_staff,
    rename_staff,
)

router = APIRouter(tags=["staff"])


@router.get("/staff", response_model=list[StaffOut])
async def get_staff(state: StateDep, caller: StoreCallerDep) -> list[StaffOut]:
    """The store's staff and the visitors flagged as each (left out of the counts)."""
    members = await list_staff(state, caller=caller)
    return [StaffOut.model_validate(m, from_attributes=True) for m in members]


@router.post("/staff", status_code=201, response_model=StaffOut, responses=MULTIPART_RESPONSES)
async def post_staff(
    state: StateDep,
    caller: StoreCallerDep,
    name: Annotated[PlainText, Form(min_length=1, max_length=200, description="unique within the store")],
    images: Annotated[list[UploadedFile], File(description="photos of the person: JPEG, PNG or BMP")],
) -> StaffOut:
    """Enrol a staff member from photos. Only their embeddings are kept (the photos too when
    ``REID_STORE_CROPS`` is on); visitors who resemble them are flagged now and as they are seen."""
    member = await enrol_from_photos(state, caller=caller, name=name, images=images)
    return StaffOut.model_validate(member, from_attributes=True)


@router.post("/visitors/{visitor_id}/staff", status_code=201, response_model=StaffOut)
async def mark_staff(
    visitor_id: BigIdPath, body: MarkStaffIn, state: StateDep, caller: StoreCallerDep
) -> StaffOut:
    """Mark a visitor as staff: ``name`` enrols a new member from the visitor's crops, ``staff_id`` adds
    them to an existing member's enrolment."""
    member = await mark_visitor_as_staff(
        state, caller=caller, visitor_id=visitor_id, name=body.name, staff_id=body.staff_id
    )
    return StaffOut.model_validate(member, from_attributes=True)


@router.patch("/staff/{staff_id}", response_model=StaffOut)
async def patch_staff(
    staff_id: IdPath, body: StaffRename, state: StateDep, caller: StoreCallerDep
) -> StaffOut:
    """Rename a staff member."""
    member = await rename_staff(state, caller=caller, staff_id=staff_id, name=body.name)
    return StaffOut.model_validate(member, from_attributes=True)


@router.delete("/staff/{staff_id}", response_model=StaffRemovedOut)
async def delete_staff(staff_id: IdPath, state: StateDep, caller: StoreCallerDep) -> StaffRemovedOut:
    """Delete a staff member's enrolment and kept photos; their visitors count again. (To erase the
    person's sightings too, erase each of their visitors with ``DELETE /visitors/{id}`` first.)"""
    removed = await remove_staff(state, caller=caller, staff_id=staff_id)
    return StaffRemovedOut.model_validate(removed, from_attributes=True)
