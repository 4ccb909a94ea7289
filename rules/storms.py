"""Storms: many terminals of one region opening one kind at once become one regional incident.

A payment-host outage makes every terminal of a region fail within minutes. Instead of
paging once per terminal, the terminals' incidents (the children) are put under one parent
incident (``is_group``, ``tid`` ``region:<name>``) that is the one paged. Children are still
recorded, with ``parent_id`` set and a ``grouped`` log row. The parent resolves when its
last child does. Its counters are the sums of its children's.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from rules import silences
from rules.journal import RULES_ACTOR, Changes, Conn, log_action
from rules.model import Rule, RuleSet

REGION_PREFIX = "region:"


def group(
    conn: Conn,
    rules: RuleSet,
    rule: Rule,
    incident: Mapping[str, Any],
    now: datetime,
    changes: Changes,
) -> int | None:
    """Put ``incident`` under its region's parent if that region is in a storm of its kind.

    Creates the parent when ``storm.min_terminals`` incidents of the kind opened in the region
    within ``storm.window``; then groups them all. Returns the parent id, or None.
    """
    region = incident["region"]
    kind = incident["kind"]
    parent_tid = f"{REGION_PREFIX}{region}"
    # Openings of one region and kind take turns until their transactions end, so that the
    # later one counts the earlier one's incident: no storm is missed between two collectors.
    conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 7))", (f"{region}\x1f{kind}",))
    parent = conn.execute(
        "SELECT id FROM incidents WHERE tid = %s AND kind = %s AND status <> 'resolved'",
        (parent_tid, kind),
    ).fetchone()
    since = incident["opened_at"] - rules.storm.window
    if parent is None:
        count = conn.execute(
            "SELECT count(*) AS n FROM incidents WHERE region = %s AND kind = %s"
            " AND status <> 'resolved' AND NOT is_group AND parent_id IS NULL"
            " AND (opened_at > %s OR id = %s)",
            (region, kind, since, incident["id"]),
        ).fetchone()
        if count is None or count["n"] < rules.storm.min_terminals:
            return None
        at = incident["opened_at"]
        silenced = silences.matches(
            conn, tid=None, region=region, kind=kind, now=now, severity=rule.severity
        )
        parent = conn.execute(
            "INSERT INTO incidents (tid, kind, severity, status, title, rule, region, is_group,"
            " opened_at, last_fault_at, detected_at, silenced, details)"
            " VALUES (%s, %s, %s, 'open', %s, %s, %s, true, %s, %s, %s, %s, %s)"
            " ON CONFLICT (tid, kind) WHERE status <> 'resolved' DO NOTHING RETURNING id",
            (
                parent_tid,
                kind,
                rule.severity,
                f"{rule.title} in region {region}",
                rule.name,
                region,
                at,
                at,
                now,
                silenced,
                json.dumps({"storm": True}),
            ),
        ).fetchone()
        if parent is not None:
            log_action(
                conn,
                parent["id"],
                at,
                "opened",
                RULES_ACTOR,
                f"{count['n']} terminals of region {region} opened {kind} within "
                f"{int(rules.storm.window.total_seconds())} s",
            )
            changes.opened.append((kind, rule.severity))
        else:
            parent = conn.execute(
                "SELECT id FROM incidents WHERE tid = %s AND kind = %s AND status <> 'resolved'",
                (parent_tid, kind),
            ).fetchone()
            if parent is None:
                return None
    parent_id = int(parent["id"])
    children = conn.execute(
        "UPDATE incidents SET parent_id = %s, updated_at = now() WHERE region = %s AND kind = %s"
        " AND status <> 'resolved' AND NOT is_group AND parent_id IS NULL"
        " AND (opened_at > %s OR id = %s)"
        " RETURNING id, opened_at, complaints, operations_affected, money_at_risk_minor",
        (parent_id, region, kind, since, incident["id"]),
    ).fetchall()
    for child in children:
        log_action(conn, child["id"], now, "grouped", RULES_ACTOR, f"grouped under #{parent_id}")
    if children:
        conn.execute(
            "UPDATE incidents SET complaints = complaints + %s,"
            " operations_affected = operations_affected + %s,"
            " money_at_risk_minor = money_at_risk_minor + %s,"
            " opened_at = LEAST(opened_at, %s), updated_at = now() WHERE id = %s",
            (
                sum(c["complaints"] for c in children),
                sum(c["operations_affected"] for c in children),
                sum(c["money_at_risk_minor"] for c in children),
                min(c["opened_at"] for c in children),
                parent_id,
            ),
        )
    return parent_id


def resolve_parent_if_done(
    conn: Conn, parent_id: int, at: datetime, actor: str, changes: Changes
) -> bool:
    """Resolve a group whose children are all resolved."""
    row = conn.execute(
        "UPDATE incidents p SET status = 'resolved', resolved_at = GREATEST(%s, p.opened_at),"
        " resolved_by = %s, check_at = NULL, updated_at = now()"
        " WHERE p.id = %s AND p.is_group AND p.status <> 'resolved' AND NOT EXISTS"
        " (SELECT 1 FROM incidents c WHERE c.parent_id = p.id AND c.status <> 'resolved')"
        " RETURNING id, kind, severity",
        (at, actor, parent_id),
    ).fetchone()
    if row is None:
        return False
    log_action(conn, parent_id, at, "resolved", actor, "every terminal of the group recovered")
    changes.resolved.append((row["kind"], row["severity"]))
    return True
