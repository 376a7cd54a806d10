"""ISO 8601 timestamps and durations from request parameters, and epoch-millisecond conversions.

Every value a caller sends is checked here before any arithmetic: a timestamp must carry its time zone
and lie between ``EARLIEST`` and ``LATEST`` (UTC), a day inside year 1 and year 9999, so that turning it
into UTC, into any store's local time or into epoch milliseconds and back cannot overflow; a duration
must be a finite, positive number of seconds.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta

from service.common.errors import InvalidInputError

DURATION = re.compile(
    r"^P(?:(?P<weeks>\d+)W)?(?:(?P<days>\d+)D)?"
    r"(?:T(?:(?P<hours>\d+)H)?(?:(?P<minutes>\d+)M)?(?:(?P<seconds>\d+(?:\.\d+)?)S)?)?$"
)
UNIT_SECONDS = {"weeks": 604800, "days": 86400, "hours": 3600, "minutes": 60, "seconds": 1}
EARLIEST = datetime(1, 1, 2, tzinfo=UTC)
LATEST = datetime(9999, 12, 30, 23, 59, 59, 999999, tzinfo=UTC)
MAX_TEXT = 100  # longer than any ISO 8601 timestamp or duration anyone means
ECHO = 40  # characters of a refused value quoted back


class TimeParseError(InvalidInputError, ValueError):
    """A timestamp or duration that cannot be understood."""


def _quoted(text: str) -> str:
    shown = text if len(text) <= ECHO else f"{text[:ECHO]}..."
    return repr(shown)


def parse_timestamp(text: str, name: str = "timestamp") -> datetime:
    """A timezone-aware ISO 8601 timestamp, converted to UTC.

    Naive, malformed or out-of-range input (see ``EARLIEST`` and ``LATEST``) is refused.
    """
    stripped = text.strip()
    if len(stripped) > MAX_TEXT:
        raise TimeParseError(f"{name}: {_quoted(text)} is not an ISO 8601 timestamp (too long)")
    try:
        value = datetime.fromisoformat(stripped)
    except ValueError as exc:
        raise TimeParseError(f"{name}: {_quoted(text)} is not an ISO 8601 timestamp") from exc
    offset = value.utcoffset()
    if value.tzinfo is None or offset is None:
        raise TimeParseError(f"{name}: {_quoted(text)} has no time zone; add 'Z' or an offset like +01:00")
    # The naive local time minus its offset is the UTC time; computed on naive values so that the
    # comparison itself cannot overflow at the ends of the calendar.
    naive = value.replace(tzinfo=None)
    if not _within(naive, offset):
        raise TimeParseError(
            f"{name}: {_quoted(text)} is out of range; timestamps must lie between "
            f"{_iso(EARLIEST)} and {_iso(LATEST)}"
        )
    return value.astimezone(UTC)


def _iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def _within(naive: datetime, offset: timedelta) -> bool:
    low, high = EARLIEST.replace(tzinfo=None), LATEST.replace(tzinfo=None)
    # naive - offset is the UTC time: compare naive with low + offset and high + offset instead.
    return low + offset <= naive <= high + offset


def parse_duration(text: str, name: str = "duration") -> float:
    """Seconds from a number (``900``) or an ISO 8601 duration without months/years (``PT15M``, ``P1D``).

    The result is finite and positive; infinities, NaN, zero and negative values are refused.
    """
    text = text.strip()
    if len(text) > MAX_TEXT:
        raise TimeParseError(f"{name}: {_quoted(text)} is too long for a duration")
    try:
        seconds = float(text)
    except ValueError:
        match = DURATION.match(text.upper())
        if not match or not any(match.groupdict().values()) or text.upper().endswith("T"):
            raise TimeParseError(
                f"{name}: {_quoted(text)} is neither seconds nor an ISO 8601 duration like PT15M"
            ) from None
        seconds = sum(float(v) * UNIT_SECONDS[k] for k, v in match.groupdict().items() if v)
    if not math.isfinite(seconds):
        raise TimeParseError(f"{name}: must be a finite number of seconds")
    if not seconds > 0:
        raise TimeParseError(f"{name}: must be positive")
    return seconds


def to_ms(value: datetime) -> int:
    """Milliseconds since the Unix epoch of an aware datetime."""
    return int(round(value.timestamp() * 1000))


def from_ms(ms: int) -> datetime:
    """An aware UTC datetime from epoch milliseconds."""
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def as_utc(value: datetime) -> datetime:
    """An aware UTC datetime; naive values (as SQLite returns them) are taken to be UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
