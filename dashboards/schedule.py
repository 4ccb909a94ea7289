"""Scheduled hours (when a terminal is supposed to serve customers) and interval arithmetic.

A schedule is ``24/7`` or weekly windows in a time zone, written
``mon-fri 08:00-20:00; sat,sun 10:00-16:00``: items separated by ``;``, each a list of days
or day ranges and one ``HH:MM-HH:MM`` window. ``24:00`` may end a window; a window whose end
is not after its start runs past midnight into the next day (``fri 22:00-02:00``). Windows are
wall-clock times in the schedule's zone, so a day on which clocks change is longer or shorter.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_WINDOW = re.compile(r"^(\d{2}):(\d{2})-(\d{2}):(\d{2})$")

Interval = tuple[datetime, datetime]


class ScheduleError(ValueError):
    """A schedule is malformed; the message quotes the part that is wrong."""


@dataclass(frozen=True, slots=True)
class Window:
    weekday: int  # 0 = Monday
    start: timedelta  # since local midnight
    end: timedelta  # since local midnight; may exceed 24 h (runs into the next day)


@dataclass(frozen=True, slots=True)
class Schedule:
    """Weekly windows in a zone; no windows means around the clock (24/7)."""

    text: str
    zone: ZoneInfo
    windows: tuple[Window, ...] = ()

    @property
    def always(self) -> bool:
        return not self.windows

    def intervals(self, start: datetime, end: datetime) -> list[Interval]:
        """The scheduled time within ``[start, end)``, as sorted disjoint intervals in UTC.

        (In UTC because Python subtracts two times of one zone by their wall clocks, which
        is wrong across a clock change.)
        """
        start, end = start.astimezone(UTC), end.astimezone(UTC)
        if end <= start:
            return []
        if self.always:
            return [(start, end)]
        found: list[Interval] = []
        first = start.astimezone(self.zone).date() - timedelta(days=1)
        last = end.astimezone(self.zone).date()
        day = first
        while day <= last:
            for window in self.windows:
                if window.weekday == day.weekday():
                    lo = _local(day, window.start, self.zone)
                    hi = _local(day, window.end, self.zone)
                    found.append((max(lo, start), min(hi, end)))
            day += timedelta(days=1)
        return merge(i for i in found if i[1] > i[0])


def _local(day: date, offset: timedelta, zone: ZoneInfo) -> datetime:
    """The instant (in UTC) at wall-clock ``day`` 00:00 + ``offset`` in ``zone``."""
    extra_days, rest = divmod(offset, timedelta(days=1))
    moment = (datetime.combine(day, time()) + rest).replace(tzinfo=zone)
    return (moment + timedelta(days=extra_days)).astimezone(UTC)


def parse_schedule(text: str, zone_name: str = "UTC") -> Schedule:
    """Parse ``text`` (see the module doc) in the IANA zone ``zone_name``.

    Raises :class:`ScheduleError` naming the bad part.
    """
    try:
        zone = ZoneInfo(zone_name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ScheduleError(f"unknown time zone {zone_name!r}") from None
    spec = text.strip().lower()
    if spec in ("24/7", "always", ""):
        return Schedule("24/7", zone)
    windows: list[Window] = []
    for item in (p.strip() for p in spec.split(";")):
        if not item:
            continue
        days_part, _, window_part = item.rpartition(" ")
        if not days_part:
            raise ScheduleError(f"{item!r}: expected days and a window, e.g. 'mon-fri 08:00-20:00'")
        start, end = _window(window_part.strip(), item)
        for weekday in _days(days_part.replace(" ", ""), item):
            windows.append(Window(weekday, start, end))
    if not windows:
        raise ScheduleError(f"{text!r}: no windows")
    return Schedule(text.strip(), zone, tuple(windows))


def _window(text: str, item: str) -> tuple[timedelta, timedelta]:
    match = _WINDOW.match(text)
    if not match:
        raise ScheduleError(f"{item!r}: window must be HH:MM-HH:MM, got {text!r}")
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    if h1 > 23 or m1 > 59 or m2 > 59 or h2 > 24 or (h2 == 24 and m2):
        raise ScheduleError(f"{item!r}: no such time of day in {text!r}")
    start = timedelta(hours=h1, minutes=m1)
    end = timedelta(hours=h2, minutes=m2)
    if end <= start:
        end += timedelta(days=1)  # past midnight
    return start, end


def _days(text: str, item: str) -> list[int]:
    found: list[int] = []
    for part in text.split(","):
        lo, sep, hi = part.partition("-")
        if lo not in DAYS or (sep and hi not in DAYS):
            raise ScheduleError(f"{item!r}: days are {', '.join(DAYS)} or ranges like mon-fri")
        a = DAYS.index(lo)
        b = DAYS.index(hi) if sep else a
        found.extend(range(a, b + 1) if a <= b else [*range(a, 7), *range(0, b + 1)])
    return found


def merge(intervals: Iterable[Interval]) -> list[Interval]:
    """Sorted, disjoint intervals covering the same time; touching ones are joined."""
    out: list[Interval] = []
    for lo, hi in sorted(intervals):
        if out and lo <= out[-1][1]:
            if hi > out[-1][1]:
                out[-1] = (out[-1][0], hi)
        else:
            out.append((lo, hi))
    return out


def overlap_seconds(a: list[Interval], b: list[Interval]) -> float:
    """Seconds covered by both ``a`` and ``b`` (each sorted and disjoint, as :func:`merge`)."""
    total = 0.0
    i = j = 0
    while i < len(a) and j < len(b):
        lo = max(a[i][0], b[j][0])
        hi = min(a[i][1], b[j][1])
        if hi > lo:
            total += (hi - lo).total_seconds()
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return total


def total_seconds(intervals: list[Interval]) -> float:
    return sum((hi - lo).total_seconds() for lo, hi in intervals)
