"""Missing heartbeats: a terminal silent for 3 x its heartbeat interval is recorded offline.

Run on the writer's periodic tick with the event clock's reading. Silence is counted from
the newer of the terminal's last message and its last online/offline change, so a terminal
that just said ``online`` is given a full window. The verdict's time is the moment the
window ran out (not the moment the tick noticed), so the result does not depend on how often
the tick runs. A terminal whose clock runs behind or ahead of the fleet's is judged by its
corrected time (``last_seen`` minus its offset in ``terminal_clock``), so a clock ten minutes
slow does not make a talking terminal look silent. Rows another transaction holds are
skipped (they are being written, so the terminal is not silent) and looked at again on the
next tick.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Final

from collector.hooks import AvailabilityChange
from collector.store import Conn

MISSED_HEARTBEATS: Final = 3

_MARK_SILENT: Final = f"""
WITH due AS (
    SELECT s.tid,
           greatest(s.last_seen - make_interval(secs => coalesce(c.offset_s, 0)),
                    s.online_changed_at)
             + make_interval(secs => {MISSED_HEARTBEATS} * s.heartbeat_interval_s) AS at
    FROM terminal_state s
    LEFT JOIN terminal_clock c ON c.tid = s.tid
    WHERE s.online
      AND greatest(s.last_seen - make_interval(secs => coalesce(c.offset_s, 0)),
                   s.online_changed_at)
            + make_interval(secs => {MISSED_HEARTBEATS} * s.heartbeat_interval_s) <= %(now)s
    ORDER BY s.tid
    FOR UPDATE OF s SKIP LOCKED
), marked AS (
    UPDATE terminal_state t
    SET online = false, offline_reason = 'heartbeat', online_changed_at = due.at
    FROM due
    WHERE t.tid = due.tid
    RETURNING t.tid, due.at
), logged AS (
    INSERT INTO availability_log (tid, ts, state, source)
    SELECT tid, at, 'offline', 'heartbeat' FROM marked
)
SELECT tid, at FROM marked ORDER BY tid
"""


def mark_silent(conn: Conn, now: datetime) -> list[AvailabilityChange]:
    """Record every online terminal silent for too long at event time ``now`` as offline
    (``offline_reason = 'heartbeat'``, an ``availability_log`` row); return the changes.

    Runs in a transaction of its own (a savepoint when one is open).
    """
    with conn.transaction():
        rows = conn.execute(_MARK_SILENT, {"now": now}).fetchall()
    return [AvailabilityChange(r["tid"], "offline", r["at"], "heartbeat") for r in rows]


_RECORD_OFFSETS: Final = """
WITH given AS (
    SELECT * FROM unnest(%(tids)s::text[], %(offsets)s::float8[]) AS g(tid, offset_s)
), gone AS (
    DELETE FROM terminal_clock c
    WHERE c.tid = ANY(%(cleared)s::text[])
      AND NOT EXISTS (SELECT 1 FROM given g WHERE g.tid = c.tid)
)
INSERT INTO terminal_clock (tid, offset_s, measured_at)
SELECT tid, offset_s, %(now)s FROM given
ON CONFLICT (tid) DO UPDATE SET offset_s = excluded.offset_s, measured_at = excluded.measured_at
WHERE terminal_clock.offset_s <> excluded.offset_s
"""


def record_offsets(
    conn: Conn,
    offsets: Mapping[str, timedelta],
    now: datetime,
    cleared: Sequence[str] = (),
) -> None:
    """Record ``offsets`` (the event clock's non-zero offsets) in ``terminal_clock``,
    measured at event time ``now``, and remove the terminals of ``cleared`` (their clock is
    right again). Terminals another collector measures are left alone. Runs in a
    transaction of its own."""
    tids = sorted(offsets)
    with conn.transaction():
        conn.execute(
            _RECORD_OFFSETS,
            {
                "tids": tids,
                "offsets": [offsets[t].total_seconds() for t in tids],
                "now": now,
                "cleared": list(cleared),
            },
        )
