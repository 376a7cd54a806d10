"""File names of a store's exported crops (``reid-admin export-crops``), read back by ``reid-train adapt``.

A name says which camera took the crop and when, and nothing about who is on it:
``cam<camera id>_<UTC capture time, YYYYmmddTHHMMSS.fffZ>_<n>.png`` where ``n`` tells apart crops of
one camera taken in the same millisecond. No sighting, visitor or track id is written.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

EXPORT_SUFFIX = ".png"
TIME_FORMAT = "%Y%m%dT%H%M%S"
EXPORT_NAME = re.compile(r"^cam(\d+)_(\d{8}T\d{6})\.(\d{3})Z_(\d+)$")


@dataclass(frozen=True)
class ExportedCrop:
    """What an exported crop's name says: the camera and the capture time (UTC)."""

    camera: int
    captured_at: datetime


def export_name(camera: int, captured_at: datetime, n: int = 0) -> str:
    """The file name of the ``n``-th crop ``camera`` took at ``captured_at`` (to the millisecond)."""
    if camera < 0 or n < 0:
        raise ValueError("camera and n must be non-negative")
    when = captured_at.astimezone(UTC) if captured_at.tzinfo else captured_at.replace(tzinfo=UTC)
    return f"cam{camera}_{when.strftime(TIME_FORMAT)}.{when.microsecond // 1000:03d}Z_{n}{EXPORT_SUFFIX}"


def parse_export_name(path: str | Path) -> ExportedCrop | None:
    """The camera and capture time of an exported crop's file name, or None when it is not one."""
    match = EXPORT_NAME.match(Path(path).stem)
    if match is None:
        return None
    camera, stamp, millis, _ = match.groups()
    when = datetime.strptime(stamp, TIME_FORMAT).replace(tzinfo=UTC, microsecond=int(millis) * 1000)
    return ExportedCrop(int(camera), when)
