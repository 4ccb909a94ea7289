"""The terminal card: registry, liveness, devices in words, incidents, operations, guidance.

One function builds it for the API, the console and ``termwatch status`` alike, from five
indexed reads sent in one round trip (see :mod:`termwatch.web.read`), and, once the
caller's operation is picked, two more in a second one: the complaints already registered
on it and the incident that explains it. Complaint verdicts are rendered in the card's
language and time zone from their facts (:mod:`termwatch.web.verdict`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from typing import Literal

import msgspec

from termwatch.web import read, verdict
from termwatch.web.devices import describe_all
from termwatch.web.guidance import Situation, guidance
from termwatch.web.i18n import clock_offset
from termwatch.web.models import ComplaintView, Operation, TerminalCard
from termwatch.web.read import Conn, OperationFilter


@dataclass(frozen=True, slots=True)
class CardQuery:
    """Which terminal, in which language, and which of its operations to show.

    ``op_id`` selects an operation for the guidance; ``complaint_id`` shows a complaint's
    result (and selects its matched operation). When a filter finds exactly one operation,
    that one is selected.
    """

    tid: str
    lang: Literal["en", "ru"] = "en"
    operations: OperationFilter = field(default_factory=OperationFilter)
    op_id: str | None = None
    complaint_id: int | None = None
    tz: tzinfo = UTC


@dataclass(frozen=True, slots=True)
class CardBuild:
    """The card and what the console shows beside it: the complaints already registered on
    the selected operation."""

    card: TerminalCard
    op_complaints: list[ComplaintView]


def terminal_card(conn: Conn, query: CardQuery, now: datetime) -> TerminalCard | None:
    """The card of ``query.tid``, or None when the terminal is neither registered nor seen."""
    built = build_card(conn, query, now)
    return built.card if built is not None else None


def build_card(conn: Conn, query: CardQuery, now: datetime) -> CardBuild | None:
    """:func:`terminal_card` with the selected operation's complaints."""
    rows = read.card_rows(conn, query.tid, query.operations, now)
    found = rows.terminal
    if found is None:
        return None
    reg = found.registry or {}
    state = found.state or {}
    devices = describe_all(rows.devices, query.lang)
    incidents = rows.incidents
    operations = rows.operations
    complaint: ComplaintView | None = None
    if query.complaint_id is not None:
        complaint = read.complaint(conn, query.complaint_id)
        if complaint is not None and complaint.tid != query.tid:
            complaint = None
    selected = _selected(conn, query, operations, complaint)
    known = read.operation_context(conn, query.tid, selected) if selected is not None else None
    op_complaints = tuple(
        (c, verdict.render(f, query.lang, query.tz)) for c, f in (known.complaints if known else [])
    )
    recent = [
        msgspec.structs.replace(c, verdict=verdict.render(f, query.lang, query.tz))
        for c, f in rows.complaints
    ]
    lines = guidance(
        Situation(
            registered=found.registry is not None,
            seen=found.state is not None,
            online=state.get("online"),
            online_changed_at=state.get("online_changed_at"),
            service_mode=bool(state.get("service_mode")),
            devices=devices,
            incidents=incidents,
            operation=selected,
            complaint=complaint,
            searched_for_operation=query.operations.active and selected is None,
            op_complaints=op_complaints,
            explained_by=known.explained_by if known else None,
        ),
        query.lang,
        now,
        query.tz,
    )
    card = TerminalCard(
        tid=query.tid,
        registered=found.registry is not None,
        name=reg.get("name"),
        address=reg.get("address"),
        city=reg.get("city"),
        region=reg.get("region"),
        lat=reg.get("lat"),
        lon=reg.get("lon"),
        model=reg.get("model"),
        service_group=reg.get("service_group"),
        online=state.get("online"),
        last_seen=state.get("last_seen"),
        online_changed_at=state.get("online_changed_at"),
        offline_reason=state.get("offline_reason"),
        service_mode=bool(state.get("service_mode")),
        app=state.get("app"),
        clock_offset_s=state.get("clock_offset_s"),
        clock=clock_offset(query.lang, state.get("clock_offset_s")),
        devices=devices,
        incidents=incidents,
        operations=operations,
        selected_operation=selected,
        recent_complaints=recent,
        language=query.lang,
        guidance=" ".join(lines),
        guidance_lines=lines,
    )
    rendered = [msgspec.structs.replace(c, verdict=text) for c, text in op_complaints]
    return CardBuild(card=card, op_complaints=rendered)


def _selected(
    conn: Conn,
    query: CardQuery,
    operations: list[Operation],
    complaint: ComplaintView | None,
) -> Operation | None:
    wanted = query.op_id or (complaint.matched_op_id if complaint else None)
    if wanted is not None:
        for op in operations:
            if op.op_id == wanted:
                return op
        return read.operation(conn, query.tid, wanted)
    if query.operations.active and len(operations) == 1:
        return operations[0]
    return None
