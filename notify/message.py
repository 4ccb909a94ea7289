"""What a message says: everything a field engineer needs to act, for one or more incidents.

A message covers one event (opened, repeated, escalated, resolved) of one or more incidents
of one route. For each incident: terminal name, address and a map link, kind, severity,
since when, an evidence summary, complaints count, money at risk, and links to the incident
page (``{base_url}/incidents/{id}``), and signed links to acknowledge and to resolve it
without a login (:mod:`termwatch.links`; the recipient is the route, ``route:<name>``).
Without a link key (tests) the acknowledge link is the incident page's form,
:data:`ACK_ANCHOR`. The text goes to Apprise targets; the same facts, structured, go to
webhooks as JSON.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final
from zoneinfo import ZoneInfo

import psycopg

from notify.routes import severity_rank
from termwatch.db import Row
from termwatch.links import LinkSigner

ACK_ANCHOR: Final = "#ack-note"  # the acknowledge form on the console's incident page
MAX_IN_TEXT: Final = 15  # incidents written out in a text message; the rest are counted
_EVIDENCE: Final = 3
_CHILD_NAMES: Final = 10
_HEADLINE: Final = {
    "opened": "",
    "repeated": "Still not acknowledged: ",
    "escalated": "Escalated, not acknowledged: ",
    "resolved": "Resolved: ",
}


@dataclass(slots=True)
class IncidentView:
    """An incident as shown in a message, read when the message is made."""

    row: Row
    terminal: Row | None
    evidence: list[str] = field(default_factory=list)
    children: int = 0
    child_names: list[str] = field(default_factory=list)

    @property
    def id(self) -> int:
        return int(self.row["id"])

    @property
    def severity(self) -> str:
        return str(self.row["severity"])

    @property
    def place(self) -> str:
        """The terminal's name, or the region of a regional incident."""
        if self.terminal is not None:
            return f"{self.terminal['name']} ({self.row['tid']})"
        if self.row["is_group"]:
            return f"region {self.row['region'] or self.row['tid']}"
        return str(self.row["tid"])


@dataclass(frozen=True, slots=True)
class Rendered:
    title: str
    body: str
    payload: dict[str, Any]
    severity: str


def load_views(conn: psycopg.Connection[Row], incident_ids: list[int]) -> list[IncidentView]:
    """The incidents with their terminal, latest evidence and grouped children, in id order."""
    rows = conn.execute(
        "SELECT i.*, to_jsonb(t) AS terminal FROM incidents i"
        " LEFT JOIN terminals t ON t.tid = i.tid WHERE i.id = ANY(%s) ORDER BY i.id",
        (incident_ids,),
    ).fetchall()
    views = {int(r["id"]): IncidentView(row=r, terminal=r.pop("terminal")) for r in rows}
    for r in conn.execute(
        "SELECT incident_id, summary FROM ("
        "  SELECT incident_id, summary, row_number() OVER"
        "   (PARTITION BY incident_id ORDER BY ts DESC) AS n"
        "  FROM incident_evidence WHERE incident_id = ANY(%s)) e"
        " WHERE n <= %s ORDER BY incident_id, n",
        (incident_ids, _EVIDENCE),
    ):
        views[int(r["incident_id"])].evidence.append(str(r["summary"]))
    for r in conn.execute(
        "SELECT c.parent_id, count(*) AS n,"
        " (array_agg(coalesce(t.name, c.tid) ORDER BY c.opened_at))[1:%s] AS names"
        " FROM incidents c LEFT JOIN terminals t ON t.tid = c.tid"
        " WHERE c.parent_id = ANY(%s) GROUP BY c.parent_id",
        (_CHILD_NAMES, incident_ids),
    ):
        view = views[int(r["parent_id"])]
        view.children = int(r["n"])
        view.child_names = [str(n) for n in r["names"]]
    return [views[i] for i in sorted(views)]


def render(
    event: str,
    route: str,
    views: list[IncidentView],
    *,
    base_url: str,
    tz: ZoneInfo,
    now: datetime,
    links: LinkSigner | None = None,
) -> Rendered:
    """The title, text and JSON payload of one message; ``views`` must not be empty.

    With ``links``, each unresolved incident gets acknowledge and resolve links signed for
    the recipient ``route:<route>``, valid for the signer's lifetime from ``now``.
    """
    if not views:
        raise ValueError("a message needs at least one incident")
    base = base_url.rstrip("/")
    worst = max((v.severity for v in views), key=severity_rank)
    if len(views) == 1:
        v = views[0]
        subject = f"[{v.severity.upper()}] {v.row['title']}: {v.place}"
    else:
        subject = f"[{worst.upper()}] {len(views)} incidents, {route}"
    title = f"{_HEADLINE[event]}{subject}"
    actions = {v.id: _actions(v, event, route, base, now, links) for v in views}
    blocks = [_text(v, event, base, tz, now, actions[v.id]) for v in views[:MAX_IN_TEXT]]
    if len(views) > MAX_IN_TEXT:
        blocks.append(f"... and {len(views) - MAX_IN_TEXT} more: {base}/incidents")
    payload = {
        "version": 1,
        "event": event,
        "route": route,
        "severity": worst,
        "title": title,
        "text": "\n\n".join(blocks),
        "incidents": [_json(v, base, actions[v.id]) for v in views],
    }
    return Rendered(title=title, body="\n\n".join(blocks), payload=payload, severity=worst)


def _actions(
    v: IncidentView, event: str, route: str, base: str, now: datetime, links: LinkSigner | None
) -> dict[str, str]:
    """The ``ack`` and ``resolve`` links of an incident still to be acted on."""
    if event == "resolved" or v.row["status"] == "resolved":
        return {}
    if links is None:
        return {"ack": f"{base}/incidents/{v.id}{ACK_ANCHOR}"}
    recipient = f"route:{route}"
    out = {"resolve": links.url(base, v.id, "resolve", recipient, now)}
    if v.row["status"] == "open":
        out["ack"] = links.url(base, v.id, "ack", recipient, now)
    return dict(sorted(out.items()))


def _text(
    v: IncidentView, event: str, base: str, tz: ZoneInfo, now: datetime, actions: dict[str, str]
) -> str:
    r = v.row
    lines = [f"{r['severity'].upper()} {r['kind']}: {r['title']}", f"Where: {v.place}"]
    if v.terminal is not None:
        lines.append(f"Address: {v.terminal['address']}, {v.terminal['city']}")
        link = map_url(v.terminal.get("lat"), v.terminal.get("lon"))
        if link:
            lines.append(f"Map: {link}")
    if v.children:
        names = ", ".join(v.child_names)
        more = (
            f" and {v.children - len(v.child_names)} more"
            if v.children > len(v.child_names)
            else ""
        )
        lines.append(f"Terminals affected: {v.children} ({names}{more})")
    opened: datetime = r["opened_at"]
    lines.append(f"Since: {_when(opened, tz)} ({_ago(now - opened)} ago)")
    if r["acknowledged_by"] and r["acknowledged_at"] is not None:
        lines.append(f"Acknowledged: {_when(r['acknowledged_at'], tz)} by {r['acknowledged_by']}")
    if event == "resolved" and r["resolved_at"] is not None:
        by = f" by {r['resolved_by']}" if r["resolved_by"] else ""
        lines.append(f"Resolved: {_when(r['resolved_at'], tz)}{by}")
    if v.evidence:
        lines.append("Evidence: " + "; ".join(v.evidence))
    lines.append(
        f"Complaints: {r['complaints']}; money at risk:"
        f" {money(r['money_at_risk_minor'], str(r['details'].get('currency', 'RUB')))}"
        f" ({r['operations_affected']} operations)"
    )
    lines.append(f"Incident: {base}/incidents/{r['id']}")
    if "ack" in actions:
        lines.append(f"Acknowledge: {actions['ack']}")
    if "resolve" in actions:
        lines.append(f"Resolve: {actions['resolve']}")
    return "\n".join(lines)


def _json(v: IncidentView, base: str, actions: dict[str, str]) -> dict[str, Any]:
    r = v.row
    t = v.terminal or {}
    return {
        "id": r["id"],
        "tid": r["tid"],
        "kind": r["kind"],
        "severity": r["severity"],
        "status": r["status"],
        "title": r["title"],
        "name": t.get("name"),
        "address": t.get("address"),
        "city": t.get("city"),
        "region": r["region"] or t.get("region"),
        "service_group": t.get("service_group"),
        "lat": t.get("lat"),
        "lon": t.get("lon"),
        "map_url": map_url(t.get("lat"), t.get("lon")),
        "since": r["opened_at"].isoformat(),
        "resolved_at": r["resolved_at"].isoformat() if r["resolved_at"] else None,
        "evidence": v.evidence,
        "complaints": r["complaints"],
        "operations_affected": r["operations_affected"],
        "money_at_risk_minor": r["money_at_risk_minor"],
        "is_group": r["is_group"],
        "children": v.children,
        "url": f"{base}/incidents/{r['id']}",
        "ack_url": actions.get("ack"),
        "resolve_url": actions.get("resolve"),
    }


def map_url(lat: object, lon: object) -> str | None:
    """An OpenStreetMap link to a point, or None without coordinates."""
    if not isinstance(lat, int | float) or not isinstance(lon, int | float):
        return None
    return (
        f"https://www.openstreetmap.org/?mlat={lat:.5f}&mlon={lon:.5f}#map=18/{lat:.5f}/{lon:.5f}"
    )


def money(minor: int, currency: str = "RUB") -> str:
    """``123456`` -> ``1 234.56 RUB`` (amounts are kept in minor units)."""
    whole, cents = divmod(abs(int(minor)), 100)
    sign = "-" if minor < 0 else ""
    return f"{sign}{whole:,}.{cents:02d} {currency}".replace(",", " ")


def _when(at: datetime, tz: ZoneInfo) -> str:
    return at.astimezone(tz).strftime("%Y-%m-%d %H:%M %Z")


def _ago(delta: Any) -> str:
    minutes = max(int(delta.total_seconds() // 60), 0)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min"
    return f"{hours // 24} days"
