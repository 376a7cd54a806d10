"""Exporting a store's kept crops for unsupervised adaptation (``reid-admin export-crops``).

Consent is built in: only a store whose admin turned crop keeping on (``PATCH /stores/{id}``
``{"keep_crops": true}``) can be exported; any other store is refused. Every run, refused or not, is
audited (``crop_exports``: store, window, who ran it, outcome, count), and the row is committed before
a single file is written.

The export writes no identity: each crop is decoded and written again as a PNG, so no metadata of the
uploaded file survives, under a name that carries only its camera and capture time
(``model.crop_export``); no sighting, visitor or track id is written, and there is no manifest.
The folder still shows people: keep it on the training machine and delete it after adaptation.
"""

from __future__ import annotations

import getpass
import io
import socket
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from PIL import Image
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from model import ImageDecodeError, load_image
from model.crop_export import export_name
from service.common.errors import ForbiddenError, InvalidInputError
from service.common.timeparse import to_ms
from service.storage.db import session_scope
from service.storage.lookups import get_store
from service.storage.models import CropExport, Sighting, SightingCrop

OK = "ok"
REFUSED = "refused"
BATCH = 256
MAX_REQUESTER = 200


@dataclass(frozen=True)
class ExportResult:
    """What an export wrote: the store, the capture window, the folder and its crops (and any skipped)."""

    store_id: int
    since: datetime
    until: datetime
    folder: Path
    crops: int
    undecodable: int


def requester() -> str:
    """Who runs the export, for the audit row: the operating-system user and host."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"{user}@{socket.gethostname()}"[:MAX_REQUESTER]


def _check_folder(out: Path) -> None:
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise InvalidInputError(f"{out} exists and is not an empty folder; export into a new one")


def _window(store_id: int, since: datetime, until: datetime):
    return (
        Sighting.store_id == store_id,
        Sighting.captured_ms >= to_ms(since),
        Sighting.captured_ms < to_ms(until),
    )


def _audit(
    sessions: sessionmaker[Session], store_id: int, since: datetime, until: datetime, who: str
) -> tuple[bool, int]:
    """Commit the audit row (refused unless the store keeps crops); whether to go on and the crop count."""
    with session_scope(sessions) as session:
        store = get_store(session, store_id)
        allowed = bool(store.keep_crops)
        count = 0
        if allowed:
            count = session.scalar(
                select(func.count())
                .select_from(SightingCrop)
                .join(Sighting, Sighting.id == SightingCrop.sighting_id)
                .where(*_window(store_id, since, until))
            )
        session.add(
            CropExport(
                store_id=store_id,
                requested_at=datetime.now(UTC),
                requested_by=who[:MAX_REQUESTER],
                since=since,
                until=until,
                outcome=OK if allowed else REFUSED,
                crops=int(count or 0),
            )
        )
    return allowed, int(count or 0)


def _png(data: bytes) -> bytes:
    """The crop's pixels alone, as PNG: nothing of the uploaded file's metadata."""
    buffer = io.BytesIO()
    Image.fromarray(load_image(data, "crop")).save(buffer, format="PNG")
    return buffer.getvalue()


def export_crops(
    sessions: sessionmaker[Session],
    *,
    store_id: int,
    since: datetime,
    until: datetime,
    out: Path,
    requested_by: str,
    progress=None,
) -> ExportResult:
    """Write the store's kept crops captured in ``[since, until)`` to ``out`` (new or empty), audited.

    Raises NotFoundError for an unknown store, ForbiddenError (after auditing the refusal) when the
    store does not keep crops, InvalidInputError for an empty window or a folder in use.
    """
    if since >= until:
        raise InvalidInputError("--since must be before --until")
    out = Path(out)
    _check_folder(out)
    allowed, _ = _audit(sessions, store_id, since, until, requested_by)
    if not allowed:
        raise ForbiddenError(
            f"store {store_id} does not keep crops, so none can be exported; the admin turns crop "
            f'keeping on with PATCH /stores/{store_id} {{"keep_crops": true}} (crops uploaded after that '
            "are kept)"
        )
    out.mkdir(parents=True, exist_ok=True)
    written = undecodable = 0
    taken: Counter[tuple[int, int]] = Counter()
    after = (-1, -1)
    while True:
        with sessions() as session:
            rows = session.execute(
                select(
                    Sighting.captured_ms,
                    Sighting.id,
                    Sighting.camera_id,
                    Sighting.captured_at,
                    SightingCrop.data,
                )
                .join(SightingCrop, SightingCrop.sighting_id == Sighting.id)
                .where(*_window(store_id, since, until))
                .where(
                    (Sighting.captured_ms > after[0])
                    | ((Sighting.captured_ms == after[0]) & (Sighting.id > after[1]))
                )
                .order_by(Sighting.captured_ms, Sighting.id)
                .limit(BATCH)
            ).all()
        for captured_ms, sighting_id, camera_id, captured_at, data in rows:
            after = (captured_ms, sighting_id)
            try:
                image = _png(data)
            except ImageDecodeError:
                undecodable += 1
                continue
            n = taken[(camera_id, captured_ms)]
            taken[(camera_id, captured_ms)] += 1
            (out / export_name(camera_id, captured_at, n)).write_bytes(image)
            written += 1
            if progress is not None:
                progress(1)
        if len(rows) < BATCH:
            break
    return ExportResult(store_id, since, until, out, written, undecodable)
