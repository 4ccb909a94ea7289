"""Delivery: one queued notification claimed, sent, and recorded in one transaction.

A notification row is claimed with ``FOR UPDATE SKIP LOCKED``, so two workers never send the
same row; the attempt is recorded and the row marked sent (or rescheduled, or failed) in the
transaction that holds the claim. If the process dies before that commit the claim is
released and the row is sent again by whoever claims it next: delivery is at least once,
and exactly once unless the process dies between the target's answer and the commit (a
webhook's ``Idempotency-Key`` header lets it drop that duplicate).

Transient failures are retried with exponential backoff (``retry`` in the routes file) up to
the attempt limit, then recorded as failed; permanent failures are failed at once. A target
has at most one send in flight per worker, so a slow or dead target holds one thread for at
most its timeout and never delays the others.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import datetime

import psycopg

from notify.routes import Routes
from notify.targets import Outcome, Outgoing, Sender
from termwatch.db import Row
from termwatch.metrics import NOTIFICATIONS

#: Target types and delivery results, so that every series exists from the start.
TARGET_TYPES = ("webhook", "apprise")
RESULTS = ("sent", "retry", "failed")
for _target in TARGET_TYPES:
    for _result in RESULTS:
        NOTIFICATIONS.labels(_target, _result)

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Attempted:
    """What one :meth:`Deliverer.deliver_one` call did."""

    notification_id: int
    target: str
    result: str  # sent | retry | failed
    error: str | None


class Deliverer:
    """Claims and sends due notifications; :meth:`deliver_one` is safe from several threads."""

    def __init__(self, routes: Routes, sender: Sender) -> None:
        self._routes = routes
        self._sender = sender
        self._lock = threading.Lock()
        self._busy: set[str] = set()

    def deliver_one(self, conn: psycopg.Connection[Row], now: datetime) -> Attempted | None:
        """Send the most overdue notification due at ``now`` whose target is not busy.

        Returns None when there is none. ``conn`` must not be in a transaction; the claim,
        the attempt record and the new status commit together. Raises
        ``psycopg.OperationalError`` when the database is unreachable (nothing is recorded;
        the row stays queued).
        """
        with conn.transaction():
            with self._lock:
                row = conn.execute(
                    "SELECT n.id, n.target, n.target_type, n.attempts, m.event, m.title,"
                    " m.body, m.payload FROM notifications n"
                    " JOIN notify_messages m ON m.id = n.message_id"
                    " WHERE n.status = 'queued' AND n.next_attempt_at <= %s"
                    " AND n.target <> ALL(%s)"
                    " ORDER BY n.next_attempt_at, n.id LIMIT 1 FOR UPDATE OF n SKIP LOCKED",
                    (now, sorted(self._busy)),
                ).fetchone()
                if row is None:
                    return None
                self._busy.add(row["target"])
            try:
                started = time.monotonic()
                outcome = self._send(row)
                elapsed_ms = int((time.monotonic() - started) * 1000)
                result = self._record(conn, row, outcome, now, elapsed_ms)
            finally:
                with self._lock:
                    self._busy.discard(row["target"])
        NOTIFICATIONS.labels(row["target_type"], result.result).inc()
        if result.result == "failed":
            log.warning(
                "notification %s to %s failed: %s",
                result.notification_id,
                result.target,
                result.error,
            )
        elif result.result == "retry":
            log.info(
                "notification %s to %s will be tried again: %s",
                result.notification_id,
                result.target,
                result.error,
            )
        return result

    def _send(self, row: Row) -> Outcome:
        target = self._routes.target(row["target"])
        if target is None:
            return Outcome.failed(f"target {row['target']!r} is no longer in the routes file")
        payload = dict(row["payload"])
        return self._sender.send(
            target,
            Outgoing(
                notification_id=int(row["id"]),
                attempt=int(row["attempts"]) + 1,
                event=str(row["event"]),
                severity=str(payload.get("severity", "major")),
                title=str(row["title"]),
                body=str(row["body"]),
                payload=payload,
            ),
        )

    def _record(
        self,
        conn: psycopg.Connection[Row],
        row: Row,
        outcome: Outcome,
        now: datetime,
        elapsed_ms: int,
    ) -> Attempted:
        attempts = int(row["attempts"]) + 1
        result, error = outcome.result, outcome.error
        retry = self._routes.retry
        if result == "retry" and attempts >= retry.attempts:
            result, error = "failed", f"gave up after {attempts} attempts: {error}"
        if result == "sent":
            conn.execute(
                "UPDATE notifications SET status = 'sent', attempts = %s, sent_at = %s,"
                " last_error = NULL WHERE id = %s",
                (attempts, now, row["id"]),
            )
        elif result == "retry":
            conn.execute(
                "UPDATE notifications SET attempts = %s, next_attempt_at = %s, last_error = %s"
                " WHERE id = %s",
                (attempts, now + retry.delay(attempts), error, row["id"]),
            )
        else:
            conn.execute(
                "UPDATE notifications SET status = 'failed', attempts = %s, last_error = %s"
                " WHERE id = %s",
                (attempts, error, row["id"]),
            )
        conn.execute(
            "INSERT INTO notification_attempts"
            " (notification_id, at, target, result, error, duration_ms)"
            " VALUES (%s, %s, %s, %s, %s, %s)",
            (row["id"], now, row["target"], result, error, elapsed_ms),
        )
        return Attempted(int(row["id"]), str(row["target"]), result, error)
