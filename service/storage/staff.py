"""Which visitors are staff: a visitor whose crops resemble an enrolled staff member's.

A staff member is kept as the sum of their enrolment embeddings (one model version) and a count; the
mean similarity between a visitor's crops and the enrolment is the dot product of the two means, the
same measure linking uses, held to the same threshold. Ingest flags a visitor when a request's crops
of it resemble a staff member (``flag_staff``); a re-linking pass, which moves sightings between
visitors, decides again for every visitor it touched (``decide_staff``). Shared by ingest, re-linking
and the staff use case; flags are written under the store's row lock by those callers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from service.storage.models import StaffMember, Visitor

VECTOR = np.float32


@dataclass(frozen=True)
class StaffPrototypes:
    """The mean enrolment embedding of each staff member of a store (current model version)."""

    ids: list[int]
    means: np.ndarray  # (members, dim)

    def best(self, mean: np.ndarray, threshold: float) -> int | None:
        """The staff member whose enrolment the mean resembles most, at or above the threshold."""
        if not self.ids:
            return None
        scores = self.means @ mean.astype(VECTOR)
        best = int(np.argmax(scores))
        return self.ids[best] if float(scores[best]) >= threshold else None


def vector(blob: bytes) -> np.ndarray:
    """A float32 embedding from its bytes."""
    return np.frombuffer(blob, dtype=VECTOR)


def staff_prototypes(session: Session, store_id: int, model_version: str) -> StaffPrototypes:
    """The store's staff enrolled with ``model_version`` (others cannot be compared)."""
    rows = session.execute(
        select(StaffMember.id, StaffMember.prototype, StaffMember.enrolled)
        .where(StaffMember.store_id == store_id, StaffMember.model_version == model_version)
        .order_by(StaffMember.id)
    ).all()
    if not rows:
        return StaffPrototypes([], np.zeros((0, 0), dtype=VECTOR))
    means = np.stack([vector(blob) / max(count, 1) for _, blob, count in rows]).astype(VECTOR)
    return StaffPrototypes([int(r.id) for r in rows], means)


def flag_staff(
    session: Session,
    store_id: int,
    means: dict[int, np.ndarray],
    threshold: float,
    model_version: str,
) -> dict[int, int]:
    """Flag the visitors not yet staff whose given mean crop resembles a staff member; returns the flags
    set (visitor -> staff member)."""
    prototypes = staff_prototypes(session, store_id, model_version)
    if not prototypes.ids or not means:
        return {}
    flagged = {}
    for visitor, mean in means.items():
        member = prototypes.best(mean, threshold)
        if member is not None:
            flagged[visitor] = member
            session.execute(
                update(Visitor)
                .where(Visitor.id == visitor, Visitor.store_id == store_id, Visitor.staff_id.is_(None))
                .values(staff_id=member)
            )
    return flagged


def decide_staff(
    session: Session,
    store_id: int,
    means: dict[int, np.ndarray],
    threshold: float,
    model_version: str,
) -> None:
    """Set or clear the staff flag of each given visitor from its mean crop (after re-linking)."""
    if not means:
        return
    prototypes = staff_prototypes(session, store_id, model_version)
    for visitor, mean in means.items():
        member = prototypes.best(mean, threshold)
        session.execute(
            update(Visitor)
            .where(
                Visitor.id == visitor, Visitor.store_id == store_id, Visitor.staff_id.is_distinct_from(member)
            )
            .values(staff_id=member)
        )
