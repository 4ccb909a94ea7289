"""What the demo prints while it runs: a status line of the fleet, messages, incidents."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from typing import IO

from prometheus_client import REGISTRY

from termwatch.db import connect
from termwatch.metrics import KINDS


class Progress:
    """Status lines on stdout: rewritten in place on a terminal, one per interval otherwise."""

    def __init__(self, out: IO[str] = sys.stdout) -> None:
        self.out = out
        self.tty = out.isatty()
        self.interval = 2.0 if self.tty else 10.0
        self._pending = False

    def line(self, text: str) -> None:
        if self._pending:
            self.out.write("\n")
            self._pending = False
        self.out.write(text + "\n")
        self.out.flush()

    def status(self, text: str) -> None:
        if self.tty:
            self.out.write("\r\x1b[2K" + text)
            self._pending = True
        else:
            self.out.write(text + "\n")
        self.out.flush()

    def done(self) -> None:
        if self._pending:
            self.out.write("\n")
            self._pending = False
        self.out.flush()


def snapshot(dsn: str, clock: datetime | None) -> str:
    """One status line: event time, fleet, messages, incidents, complaints."""
    with connect(dsn, autocommit=True) as conn:
        row = conn.execute(
            "SELECT (SELECT count(*) FROM terminals) AS terminals,"
            " (SELECT count(*) FROM terminal_state WHERE online) AS online,"
            " (SELECT count(*) FROM incidents WHERE status <> 'resolved' AND NOT is_group)"
            "   AS open,"
            " (SELECT count(*) FROM incidents WHERE NOT is_group) AS incidents,"
            " (SELECT count(*) FROM complaints) AS complaints"
        ).fetchone()
    assert row is not None
    stored = sum(
        REGISTRY.get_sample_value("termwatch_messages_total", {"kind": k, "outcome": "stored"})
        or 0.0
        for k in KINDS
    )
    at = clock.astimezone(UTC).strftime("%H:%M:%S UTC") if clock else "--:--:-- UTC"
    return (
        f"[{at}] terminals {row['online']}/{row['terminals']} online"
        f" | messages {stored:,.0f} | incidents {row['open']} open, {row['incidents']} in all"
        f" | complaints {row['complaints']}"
    )
