"""Incidents as Alertmanager alerts: ``POST <alertmanager>/api/v2/alerts``.

Each incident of a message is one alert. Labels (what Alertmanager groups, routes, inhibits
and silences on): ``alertname="TermwatchIncident"``, ``kind``, ``tid``, ``region``,
``service_group`` and ``severity`` (a label the incident lacks is left out). Annotations:
``summary`` (title and place), ``description`` (the message text of the incident) and
``console`` (the incident page, also the alert's ``generatorURL``). ``startsAt`` is when
the incident opened; ``endsAt`` is set when it is resolved, which resolves the alert.

Alertmanager resolves an alert that is not sent again within its ``resolve_timeout`` (5
minutes by default), as it expects of Prometheus. So, besides the messages (opened,
repeated, escalated, resolved), the worker pushes every open, unsilenced incident paged on
a route of the target again every ``resend`` (1 minute by default, at most 4), and the
incidents resolved within the last two ``resend`` periods with their ``endsAt``
(:func:`current_alerts`). If termwatch stops, its alerts resolve in Alertmanager after
``resolve_timeout``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, Final
from zoneinfo import ZoneInfo

import psycopg

from notify.message import load_views, render
from notify.routes import Routes, Target
from termwatch.db import Row

ALERTNAME: Final = "TermwatchIncident"
LABELS: Final = ("kind", "tid", "region", "service_group", "severity")
_UTC: Final = ZoneInfo("UTC")


def alerts_url(target: Target) -> str:
    """The target's ``/api/v2/alerts`` (its URL is Alertmanager's base URL, or that one)."""
    base = target.url.rstrip("/")
    return base if base.endswith("/api/v2/alerts") else f"{base}/api/v2/alerts"


def to_alerts(
    incidents: Iterable[Mapping[str, Any]], event: str, now: datetime
) -> list[dict[str, Any]]:
    """Alertmanager alerts for the ``incidents`` of a message payload (:mod:`notify.message`).

    An incident resolved (or a ``resolved`` message) gets ``endsAt``: its resolution time,
    or ``now`` when the payload does not say.
    """
    out = []
    for item in incidents:
        labels = {"alertname": ALERTNAME}
        labels.update({k: str(item[k]) for k in LABELS if item.get(k) not in (None, "")})
        place = item.get("name") or item.get("tid")
        alert: dict[str, Any] = {
            "labels": labels,
            "annotations": {
                "summary": f"{item.get('title')}: {place}",
                "description": "; ".join(item.get("evidence") or ()) or str(item.get("title")),
                "console": str(item.get("url") or ""),
            },
            "startsAt": item.get("since"),
            "generatorURL": str(item.get("url") or ""),
        }
        if event == "resolved" or item.get("status") == "resolved":
            alert["endsAt"] = item.get("resolved_at") or now.isoformat()
        out.append(alert)
    return out


def _routes_of(routes: Routes, target: Target) -> tuple[list[str], list[str]]:
    """The routes naming ``target``: as a primary target, and as an escalation target."""
    primary, escalation = [], []
    for route in (routes.default, *routes.groups.values()):
        if target.name in route.targets:
            primary.append(route.name)
        if route.escalate is not None and target.name in route.escalate.targets:
            escalation.append(route.name)
    return primary, escalation


def current_alerts(
    conn: psycopg.Connection[Row], routes: Routes, target: Target, now: datetime, base_url: str
) -> list[dict[str, Any]]:
    """What ``target`` should hold now: the open, unsilenced incidents paged on its routes
    (on escalation routes: once escalated), and those resolved within two ``resend``
    periods, with their ``endsAt``."""
    primary, escalation = _routes_of(routes, target)
    if not primary and not escalation:
        return []
    rows = conn.execute(
        "SELECT DISTINCT s.incident_id FROM notify_state s JOIN incidents i"
        " ON i.id = s.incident_id"
        " WHERE (s.route = ANY(%(primary)s)"
        "        OR (s.route = ANY(%(escalation)s) AND s.escalated_at IS NOT NULL))"
        " AND ((i.status <> 'resolved' AND NOT i.silenced)"
        "      OR (i.status = 'resolved' AND i.resolved_at > %(since)s))",
        {"primary": primary, "escalation": escalation, "since": now - 2 * target.resend},
    ).fetchall()
    ids = [int(r["incident_id"]) for r in rows]
    if not ids:
        return []
    views = load_views(conn, ids)
    payload = render("repeated", target.name, views, base_url=base_url, tz=_UTC, now=now).payload
    return to_alerts(payload["incidents"], "repeated", now)
