"""What the collector hands on after each committed batch.

The collector stores a batch, commits it, acknowledges it to the broker, and then calls every
:class:`AfterCommit` hook with what was newly stored (duplicates are left out). Hooks run on
the writer's thread, after the commit: they must be quick or hand the work to a thread of
their own, and an exception in a hook is logged and counted, never lost data (the rows are
already committed).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

import psycopg

from terminals.contract import Complaint, Event, Heartbeat, Operation, Status


@dataclass(frozen=True, slots=True)
class AvailabilityChange:
    """A terminal went online or offline (availability topic or missing heartbeats)."""

    tid: str
    state: str  # 'online' | 'offline'
    ts: datetime
    source: str  # 'availability' | 'heartbeat'


@dataclass(slots=True)
class StoredBatch:
    """Messages committed by one flush, in arrival order within each kind."""

    now: datetime | None  # the event clock after this batch
    status: list[Status] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    operations: list[Operation] = field(default_factory=list)
    heartbeats: list[Heartbeat] = field(default_factory=list)
    availability: list[AvailabilityChange] = field(default_factory=list)
    complaints: list[int] = field(default_factory=list)  # ids of new complaint rows

    def __len__(self) -> int:
        return (
            len(self.status)
            + len(self.events)
            + len(self.operations)
            + len(self.heartbeats)
            + len(self.availability)
            + len(self.complaints)
        )


class AfterCommit(Protocol):
    def after_commit(self, batch: StoredBatch) -> None:
        """Act on a committed batch."""

    def tick(self, now: datetime) -> None:
        """Called about once a second of wall time with the event clock's reading."""


class ComplaintSink(Protocol):
    """Stores complaints arriving on ``support/complaints`` inside the collector's transaction."""

    def store(
        self, conn: psycopg.Connection[Any], complaints: Sequence[Complaint]
    ) -> list[int | None]:
        """Store each complaint; return its new row id, or None when its ``ref`` was known."""
