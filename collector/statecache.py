"""The current state this collector wrote last, so that a batch need not read it back.

Each entry is a terminal's ``terminal_state`` row and its ``device_state`` fields as of the
transaction that last wrote them, tagged with that row's ``xmin`` (the id of the
transaction that wrote it). An entry is used only when the row's ``xmin``, compared under
the row lock, is still the one recorded: any other writer (another collector, the heartbeat
check) changes ``xmin`` and the entry is read again from the database. This holds because
``device_state`` is only ever written in the same transaction as its terminal's row.

Entries are recorded only after a commit; a rolled-back batch leaves the cache as it was,
which still matches the database. The cache keeps at most ``max_terminals`` entries, the
least recently written going first.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from itertools import islice
from typing import NamedTuple


@dataclass(slots=True)
class TerminalRow:
    """The columns of a ``terminal_state`` row."""

    tid: str
    first_seen: datetime
    last_seen: datetime
    last_received_at: datetime
    heartbeat_interval_s: int
    last_heartbeat_at: datetime | None
    online: bool
    online_changed_at: datetime
    offline_reason: str | None
    service_mode: bool
    service_mode_since: datetime | None
    engineer: str | None
    app: str | None
    last_seq: int | None
    seq_gaps: int
    status_ts: datetime | None

    def copy(self) -> TerminalRow:
        return TerminalRow(
            self.tid,
            self.first_seen,
            self.last_seen,
            self.last_received_at,
            self.heartbeat_interval_s,
            self.last_heartbeat_at,
            self.online,
            self.online_changed_at,
            self.offline_reason,
            self.service_mode,
            self.service_mode_since,
            self.engineer,
            self.app,
            self.last_seq,
            self.seq_gaps,
            self.status_ts,
        )


class Field(NamedTuple):
    """A device field's current value, when it entered it, and the newest time it was set."""

    value: str
    since: datetime
    ts: datetime


Fields = dict[tuple[str, str], Field]  # (device, field) -> Field


@dataclass(frozen=True, slots=True)
class Entry:
    xmin: int
    row: TerminalRow  # never changed once cached: a batch works on a copy
    fields: Fields | None  # None: not read yet


class StateCache:
    """Not thread-safe: owned by the writer thread."""

    def __init__(self, max_terminals: int = 100_000) -> None:
        self.max_terminals = max_terminals
        self._entries: dict[str, Entry] = {}

    def peek(self, tid: str) -> Entry | None:
        """The entry for ``tid``, whatever transaction wrote it."""
        return self._entries.get(tid)

    def update(self, entries: dict[str, Entry]) -> None:
        """Record what a committed transaction wrote."""
        for tid, entry in entries.items():
            self._entries.pop(tid, None)
            self._entries[tid] = entry
        excess = len(self._entries) - self.max_terminals
        if excess > 0:
            for tid in list(islice(self._entries, excess)):
                del self._entries[tid]

    def clear(self) -> None:
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)
