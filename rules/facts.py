"""What the rules read, in one shape whether it came in a batch or from the database.

The collector hands over contract structs; the time-driven rules read rows. Both are turned
into these small records so that the conditions are written once.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import msgspec

from collector.hooks import StoredBatch
from rules.model import StepFact
from terminals.contract import Event, Operation, devices_from_payload

log = logging.getLogger(__name__)

STATUS_CHANGED = "Common.StatusChangedEvent"
SERVICE_MODE = "Terminal.ServiceMode"


@dataclass(frozen=True, slots=True)
class StateValue:
    """A device field value carried by a status snapshot or a status-changed event."""

    tid: str
    device: str
    field: str
    value: str
    ts: datetime
    msg_id: str
    source: str  # 'status' | 'event'


@dataclass(frozen=True, slots=True)
class EventFact:
    tid: str
    msg_id: str
    ts: datetime
    device: str
    name: str
    payload: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class OpFact:
    tid: str
    msg_id: str
    op_id: str
    ts: datetime
    outcome: str
    amount_minor: int
    currency: str
    account_last4: str | None
    money_at_risk_minor: int
    steps: tuple[StepFact, ...]
    started: datetime | None = None

    @property
    def began(self) -> datetime:
        """When the customer began it (what a customer remembers), else when it ended."""
        return self.started if self.started is not None else self.ts

    def step(self, name: str) -> StepFact | None:
        found = None
        for step in self.steps:
            if step.step == name:
                found = step
        return found

    def first_failed(self) -> StepFact | None:
        for step in self.steps:
            if step.result not in ("success", "skipped"):
                return step
        return None

    def describe(self) -> str:
        failed = self.first_failed()
        amount = f"{self.amount_minor / 100:.2f} {self.currency}"
        if failed is None:
            return f"operation {self.op_id}: {amount}, {self.outcome}"
        error = f" ({failed.error})" if failed.error else ""
        return f"operation {self.op_id}: {amount}, {failed.step} {failed.result}{error}"


def last4(account: str | None) -> str | None:
    """The last 4 digits of a masked account (``*4567``), or None."""
    if not account:
        return None
    digits = "".join(c for c in account if c.isdigit())
    return digits[-4:] if len(digits) >= 4 else None


def op_from_message(op: Operation) -> OpFact:
    return OpFact(
        tid=op.tid,
        msg_id=op.id,
        op_id=op.op_id,
        ts=op.ts,
        outcome=op.outcome,
        amount_minor=op.amount_minor,
        currency=op.currency,
        account_last4=last4(op.account),
        money_at_risk_minor=op.money_at_risk_minor(),
        steps=tuple(StepFact(s.step, s.result, s.error) for s in op.steps),
        started=op.started,
    )


def op_from_row(row: Mapping[str, Any]) -> OpFact:
    """From a row of ``operations`` (steps as stored: a JSON list of step objects)."""
    steps: list[StepFact] = []
    raw = row.get("steps") or []
    for item in raw if isinstance(raw, list) else []:
        if isinstance(item, dict) and isinstance(item.get("step"), str):
            error = item.get("error")
            steps.append(
                StepFact(
                    str(item["step"]),
                    str(item.get("result", "")),
                    error if isinstance(error, str) else None,
                )
            )
    return OpFact(
        tid=row["tid"],
        msg_id=row["msg_id"],
        op_id=row["op_id"],
        ts=row["ts"],
        outcome=row["outcome"],
        amount_minor=int(row["amount_minor"]),
        currency=row["currency"],
        account_last4=row.get("account_last4"),
        money_at_risk_minor=int(row.get("money_at_risk_minor") or 0),
        steps=tuple(steps),
        started=row.get("started"),
    )


def event_from_message(event: Event) -> EventFact:
    return EventFact(event.tid, event.id, event.ts, event.device, event.name, event.payload)


def event_from_row(row: Mapping[str, Any]) -> EventFact:
    payload = row.get("payload")
    return EventFact(
        row["tid"],
        row["msg_id"],
        row["ts"],
        row["device"],
        row["name"],
        payload if isinstance(payload, dict) else {},
    )


def state_values(batch: StoredBatch) -> list[StateValue]:
    """Every device field value in the batch, oldest first."""
    values: list[StateValue] = []
    for status in batch.status:
        for device, field, value in status.devices.fields():
            values.append(
                StateValue(status.tid, device, field, value, status.ts, status.id, "status")
            )
    for event in batch.events:
        if event.name != STATUS_CHANGED:
            continue
        try:
            devices = devices_from_payload(event.payload)
        except msgspec.ValidationError as exc:
            # The collector stored it; it simply carries no state the rules can use.
            log.debug(
                "status-changed event %s/%s has no usable devices: %s", event.tid, event.id, exc
            )
            continue
        for device, field, value in devices.fields():
            values.append(StateValue(event.tid, device, field, value, event.ts, event.id, "event"))
    values.sort(key=lambda v: v.ts)
    return values


def touched(batch: StoredBatch) -> dict[str, tuple[datetime, datetime]]:
    """Terminals that spoke in the batch, with the oldest and newest event time of each."""
    spans: dict[str, tuple[datetime, datetime]] = {}

    def see(tid: str, ts: datetime) -> None:
        lo_hi = spans.get(tid)
        spans[tid] = (ts, ts) if lo_hi is None else (min(lo_hi[0], ts), max(lo_hi[1], ts))

    messages: Iterable[Any] = (*batch.status, *batch.events, *batch.operations, *batch.heartbeats)
    for message in messages:
        see(message.tid, message.ts)
    for change in batch.availability:
        see(change.tid, change.ts)
    return spans
