"""ISO 8601 timestamps and durations from request parameters, and epoch-millisecond conversions."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from service.common.errors import InvalidInputError

DURATION = re.compile(
    r"^P(?:(?P<weeks>\d+)W)?(?:(?P<days>\d+)D)?"
    r"(?:T(?:(?P<hours>\d+)H)?(?:(?P<minutes>\d+)M)?(?:(?P<seconds>\d+(?:\.\d+)?)S)?)?$"
)
UNIT_SECONDS = {"weeks": 604800, "days": 86400, "hours": 3600, "minutes": 60, "seconds": 1}


class TimeParseError(InvalidInputError, ValueError):
    """A timestamp or duration that cannot be understood."""


def parse_timestamp(text: str, name: str = "timestamp") -> datetime:
    """A timezone-aware ISO 8601 timestamp, converted to UTC; naive or malformed input is refused."""
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError as exc:
        raise TimeParseError(f"{name}: {text!r} is not an ISO 8601 timestamp") from exc
    if value.tzinfo is None or value.utcoffset() is None:
        raise TimeParseError(f"{name}: {text!r} has no time zone; add 'Z' or an offset like +01:00")
    return value.astimezone(UTC)


def parse_duration(text: str, name: str = "duration") -> float:
    """Seconds from a number (``900``) or an ISO 8601 duration without months/years (``PT15M``, ``P1D``)."""
    text = text.strip()
    try:
        seconds = float(text)
    except ValueError:
        match = DURATION.match(text.upper())
        if not match or not any(match.groupdict().values()) or text.upper().endswith("T"):
            raise TimeParseError(
                f"{name}: {text!r} is neither seconds nor an ISO 8601 duration like PT15M"
            ) from None
        seconds = sum(float(v) * UNIT_SECONDS[k] for k, v in match.groupdict().items() if v)
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
