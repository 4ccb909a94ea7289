"""Helpers for the notification tests (no tests here).

Incidents are made the way the rules engine makes them: a row in ``incidents`` and its
``incident_log`` entry in one transaction, so these tests do not depend on the rules code.
Targets are real local servers: :class:`notify.receiver.Receiver` for HTTP, and an aiosmtpd
SMTP server for e-mail.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from email.message import Message
from pathlib import Path
from typing import Any

import psycopg
from aiosmtpd.controller import Controller
from psycopg.types.json import Jsonb

from notify.worker import NotifyWorker
from termwatch.db import Row
from termwatch.settings import Settings

T0 = datetime(2026, 5, 4, 9, 0, tzinfo=UTC)  # 12:00 in Moscow, a Monday


def at(seconds: float = 0, *, minutes: float = 0, hours: float = 0) -> datetime:
    """T0 moved on."""
    return T0 + timedelta(seconds=seconds, minutes=minutes, hours=hours)


@dataclass(slots=True)
class Fleet:
    """Writes terminals and incident changes as the registry import and rules engine do."""

    db: psycopg.Connection[Row]

    def terminal(
        self,
        tid: str,
        group: str,
        *,
        region: str = "Center",
        name: str | None = None,
        lat: float | None = 55.7512,
        lon: float | None = 37.6184,
    ) -> None:
        self.db.execute(
            "INSERT INTO terminals (tid, name, address, city, region, lat, lon, service_group)"
            " VALUES (%s, %s, %s, 'Moscow', %s, %s, %s, %s)",
            (tid, name or f"Kiosk {tid}", f"Tverskaya {tid[-2:]}", region, lat, lon, group),
        )

    def open(
        self,
        tid: str,
        kind: str = "cash_acceptor_jam",
        severity: str = "critical",
        *,
        when: datetime = T0,
        region: str | None = None,
        is_group: bool = False,
        silenced: bool = False,
        title: str | None = None,
        details: dict[str, Any] | None = None,
        complaints: int = 0,
        money_minor: int = 0,
    ) -> int:
        with self.db.transaction():
            if region is None:  # as the rules engine does: the terminal's region
                found = self.db.execute(
                    "SELECT region FROM terminals WHERE tid = %s", (tid,)
                ).fetchone()
                region = found["region"] if found else None
            row = self.db.execute(
                "INSERT INTO incidents (tid, kind, severity, status, title, rule, region,"
                " is_group, opened_at, last_fault_at, silenced, complaints,"
                " operations_affected, money_at_risk_minor, details)"
                " VALUES (%s, %s, %s, 'open', %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
                " RETURNING id",
                (
                    tid, kind, severity, title or kind.replace("_", " ").capitalize(), kind,
                    region, is_group, when, when, silenced, complaints,
                    1 if money_minor else 0, money_minor, Jsonb(details or {}),
                ),
            ).fetchone()  # fmt: skip
            assert row is not None
            self._log(int(row["id"]), "opened", when)
        return int(row["id"])

    def evidence(self, incident_id: int, summary: str, when: datetime = T0) -> None:
        self.db.execute(
            "INSERT INTO incident_evidence (incident_id, kind, ref, ts, summary)"
            " VALUES (%s, 'event', %s, %s, %s)",
            (incident_id, f"m-{incident_id}-{summary}", when, summary),
        )

    def acknowledge(self, incident_id: int, by: str, when: datetime) -> None:
        with self.db.transaction():
            self.db.execute(
                "UPDATE incidents SET status = 'acknowledged', acknowledged_at = %s,"
                " acknowledged_by = %s, updated_at = now() WHERE id = %s",
                (when, by, incident_id),
            )
            self._log(incident_id, "acknowledged", when, actor=by)

    def resolve(self, incident_id: int, when: datetime, by: str = "rules") -> None:
        with self.db.transaction():
            self.db.execute(
                "UPDATE incidents SET status = 'resolved', resolved_at = %s, resolved_by = %s,"
                " cleared_at = %s, updated_at = now() WHERE id = %s",
                (when, by, when, incident_id),
            )
            self._log(incident_id, "resolved", when, actor=by)

    def reopen(self, incident_id: int, when: datetime) -> None:
        with self.db.transaction():
            self.db.execute(
                "UPDATE incidents SET status = 'open', resolved_at = NULL, resolved_by = NULL,"
                " reopen_count = reopen_count + 1, updated_at = now() WHERE id = %s",
                (incident_id,),
            )
            self._log(incident_id, "reopened", when)

    def group(self, parent_id: int, children: list[int], when: datetime) -> None:
        with self.db.transaction():
            self.db.execute(
                "UPDATE incidents SET parent_id = %s WHERE id = ANY(%s)", (parent_id, children)
            )
            for child in children:
                self._log(child, "grouped", when, note=f"under {parent_id}")

    def silence(self, ends: datetime, *, when: datetime, tid: str | None = None,
                region: str | None = None) -> None:  # fmt: skip
        """A silence from ``when``: open incidents it covers are marked and logged silenced."""
        with self.db.transaction():
            self.db.execute(
                "INSERT INTO silences (tid, region, starts_at, ends_at, created_by)"
                " VALUES (%s, %s, %s, %s, 'engineer')",
                (tid, region, when, ends),
            )
            muted = self.db.execute(
                "UPDATE incidents SET silenced = true WHERE status <> 'resolved'"
                " AND NOT silenced AND (%(tid)s::text IS NULL OR tid = %(tid)s)"
                " AND (%(region)s::text IS NULL OR region = %(region)s) RETURNING id",
                {"tid": tid, "region": region},
            ).fetchall()
            for row in muted:
                self._log(int(row["id"]), "silenced", when, actor="engineer")

    def silence_ends(self, when: datetime) -> None:
        """Every silence is over: silenced open incidents are unsilenced, as the rules do."""
        with self.db.transaction():
            rows = self.db.execute(
                "UPDATE incidents SET silenced = false WHERE silenced AND status <> 'resolved'"
                " RETURNING id"
            ).fetchall()
            for row in rows:
                self._log(int(row["id"]), "unsilenced", when)

    def _log(
        self, incident_id: int, action: str, when: datetime, actor: str = "rules",
        note: str | None = None,
    ) -> None:  # fmt: skip
        self.db.execute(
            "INSERT INTO incident_log (incident_id, at, action, actor, note)"
            " VALUES (%s, %s, %s, %s, %s)",
            (incident_id, when, action, actor, note),
        )


def write_routes(folder: Path, text: str) -> Path:
    path = folder / "routes.yaml"
    path.write_text(text, encoding="utf-8")
    return path


@contextmanager
def running_worker(
    settings: Settings, routes_file: Path | None, **kwargs: Any
) -> Iterator[NotifyWorker]:
    worker = NotifyWorker(
        settings.with_(routes_file=routes_file, public_url="https://tw.example"),
        settings.require_database(),
        **kwargs,
    )
    try:
        yield worker
    finally:
        worker.stop()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(slots=True)
class _Mailbox:
    messages: list[Message] = field(default_factory=list)
    recipients: list[list[str]] = field(default_factory=list)
    changed: threading.Condition = field(default_factory=threading.Condition)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.changed:
            self.messages.append(message_from_bytes(envelope.content))
            self.recipients.append(list(envelope.rcpt_tos))
            self.changed.notify_all()
        return "250 OK"


class SmtpServer:
    """A real SMTP server on a local port (aiosmtpd), keeping what it receives."""

    def __init__(self) -> None:
        self.box = _Mailbox()
        self.port = free_port()
        self._controller = Controller(self.box, hostname="127.0.0.1", port=self.port)
        self._controller.start()

    def url(self, to: str) -> str:
        return f"mailto://127.0.0.1:{self.port}?from=termwatch@example.com&to={to}&mode=insecure"

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Message]:
        deadline = time.monotonic() + timeout
        with self.box.changed:
            while len(self.box.messages) < count and time.monotonic() < deadline:
                self.box.changed.wait(deadline - time.monotonic())
            return list(self.box.messages)

    def close(self) -> None:
        self._controller.stop()
