"""The uploaded images of sightings, kept only while ``REID_STORE_CROPS`` or the store's ``keep_crops``
is on."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from service.common.errors import NotFoundError
from service.embedding.uploads import Upload
from service.storage.models import Sighting, SightingCrop, Store


@dataclass(frozen=True)
class Crop:
    """A kept image: its bytes and media type (sniffed at upload)."""

    data: bytes
    media_type: str


def crops_kept(session: Session, store_id: int, everywhere: bool) -> bool:
    """Whether a store's new crops are kept: ``REID_STORE_CROPS`` (``everywhere``) or the store's own flag."""
    return everywhere or bool(session.scalar(select(Store.keep_crops).where(Store.id == store_id)))


def keep_crops(session: Session, sighting_ids: Sequence[int], uploads: Sequence[Upload]) -> None:
    """Add each sighting's uploaded image to the caller's transaction."""
    session.add_all(
        SightingCrop(sighting_id=sighting_id, content_type=upload.media_type, data=upload.data)
        for sighting_id, upload in zip(sighting_ids, uploads, strict=True)
    )


def read_crop(sessions: sessionmaker[Session], *, store_id: int, sighting_id: int) -> Crop:
    """The kept image of one of the store's sightings; NotFoundError when there is none."""
    with sessions() as session:
        owner = session.scalar(select(Sighting.store_id).where(Sighting.id == sighting_id))
        if owner != store_id:
            raise NotFoundError(f"sighting {sighting_id} not found in store {store_id}")
        crop = session.get(SightingCrop, sighting_id)
    if crop is None:
        raise NotFoundError(
            f"no crop is kept for sighting {sighting_id} (only while REID_STORE_CROPS or the store's "
            "keep_crops is on)"
        )
    return Crop(crop.data, crop.content_type)
