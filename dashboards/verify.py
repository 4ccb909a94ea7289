"""Run every SQL query of the dashboards against a real database, as Grafana would.

Used by ``termwatch dashboards check`` (after a schema change, before a push) and by the
tests. Queries run as the read-only role ``termwatch_grafana`` when asked, inside a
read-only transaction that is rolled back, so a check never changes the database.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

from dashboards.kit import POSTGRES_UID
from dashboards.macros import MacroError, QueryContext, expand

GRAFANA_ROLE = "termwatch_grafana"


@dataclass(frozen=True, slots=True)
class PanelQuery:
    """One SQL query of a dashboard: a panel's target or a template variable's query."""

    dashboard: str  # the dashboard's uid
    panel: str  # the panel's title, or "variable <name>"
    ref_id: str
    raw_sql: str


@dataclass(frozen=True, slots=True)
class QueryResult:
    query: PanelQuery
    rows: int
    error: str | None  # None when the query ran
    columns: tuple[str, ...] = ()
    first_row: tuple[Any, ...] | None = None


def sql_queries(dashboard: Mapping[str, Any]) -> list[PanelQuery]:
    """Every query of ``dashboard`` (its JSON model) bound for the PostgreSQL data source."""
    uid = str(dashboard.get("uid", ""))
    found: list[PanelQuery] = []
    for panel in _panels(dashboard.get("panels", [])):
        panel_source = panel.get("datasource") or {}
        for target in panel.get("targets") or []:
            source = target.get("datasource") or panel_source
            if source.get("uid") == POSTGRES_UID and target.get("rawSql"):
                found.append(
                    PanelQuery(uid, str(panel.get("title", "")), target["refId"], target["rawSql"])
                )
    for variable in (dashboard.get("templating") or {}).get("list", []):
        source = variable.get("datasource") or {}
        query = variable.get("query")
        if source.get("uid") == POSTGRES_UID and isinstance(query, str) and query:
            found.append(PanelQuery(uid, f"variable {variable['name']}", "", query))
    return found


def _panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels") or [])  # panels inside a collapsed row


def run_queries(
    conn: psycopg.Connection[Any],
    queries: list[PanelQuery],
    ctx: QueryContext,
    *,
    as_role: str | None = GRAFANA_ROLE,
) -> list[QueryResult]:
    """Run each query in its own read-only transaction (rolled back) and report how it went.

    ``conn`` must not be inside a transaction. With ``as_role``, each query runs after
    ``SET LOCAL ROLE`` to that role, so missing grants show up as errors. Never raises for a
    failing query: its error is in the result.
    """
    results: list[QueryResult] = []
    for query in queries:
        try:
            text = expand(query.raw_sql, ctx)
        except MacroError as exc:
            results.append(QueryResult(query, 0, f"macro: {exc}"))
            continue
        results.append(_run_one(conn, query, text, as_role))
    return results


def _run_one(
    conn: psycopg.Connection[Any], query: PanelQuery, text: str, as_role: str | None
) -> QueryResult:
    try:
        with conn.transaction(force_rollback=True), conn.cursor() as cur:
            cur.execute("SET TRANSACTION READ ONLY")
            if as_role:
                cur.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(as_role)))
            cur.execute(text.encode())
            rows = cur.fetchall() if cur.description else []
            columns = tuple(c.name for c in cur.description or ())
    except psycopg.Error as exc:
        return QueryResult(query, 0, f"{type(exc).__name__}: {str(exc).strip()}")
    first = tuple(rows[0].values()) if rows and isinstance(rows[0], dict) else None
    if rows and first is None:
        first = tuple(rows[0])
    return QueryResult(query, len(rows), None, columns, first)
