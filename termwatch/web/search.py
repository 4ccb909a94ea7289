"""Finding a terminal by id, name, address or city in one step.

In order, stopping at the first that finds something:

1. a query that is a terminal id finds that terminal alone (primary key);
2. a query that starts some ids finds those (``lower(tid)`` pattern index);
3. every word of the query must start a word of the terminal's id, name, address or city,
   in any case and order: *Тверская 12*, *Каз Баум*, *Пятёрочка 0042* (the full-text
   index ``terminals_search_words``; words of one or two characters must match whole,
   single letters such as *д.* are ignored);
4. every word of three characters or more must occur anywhere in them (*верская*): the
   trigram index ``terminals_search_trgm`` when ``pg_trgm`` is available, else a scan of
   the registry, which is why this comes last.

Matches are listed by id (when more than 200 match, some 20 of them: the agent adds a
word). Ids, the word index and its statistics are exact enough for the planner; the
trigram step is kept off sequential scans (see :func:`_hits`).
"""

from __future__ import annotations

import re
from typing import Any, Final

from termwatch.settings import TID_RE
from termwatch.web.models import SearchHit
from termwatch.web.read import Conn

#: The same expression as the indexes of migration 0005.
SEARCH_TEXT: Final = "lower(t.tid || ' ' || t.name || ' ' || t.address || ' ' || t.city)"
MAX_WORDS: Final = 8
#: Matches gathered before sorting; beyond this many, which ones are listed is arbitrary.
GATHER: Final = 200
_WORD: Final = re.compile(r"[^\s,;]+")
#: The query's own words, parsed as the index parses the terminals', as a prefix query.
_WORDS_QUERY: Final = (
    "(SELECT to_tsquery('simple', string_agg("
    " quote_literal(lexeme) || CASE WHEN length(lexeme) > 2 THEN ':*' ELSE '' END, ' & '))"
    " FROM unnest(to_tsvector('simple', lower(%(words)s)))"
    " WHERE length(lexeme) > 1 OR lexeme ~ '^[0-9]$')"
)


def words_of(query: str) -> list[str]:
    """The words of a search query (split on spaces, commas and semicolons)."""
    return _WORD.findall(query)[:MAX_WORDS]


def _like(word: str) -> str:
    escaped = word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def search(conn: Conn, query: str, limit: int = 20) -> list[SearchHit]:
    """Terminals matching ``query`` (see the module's docstring), at most ``limit``."""
    words = words_of(query)
    if not words:
        return []
    exact = query.strip()
    if len(words) == 1 and TID_RE.fullmatch(exact):
        by_id = _hits(conn, "t.tid = %(exact)s", {"exact": exact, "limit": 1})
        if by_id:
            return by_id
        prefix = {"prefix": _like(exact)[1:], "limit": limit}
        by_prefix = _hits(conn, "lower(t.tid) LIKE lower(%(prefix)s)", prefix)
        if by_prefix:
            return by_prefix
    by_words = _hits(
        conn,
        f"to_tsvector('simple', {SEARCH_TEXT}) @@ {_WORDS_QUERY}",
        {"words": " ".join(words), "limit": limit},
    )
    if by_words:
        return by_words
    long_words = [w for w in words if len(w) >= 3]
    if not long_words:
        return []
    params: dict[str, Any] = {"limit": limit}
    conditions = []
    for i, word in enumerate(long_words):
        params[f"w{i}"] = _like(word)
        conditions.append(f"{SEARCH_TEXT} LIKE lower(%(w{i})s)")
    return _hits(conn, " AND ".join(conditions), params, index_only=True)


def _hits(
    conn: Conn, where: str, params: dict[str, Any], *, index_only: bool = False
) -> list[SearchHit]:
    """Terminals matching the SQL condition ``where`` (on ``t``), by id, with liveness.

    Matches are first gathered without an order (at most :data:`GATHER`), then sorted: asked
    for "the first ``limit`` by id" directly, the planner walks the primary key and filters
    row by row, which reads most of the registry for a rare word. ``index_only`` keeps the
    planner off a sequential scan for this one statement: it cannot estimate how many rows
    a fragment matches and underrates the cost of the expression per row, and a rare
    fragment it takes for a common one would read the whole registry (with no index to
    use, the scan still happens).
    """
    sql = (
        "WITH found AS MATERIALIZED ("
        f" SELECT t.tid, t.name, t.address, t.city, t.region, t.service_group"
        f" FROM terminals t WHERE {where} LIMIT {GATHER})"
        " SELECT f.*, s.online, s.last_seen"
        " FROM (SELECT * FROM found ORDER BY tid LIMIT %(limit)s) f"
        " LEFT JOIN terminal_state s ON s.tid = f.tid ORDER BY f.tid"
    )
    if index_only:
        # In pipeline mode both run in one transaction (implicit in autocommit mode), which
        # bounds the setting's life.
        with conn.pipeline():
            conn.execute("SELECT set_config('enable_seqscan', 'off', true)")
            cursor = conn.execute(sql, params)
        rows = cursor.fetchall()
    else:
        rows = conn.execute(sql, params).fetchall()
    return [
        SearchHit(
            tid=r["tid"],
            name=r["name"],
            address=r["address"],
            city=r["city"],
            region=r["region"],
            service_group=r["service_group"],
            online=r["online"],
            last_seen=r["last_seen"],
        )
        for r in rows
    ]
