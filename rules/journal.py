"""The incident log (the notification outbox) and the metrics of incident changes.

Actions written to ``incident_log``: ``opened``, ``reopened``, ``updated`` (a complaint was
attached), ``grouped`` (put under a regional parent), ``silenced``, ``unsilenced``,
``acknowledged``, ``resolved``. A row is written in the same transaction as the change.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import psycopg

from rules.model import SEVERITIES
from terminals.kinds import INCIDENT_KINDS
from termwatch.db import Row
from termwatch.metrics import INCIDENTS_OPENED, INCIDENTS_RESOLVED

Conn = psycopg.Connection[Row]
RULES_ACTOR = "rules"

# Every series exists from the start, so that rate() and increase() see the first incident.
for _kind in INCIDENT_KINDS:
    for _severity in SEVERITIES:
        INCIDENTS_OPENED.labels(_kind, _severity)
        INCIDENTS_RESOLVED.labels(_kind, _severity)


@dataclass(slots=True)
class Changes:
    """Counts of what a transaction did, published to the metrics after it commits."""

    opened: list[tuple[str, str]] = field(default_factory=list)
    resolved: list[tuple[str, str]] = field(default_factory=list)

    def publish(self) -> None:
        for kind, severity in self.opened:
            INCIDENTS_OPENED.labels(kind, severity).inc()
        for kind, severity in self.resolved:
            INCIDENTS_RESOLVED.labels(kind, severity).inc()
        self.discard()

    def discard(self) -> None:
        self.opened.clear()
        self.resolved.clear()


def log_action(
    conn: Conn, incident_id: int, at: datetime, action: str, actor: str, note: str | None = None
) -> None:
    """Append one row to ``incident_log``."""
    conn.execute(
        "INSERT INTO incident_log (incident_id, at, action, actor, note)"
        " VALUES (%s, %s, %s, %s, %s)",
        (incident_id, at, action, actor, note),
    )
