"""The shift at a glance and the regional incident: which terminals fail customers now.

:func:`board` is the console's start page: every terminal with an unresolved incident
(critical and major; minor ones page nobody), grouped by region and service group, worst
first, with the money at risk and the complaints received in the last hour. Two indexed
reads in one round trip (``incidents_unresolved``, ``complaints_received``).

:func:`region` is what a regional (storm) incident groups: its terminals' incidents, the
operations and complaints they gathered, the service groups involved, and what to tell a
caller from the region.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from typing import Final

from termwatch.web import verdict
from termwatch.web.i18n import incident_title, money, text, when
from termwatch.web.models import ComplaintView, Incident, Operation
from termwatch.web.read import (
    COMPLAINT_FACTS_SELECT,
    INCIDENT_COLUMNS,
    OP_COLUMNS,
    Conn,
    incident_from,
    operation_from,
    with_facts,
)

SEVERITY_RANK: Final = {"critical": 0, "major": 1, "minor": 2}
RECENT: Final = timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class FailingTerminal:
    tid: str
    name: str | None
    address: str | None
    city: str | None
    incidents: list[Incident]
    money_at_risk_minor: int
    complaints_last_hour: int

    @property
    def worst(self) -> str:
        return min((i.severity for i in self.incidents), key=SEVERITY_RANK.__getitem__)

    @property
    def since(self) -> datetime:
        return min(i.opened_at for i in self.incidents)


@dataclass(frozen=True, slots=True)
class BoardGroup:
    region: str
    service_group: str
    terminals: list[FailingTerminal]


@dataclass(frozen=True, slots=True)
class Board:
    groups: list[BoardGroup]
    terminals: int
    money_at_risk_minor: int
    complaints_last_hour: int


def board(conn: Conn, now: datetime, limit: int = 500) -> Board:
    """The terminals failing customers at ``now`` (see the module's docstring)."""
    with conn.pipeline():
        incidents = conn.execute(
            f"SELECT {INCIDENT_COLUMNS}, t.name, t.address, t.city, t.region AS reg_region"
            " FROM incidents i LEFT JOIN terminals t ON t.tid = i.tid"
            " WHERE i.status <> 'resolved' AND NOT i.is_group AND i.severity <> 'minor'"
            " ORDER BY i.severity, i.opened_at DESC LIMIT %s",
            (limit,),
        )
        complaints = conn.execute(
            "SELECT tid, count(*) AS n FROM complaints"
            " WHERE received_at >= %s AND received_at <= %s AND tid IS NOT NULL GROUP BY tid",
            (now - RECENT, now),
        )
    recent = {r["tid"]: int(r["n"]) for r in complaints.fetchall()}
    by_tid: dict[str, list[tuple[Incident, dict[str, object]]]] = defaultdict(list)
    for row in incidents.fetchall():
        by_tid[row["tid"]].append((incident_from(row), row))
    groups: dict[tuple[str, str], list[FailingTerminal]] = defaultdict(list)
    for tid, found in by_tid.items():
        row = found[0][1]
        incident = found[0][0]
        region = str(row["reg_region"] or incident.region or "—")
        groups[(region, incident.service_group or "—")].append(
            FailingTerminal(
                tid=tid,
                name=_opt(row["name"]),
                address=_opt(row["address"]),
                city=_opt(row["city"]),
                incidents=[i for i, _ in found],
                money_at_risk_minor=sum(i.money_at_risk_minor for i, _ in found),
                complaints_last_hour=recent.get(tid, 0),
            )
        )
    ordered = [
        BoardGroup(
            region,
            group,
            sorted(
                terminals,
                key=lambda t: (SEVERITY_RANK[t.worst], -t.money_at_risk_minor, t.tid),
            ),
        )
        for (region, group), terminals in groups.items()
    ]
    ordered.sort(
        key=lambda g: (
            min(SEVERITY_RANK[t.worst] for t in g.terminals),
            -sum(t.money_at_risk_minor for t in g.terminals),
            g.region,
            g.service_group,
        )
    )
    all_terminals = [t for g in ordered for t in g.terminals]
    return Board(
        groups=ordered,
        terminals=len(all_terminals),
        money_at_risk_minor=sum(t.money_at_risk_minor for t in all_terminals),
        complaints_last_hour=sum(recent.values()),
    )


def _opt(value: object) -> str | None:
    return None if value is None else str(value)


@dataclass(frozen=True, slots=True)
class Region:
    """What a regional incident groups."""

    children: list[Incident]
    operations: list[Operation]
    complaints: list[tuple[ComplaintView, verdict.VerdictFacts]]
    service_groups: list[str]
    money_at_risk_minor: int


def region(conn: Conn, parent_id: int) -> Region:
    """The incidents grouped under ``parent_id``, their operations (the 200 newest) and
    complaints (the 200 newest), by ``incidents_parent``, evidence and ``complaints_incident``."""
    children = [
        incident_from(r)
        for r in conn.execute(
            f"SELECT {INCIDENT_COLUMNS} FROM incidents i LEFT JOIN terminals t ON t.tid = i.tid"
            " WHERE i.parent_id = %s ORDER BY i.opened_at LIMIT 500",
            (parent_id,),
        ).fetchall()
    ]
    ids = [c.id for c in children]
    with conn.pipeline():
        ops = conn.execute(
            f"SELECT o.{OP_COLUMNS.replace(', ', ', o.')}, o.tid FROM incident_evidence e"
            " JOIN incidents i ON i.id = e.incident_id"
            " JOIN LATERAL (SELECT * FROM operations WHERE tid = i.tid AND op_id = e.ref"
            "  ORDER BY ts DESC LIMIT 1) o ON true"
            " WHERE e.incident_id = ANY(%s) AND e.kind = 'operation'"
            " ORDER BY e.ts DESC LIMIT 200",
            (ids,),
        )
        complaints = conn.execute(
            f"{COMPLAINT_FACTS_SELECT} WHERE c.incident_id = ANY(%s)"
            " ORDER BY c.received_at DESC LIMIT 200",
            (ids,),
        )
    groups = sorted({c.service_group for c in children if c.service_group})
    return Region(
        children=children,
        operations=[operation_from(r) for r in ops.fetchall()],
        complaints=with_facts(complaints.fetchall()),
        service_groups=groups,
        money_at_risk_minor=sum(c.money_at_risk_minor for c in children),
    )


#: What to suggest to a caller, per kind of regional trouble.
_ADVICE: Final = {
    "payment_failures": "g.region_payments",
    "terminal_offline": "g.region_offline",
}


def region_guidance(
    lang: str, parent: Incident, found: Region, now: datetime, tz: tzinfo
) -> list[str]:
    """What the agent tells a caller from the region, in ``lang``."""
    open_children = [c for c in found.children if c.status != "resolved"]
    lines = [
        text(
            lang,
            "g.region",
            title=incident_title(lang, parent.kind, parent.tid, parent.region),
            n=len(open_children) or len(found.children),
            since=when(lang, parent.opened_at, tz),
            id=parent.id,
            status=text(lang, f"status.{parent.status}"),
        ),
        text(lang, _ADVICE.get(parent.kind, "g.region_other")),
    ]
    if found.money_at_risk_minor:
        lines.append(
            text(lang, "g.region_money", money=money(lang, found.money_at_risk_minor, "RUB"))
        )
    return lines
