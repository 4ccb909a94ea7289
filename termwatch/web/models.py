"""The shapes the HTTP API reads and writes, as msgspec structs.

The OpenAPI document is generated from these same types (:mod:`termwatch.web.openapi`), so
what the API sends and what it documents cannot drift apart. Request bodies are decoded
strictly into them; the complaint body is the shared contract type
:class:`terminals.contract.Complaint`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Final, Literal

from msgspec import Meta, Struct

from terminals.contract import Tid, Timestamp
from terminals.kinds import IncidentKind

INCIDENT_STATUSES: Final = ("open", "acknowledged", "resolved")
Condition = Literal["ok", "warning", "fault", "absent", "unknown"]
Note = Annotated[str, Meta(max_length=2000)]
Actor = Annotated[str, Meta(min_length=1, max_length=64)]
Matcher = Annotated[str, Meta(min_length=1, max_length=128)]


class Error(Struct, kw_only=True):
    """Any 4xx/5xx answer: what is wrong and, for a bad input, which field."""

    error: str
    field: str | None = None


class DeviceField(Struct, kw_only=True):
    field: str
    value: str
    since: datetime


class Device(Struct, kw_only=True):
    """One device's current state: a condition, the state in words, and since when."""

    device: str
    label: str
    condition: Condition
    state: str
    problems: list[str]
    since: datetime | None
    fields: list[DeviceField]


class Step(Struct, kw_only=True):
    step: str
    result: str
    ts: datetime | None = None
    error: str | None = None


class Operation(Struct, kw_only=True):
    """A customer operation as the terminal reported it; the account shows its last 4 only."""

    op_id: str
    ts: datetime
    kind: str
    service: str | None
    account_last4: str | None
    amount_minor: int
    currency: str
    outcome: str
    started: datetime | None
    failed_step: str | None
    failed_result: str | None
    failed_error: str | None
    cash_accepted_minor: int
    money_at_risk_minor: int
    host_ref: str | None
    steps: list[Step]


class Incident(Struct, kw_only=True):
    id: int
    kind: str
    tid: str
    severity: Literal["critical", "major", "minor"]
    status: Literal["open", "acknowledged", "resolved"]
    title: str
    opened_at: datetime
    acknowledged_at: datetime | None
    resolved_at: datetime | None
    complaints: int
    operations_affected: int
    money_at_risk_minor: int
    acknowledged_by: str | None
    resolved_by: str | None
    region: str | None
    service_group: str | None
    silenced: bool
    parent_id: int | None
    last_fault_at: datetime
    cleared_at: datetime | None


class ComplaintView(Struct, kw_only=True):
    """A stored complaint; the customer shows as the last 4 digits, digits in text masked."""

    id: int
    ref: str
    received_at: datetime
    occurred_at: datetime
    channel: str
    category: str
    tid: str | None
    amount_minor: int | None
    currency: str
    customer_last4: str | None
    text: str | None
    matched_op_id: str | None
    incident_id: int | None
    verdict: str


class EvidenceEvent(Struct, kw_only=True):
    msg_id: str
    ts: datetime
    device: str | None
    name: str | None
    summary: str


class EvidenceItem(Struct, kw_only=True):
    kind: str
    ref: str
    ts: datetime
    summary: str


class LogEntry(Struct, kw_only=True):
    at: datetime
    action: str
    actor: str
    note: str | None


class Evidence(Struct, kw_only=True):
    """What proves an incident: the events, operations and complaints linked to it, and
    every evidence record (``items``, including status and heartbeat proofs)."""

    events: list[EvidenceEvent]
    operations: list[Operation]
    complaints: list[ComplaintView]
    items: list[EvidenceItem]


class IncidentDetail(Incident, kw_only=True):
    """An incident with its evidence and its history."""

    resolve_note: str | None
    evidence: Evidence
    log: list[LogEntry]


class TerminalCard(Struct, kw_only=True):
    """Everything a support agent needs about one terminal (api.md, Terminals)."""

    tid: str
    registered: bool
    name: str | None
    address: str | None
    city: str | None
    region: str | None
    lat: float | None
    lon: float | None
    model: str | None
    service_group: str | None
    online: bool | None
    last_seen: datetime | None
    online_changed_at: datetime | None
    offline_reason: str | None
    service_mode: bool
    app: str | None
    #: the terminal's clock offset against the fleet's, seconds (positive: ahead); None
    #: while its clock is right
    clock_offset_s: float | None = None
    #: the offset in words, in the card's language; empty while the clock is right
    clock: str = ""
    devices: list[Device]
    incidents: list[Incident]
    operations: list[Operation]
    selected_operation: Operation | None
    recent_complaints: list[ComplaintView]
    language: Literal["en", "ru"]
    guidance: str
    guidance_lines: list[str]


class SearchHit(Struct, kw_only=True):
    tid: str
    name: str
    address: str
    city: str
    region: str
    service_group: str
    online: bool | None
    last_seen: datetime | None


class ComplaintResult(Struct, kw_only=True):
    """The answer to a posted complaint; ``created`` is false for a repeated ``ref``."""

    id: int
    ref: str
    tid: str | None
    matched_op_id: str | None
    incident_id: int | None
    verdict: str
    created: bool


class NoteIn(Struct, kw_only=True, forbid_unknown_fields=True):
    """Body of acknowledge and resolve: an optional note and who acts (default: the role)."""

    note: Note | None = None
    by: Actor | None = None


class MatcherIn(Struct, kw_only=True, forbid_unknown_fields=True):
    """One matcher of a silence (*extension*): ``severity =~ major|critical``."""

    label: Literal["kind", "tid", "region", "service_group", "severity"]
    op: Literal["=", "!=", "=~", "!~"]
    value: Annotated[str, Meta(max_length=200)]


class SilenceIn(Struct, kw_only=True, forbid_unknown_fields=True):
    """A new silence: at least one matcher, and an end (``ends_at`` or ``duration_s``)."""

    tid: Tid | None = None
    region: Matcher | None = None
    kind: IncidentKind | None = None
    matchers: Annotated[list[MatcherIn], Meta(max_length=20)] | None = None
    ends_at: Timestamp | None = None
    duration_s: Annotated[int, Meta(ge=60, le=90 * 86_400)] | None = None
    comment: Annotated[str, Meta(max_length=1000)] = ""
    by: Actor | None = None

    def __post_init__(self) -> None:
        if self.tid is None and self.region is None and self.kind is None and not self.matchers:
            raise ValueError("tid: give at least one of tid, region, kind or matchers")
        if (self.ends_at is None) == (self.duration_s is None):
            raise ValueError("ends_at: give exactly one of ends_at or duration_s")


class SilencePreviewIn(Struct, kw_only=True, forbid_unknown_fields=True):
    """The matchers of a silence to preview (*extension*), as in :class:`SilenceIn`."""

    tid: Tid | None = None
    region: Matcher | None = None
    kind: IncidentKind | None = None
    matchers: Annotated[list[MatcherIn], Meta(max_length=20)] | None = None


class Silence(Struct, kw_only=True):
    id: int
    tid: str | None
    region: str | None
    kind: str | None
    starts_at: datetime
    ends_at: datetime
    created_by: str
    comment: str
    matchers: list[str] = []  # extension: every matcher, as text ("severity=~major|critical")
    warnings: list[str] = []  # extension, on creation: what the registry does not know


class SilencePreview(Struct, kw_only=True):
    """The open incidents a silence would match (*extension*), and the warnings."""

    matchers: list[str]
    matches: list[Incident]
    warnings: list[str]


class Expired(Struct, kw_only=True):
    id: int
    expired: bool
