"""Missing heartbeats: a terminal silent for 3 x its heartbeat interval is recorded offline.

Run on the writer's periodic tick with the event clock's reading. Silence is counted from
the newer of the terminal's last message and its last online/offline change, so a terminal
that just said ``online`` is given a full window. The verdict's time is the moment the
window ran out (not the moment the tick noticed), so the result does not depend on how often
the tick runs. Rows another transaction holds are skipped (they are being written, so the
terminal is not silent) and looked at again on the next tick.
"""

from __future__ import annotations

from datetime import datetime
from typing import Final

from collector.hooks import AvailabilityChange
from collector.store import Conn

MISSED_HEARTBEATS: Final = 3

_MARK_SILENT: Final = f"""
WITH due AS (
    SELECT tid,
           greatest(last_seen, online_changed_at)
             + make_interval(secs => {MISSED_HEARTBEATS} * heartbeat_interval_s) AS at
    FROM terminal_state
    WHERE online
      AND greatest(last_seen, online_changed_at)
            + make_interval(secs => {MISSED_HEARTBEATS} * heartbeat_interval_s) <= %(now)s
    ORDER BY tid
    FOR UPDATE SKIP LOCKED
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
