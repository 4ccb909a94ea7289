"""Simulated time: integer milliseconds since the Unix epoch, durations, RFC 3339 text.

The simulation counts time in integer milliseconds so that the same seed gives the same
timestamps on every machine (no floating-point drift).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from functools import lru_cache
from typing import Final

MS: Final = 1
SECOND: Final = 1000
MINUTE: Final = 60 * SECOND
HOUR: Final = 60 * MINUTE
DAY: Final = 24 * HOUR

_UNITS: Final = {"ms": MS, "s": SECOND, "m": MINUTE, "h": HOUR, "d": DAY}
_DURATION_RE: Final = re.compile(r"^(?:(\d+)(ms|s|m|h|d))+$")
_PART_RE: Final = re.compile(r"(\d+)(ms|s|m|h|d)")
_OFFSET_RE: Final = re.compile(r"^([+-])(\d{2}):(\d{2})$")


def parse_duration(text: str) -> int:
    """Milliseconds of ``text`` such as ``90s``, ``15m``, ``2h30m``, ``1d``.

    Raises ValueError naming the accepted form.
    """
    compact = text.strip()
    if not _DURATION_RE.match(compact):
        raise ValueError(f"{text!r} is not a duration (examples: 500ms, 90s, 15m, 2h30m, 1d)")
    return sum(int(n) * _UNITS[unit] for n, unit in _PART_RE.findall(compact))


def format_duration(ms: int) -> str:
    """The shortest text :func:`parse_duration` reads back as ``ms``."""
    if ms == 0:
        return "0s"
    parts = []
    for unit in ("d", "h", "m", "s", "ms"):
        size = _UNITS[unit]
        if ms >= size:
            parts.append(f"{ms // size}{unit}")
            ms %= size
    return "".join(parts)


def parse_offset(text: str) -> int:
    """Minutes east of UTC of ``+03:00``; raises ValueError otherwise."""
    match = _OFFSET_RE.match(text.strip())
    if not match:
        raise ValueError(f"{text!r} is not a UTC offset like +03:00")
    sign, hours, minutes = match.groups()
    total = int(hours) * 60 + int(minutes)
    if total > 14 * 60 or int(minutes) >= 60:
        raise ValueError(f"{text!r} is out of range")
    return total if sign == "+" else -total


def parse_instant(text: str) -> int:
    """Milliseconds since the epoch of an RFC 3339 timestamp with an offset."""
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"{text!r} is not an RFC 3339 timestamp") from None
    if value.tzinfo is None:
        raise ValueError(f"{text!r} has no UTC offset (write e.g. 2026-05-04T00:00:00+03:00)")
    return to_ms(value)


def to_ms(value: datetime) -> int:
    delta = value - datetime(1970, 1, 1, tzinfo=UTC)
    return delta // timedelta(milliseconds=1)


@lru_cache(maxsize=64)
def _zone(offset_min: int) -> timezone:
    return timezone(timedelta(minutes=offset_min))


def to_datetime(ms: int, offset_min: int = 0) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC).astimezone(_zone(offset_min)) + timedelta(
        milliseconds=ms
    )


def rfc3339(ms: int, offset_min: int = 0) -> str:
    """``2026-05-04T10:15:00.120+03:00``: always milliseconds, always the offset."""
    text = to_datetime(ms, offset_min).isoformat(timespec="milliseconds")
    return text.replace("+00:00", "Z") if offset_min == 0 else text


def local_hour(ms: int, offset_min: int) -> float:
    """Hour of the local day (0 <= h < 24) at ``ms`` for a zone ``offset_min`` east of UTC."""
    return ((ms + offset_min * MINUTE) % DAY) / HOUR
