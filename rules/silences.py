"""Silences: an operator mutes a terminal, a region or a kind until a given time.

A silence always has an expiry. Incidents it matches are still opened and recorded, with
``silenced`` true, and are not paged. When a silence is created, matching open incidents are
silenced (a ``silenced`` log row); when it ends or is expired, incidents no other silence
covers are unsilenced (an ``unsilenced`` log row, so the notifier pages what is still open).
A silence with several fields matches incidents that match all of them. Times are event
times, like every time the rules use.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Final

from rules.journal import Conn, log_action
from termwatch.settings import TID_RE

MAX_DURATION: Final = timedelta(days=90)
_ACTIVE: Final = (
    "s.expired_at IS NULL AND s.starts_at <= %(now)s AND s.ends_at > %(now)s"
    " AND (s.tid IS NULL OR s.tid = i.tid) AND (s.region IS NULL OR s.region = i.region)"
    " AND (s.kind IS NULL OR s.kind = i.kind)"
)


def _clean(value: str | None, name: str, max_len: int = 128) -> str | None:
    if value is None:
        return None
    value = value.strip()
    if not value:
        raise ValueError(f"{name}: must not be empty")
    if len(value) > max_len:
        raise ValueError(f"{name}: at most {max_len} characters")
    return value


def create(
    conn: Conn,
    *,
    tid: str | None = None,
    region: str | None = None,
    kind: str | None = None,
    ends_at: datetime,
    created_by: str,
    comment: str = "",
    now: datetime,
) -> int:
    """Create a silence from ``now`` to ``ends_at``; return its id.

    Raises ValueError (naming the field) when no matcher is given, a value is malformed,
    ``ends_at`` is not in the future, or the silence would last more than 90 days.
    """
    tid = _clean(tid, "tid", 32)
    if tid is not None and not TID_RE.match(tid):
        raise ValueError("tid: letters, digits, _ and - only, 1 to 32 characters")
    region = _clean(region, "region")
    kind = _clean(kind, "kind", 64)
    if tid is None and region is None and kind is None:
        raise ValueError("a silence needs at least one of tid, region or kind")
    if ends_at.tzinfo is None or now.tzinfo is None:
        raise ValueError("ends_at: must carry a time zone")
    if ends_at <= now:
        raise ValueError("ends_at: must be in the future")
    if ends_at - now > MAX_DURATION:
        raise ValueError(f"ends_at: a silence lasts at most {MAX_DURATION.days} days")
    by = _clean(created_by, "created_by")
    if comment and len(comment) > 1000:
        raise ValueError("comment: at most 1000 characters")
    with conn.transaction():
        row = conn.execute(
            "INSERT INTO silences (tid, region, kind, starts_at, ends_at, created_by, comment)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING id",
            (tid, region, kind, now, ends_at, by, comment),
        ).fetchone()
        assert row is not None
        silence_id = int(row["id"])
        muted = conn.execute(
            "UPDATE incidents i SET silenced = true, updated_at = now()"
            " WHERE i.status <> 'resolved' AND NOT i.silenced"
            " AND (%(tid)s::text IS NULL OR i.tid = %(tid)s)"
            " AND (%(region)s::text IS NULL OR i.region = %(region)s)"
            " AND (%(kind)s::text IS NULL OR i.kind = %(kind)s) RETURNING id",
            {"tid": tid, "region": region, "kind": kind},
        ).fetchall()
        for incident in muted:
            log_action(conn, incident["id"], now, "silenced", by or "", f"silence #{silence_id}")
    return silence_id


def list_active(conn: Conn, now: datetime) -> list[dict[str, Any]]:
    """Silences in force at ``now``, soonest to end first."""
    rows = conn.execute(
        "SELECT id, tid, region, kind, starts_at, ends_at, created_by, comment, created_at"
        " FROM silences WHERE expired_at IS NULL AND starts_at <= %s AND ends_at > %s"
        " ORDER BY ends_at, id",
        (now, now),
    ).fetchall()
    return [dict(r) for r in rows]


def expire(conn: Conn, silence_id: int, now: datetime) -> bool:
    """End a silence now. Returns False if it does not exist or had already ended."""
    with conn.transaction():
        row = conn.execute(
            "UPDATE silences SET expired_at = %s WHERE id = %s AND expired_at IS NULL"
            " AND ends_at > %s RETURNING id",
            (now, silence_id, now),
        ).fetchone()
        if row is None:
            return False
        unsilence_uncovered(conn, now, actor="silences", note=f"silence #{silence_id} expired")
    return True


def matches(conn: Conn, *, tid: str | None, region: str | None, kind: str, now: datetime) -> bool:
    """Whether a silence in force at ``now`` covers an incident of ``kind`` on ``tid``."""
    row = conn.execute(
        "SELECT 1 FROM (SELECT %(tid)s::text AS tid, %(region)s::text AS region,"
        f" %(kind)s::text AS kind) i WHERE EXISTS (SELECT 1 FROM silences s WHERE {_ACTIVE})",
        {"tid": tid, "region": region, "kind": kind, "now": now},
    ).fetchone()
    return row is not None


def next_end(conn: Conn, now: datetime) -> datetime | None:
    """When the next silence in force after ``now`` runs out, or None if none is."""
    row = conn.execute(
        "SELECT min(ends_at) AS at FROM silences WHERE expired_at IS NULL AND ends_at > %s",
        (now,),
    ).fetchone()
    return row["at"] if row is not None else None


def unsilence_uncovered(conn: Conn, now: datetime, *, actor: str, note: str) -> list[int]:
    """Unsilence open incidents that no silence covers any more; return their ids."""
    rows = conn.execute(
        "UPDATE incidents i SET silenced = false, updated_at = now()"
        " WHERE i.silenced AND i.status <> 'resolved'"
        f" AND NOT EXISTS (SELECT 1 FROM silences s WHERE {_ACTIVE}) RETURNING id",
        {"now": now},
    ).fetchall()
    for row in rows:
        log_action(conn, row["id"], now, "unsilenced", actor, note)
    return [int(r["id"]) for r in rows]
