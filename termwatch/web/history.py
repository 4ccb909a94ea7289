"""A terminal's recent history as strips an agent reads at a glance: the last 24 hours and
7 days of availability, each device's condition, incidents and failed operations.

Four indexed reads in one round trip: ``availability_log_tid_ts``, ``device_state_log_tid_ts``,
``incidents_tid_opened`` and ``operations_tid_ts``, each bounded to the 7 days (and each
capped), plus the row just before the window for availability and devices, so a state that
began earlier is drawn from the window's start.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Final

from termwatch.web.devices import DEVICES, FAULT, OK, PROBLEMS, WARNING
from termwatch.web.models import Incident
from termwatch.web.read import INCIDENT_COLUMNS, Conn, incident_from

WEEK: Final = timedelta(days=7)
DAY: Final = timedelta(hours=24)
MAX_ROWS: Final = 5000
LEVEL_CLASS: Final = {OK: "ok", WARNING: "warning", FAULT: "fault"}


@dataclass(frozen=True, slots=True)
class Segment:
    """``start``..``end`` in one state; ``css`` names it for the drawing, ``label`` in words
    is filled in by the page."""

    start: datetime
    end: datetime
    css: str
    code: str = ""


@dataclass(frozen=True, slots=True)
class Lane:
    key: str  # availability | printer | cashAcceptor | cardReader | incidents | operations
    segments: list[Segment]
    ticks: list[datetime] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Strip:
    """One window of the history: its lanes, each segment as a share of the window."""

    start: datetime
    end: datetime
    lanes: list[Lane]

    def x(self, ts: datetime) -> float:
        """Where ``ts`` falls, 0..1000."""
        span = (self.end - self.start).total_seconds()
        at = (min(max(ts, self.start), self.end) - self.start).total_seconds()
        return round(1000 * at / span, 2)

    def width(self, segment: Segment) -> float:
        return max(round(self.x(segment.end) - self.x(segment.start), 2), 1.0)


@dataclass(frozen=True, slots=True)
class History:
    day: Strip
    week: Strip
    resolved: list[Incident]


def _availability(rows: list[dict[str, object]], start: datetime, now: datetime) -> Lane:
    segments: list[Segment] = []
    state, since = None, start
    for row in rows:
        ts = row["ts"]
        assert isinstance(ts, datetime)
        if state is not None and ts > since:
            segments.append(Segment(since, ts, "ok" if state == "online" else "fault", str(state)))
        state, since = row["state"], max(ts, start)
    if state is not None:
        segments.append(Segment(since, now, "ok" if state == "online" else "fault", str(state)))
    return Lane("availability", segments)


def _devices(rows: list[dict[str, object]], start: datetime, now: datetime) -> list[Lane]:
    """Each device's worst problem over time (a field not heard of is healthy)."""
    lanes = []
    for device in DEVICES:
        values: dict[str, str] = {}
        segments: list[Segment] = []
        level, code, since = OK, "ok", start
        for row in rows:
            if row["device"] != device:
                continue
            ts = row["ts"]
            assert isinstance(ts, datetime)
            values[str(row["field"])] = str(row["value"])
            new_level, new_code = _worst(device, values)
            if (new_level, new_code) != (level, code):
                at = max(ts, start)
                if at > since:
                    segments.append(Segment(since, at, LEVEL_CLASS[level], code))
                level, code, since = new_level, new_code, at
        segments.append(Segment(since, now, LEVEL_CLASS[level], code))
        lanes.append(Lane(device, segments))
    return lanes


def _worst(device: str, values: dict[str, str]) -> tuple[int, str]:
    worst = (OK, "ok")
    for name, value in values.items():
        problem = PROBLEMS.get((device, name), {}).get(value)
        if problem is not None and problem[1] > worst[0]:
            worst = (problem[1], problem[0])
    return worst


def _clip(strip_start: datetime, lane: Lane) -> Lane:
    return Lane(
        lane.key,
        [s for s in lane.segments if s.end > strip_start],
        [t for t in lane.ticks if t >= strip_start],
    )


def history(conn: Conn, tid: str, now: datetime) -> History:
    """The last 24 hours and 7 days of ``tid`` up to ``now``, and the incidents resolved in
    those 7 days (newest first)."""
    start = now - WEEK
    window = {"tid": tid, "start": start, "now": now, "cap": MAX_ROWS}
    with conn.pipeline():
        availability = conn.execute(
            "(SELECT ts, state FROM availability_log WHERE tid = %(tid)s AND ts < %(start)s"
            " ORDER BY ts DESC LIMIT 1) UNION ALL"
            " (SELECT ts, state FROM availability_log WHERE tid = %(tid)s"
            " AND ts >= %(start)s AND ts <= %(now)s ORDER BY ts LIMIT %(cap)s) ORDER BY ts",
            window,
        )
        devices = conn.execute(
            "SELECT device, field, value, ts FROM device_state_log"
            " WHERE tid = %(tid)s AND ts <= %(now)s AND ts >= %(start)s - interval '7 days'"
            " ORDER BY ts LIMIT %(cap)s",
            window,
        )
        incidents = conn.execute(
            f"SELECT {INCIDENT_COLUMNS} FROM incidents i LEFT JOIN terminals t ON t.tid = i.tid"
            " WHERE i.tid = %(tid)s AND i.opened_at <= %(now)s"
            " AND (i.resolved_at IS NULL OR i.resolved_at >= %(start)s)"
            " AND i.opened_at >= %(start)s - interval '30 days'"
            " ORDER BY i.opened_at DESC LIMIT 200",
            window,
        )
        failed = conn.execute(
            "SELECT ts FROM operations WHERE tid = %(tid)s AND ts >= %(start)s"
            " AND ts <= %(now)s AND (outcome = 'failed' OR money_at_risk_minor > 0)"
            " ORDER BY ts LIMIT %(cap)s",
            window,
        )
    found = [incident_from(r) for r in incidents.fetchall()]
    lanes = [
        _availability(availability.fetchall(), start, now),
        *_devices(devices.fetchall(), start, now),
        Lane(
            "incidents",
            [
                Segment(
                    max(i.opened_at, start),
                    i.resolved_at or now,
                    "fault" if i.severity == "critical" else "warning",
                    i.kind,
                )
                for i in reversed(found)
                if i.severity != "minor"
            ],
        ),
        Lane("operations", [], [r["ts"] for r in failed.fetchall()]),
    ]
    day_start = now - DAY
    return History(
        day=Strip(day_start, now, [_clip(day_start, lane) for lane in lanes]),
        week=Strip(start, now, lanes),
        resolved=[i for i in found if i.status == "resolved"],
    )
