"""Finding a terminal as callers say it: by id, by its digits, name, address or city.

In order, stopping at the first that finds something:

1. a query that is a terminal id finds that terminal alone (primary key);
2. digits alone (*34*) find the ids that contain them: first the id whose number they are
   (T-000034, index ``terminals_tid_number``), then ids ending with them, then the rest;
3. a query that starts some ids finds those (``lower(tid)`` pattern index); else letters
   and a number find the id with that number, zeros left out (*T-0004*, *t4*: T-000004);
4. every word of the query must start a word of the terminal's id, name, address or city,
   in any case and order: *Тверская 12*, *Казань Баумана*, *Каз Баум* (the full-text
   index ``terminals_search_words``; words of one or two characters must match whole,
   single letters such as *д.* are ignored), so a city beside a street narrows to it;
5. every word of three characters or more must occur anywhere in them (*верская*): the
   trigram index ``terminals_search_trgm`` when ``pg_trgm`` is available, else a scan of
   the registry;
6. with ``pg_trgm`` only, every word must be close to a word of them (*Баумона* for
   *Баумана*: trigram word similarity at least :data:`FUZZY_THRESHOLD`).

Best match first: the closest by trigram similarity to the whole query when ``pg_trgm``
is installed, then by id (when more than :data:`GATHER` match, which ones are listed is
arbitrary: the agent adds a word). Without ``pg_trgm`` steps 5 and 6 degrade to a scan and
nothing, and matches are listed by id.
"""

from __future__ import annotations

import re
from typing import Any, Final

from termwatch.settings import TID_RE
from termwatch.web.models import SearchHit
from termwatch.web.read import Conn

#: The same expression as the indexes of migration 0005.
SEARCH_TEXT: Final = "lower(t.tid || ' ' || t.name || ' ' || t.address || ' ' || t.city)"
#: The same expression as the index of migration 0009.
TID_NUMBER: Final = "ltrim(substring(t.tid from '[0-9]+$'), '0')"
MAX_WORDS: Final = 8
#: Matches gathered before sorting; beyond this many, which ones are listed is arbitrary.
GATHER: Final = 200
#: How close a misspelt word must be to a word of the terminal (pg_trgm word similarity).
FUZZY_THRESHOLD: Final = 0.5
_WORD: Final = re.compile(r"[^\s,;]+")
_SPOKEN_ID: Final = re.compile(r"([A-Za-z]+)-?([0-9]{1,12})")
#: The query's own words, parsed as the index parses the terminals', as a prefix query.
_WORDS_QUERY: Final = (
    "(SELECT to_tsquery('simple', string_agg("
    " quote_literal(lexeme) || CASE WHEN length(lexeme) > 2 THEN ':*' ELSE '' END, ' & '))"
    " FROM unnest(to_tsvector('simple', lower(%(words)s)))"
    " WHERE length(lexeme) > 1 OR lexeme ~ '^[0-9]$')"
)
#: Whether pg_trgm is installed, per database (host, port, name): it rarely changes.
_TRGM: dict[tuple[str, int, str], bool] = {}


def words_of(query: str) -> list[str]:
    """The words of a search query (split on spaces, commas and semicolons)."""
    return _WORD.findall(query)[:MAX_WORDS]


def _like(word: str) -> str:
    escaped = word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def has_trgm(conn: Conn) -> bool:
    """Whether the database has the pg_trgm extension (asked once per database)."""
    key = (conn.info.host, conn.info.port, conn.info.dbname)
    if key not in _TRGM:
        row = conn.execute("SELECT 1 AS found FROM pg_extension WHERE extname = 'pg_trgm'")
        _TRGM[key] = row.fetchone() is not None
    return _TRGM[key]


def search(conn: Conn, query: str, limit: int = 20) -> list[SearchHit]:
    """Terminals matching ``query`` (see the module's docstring), at most ``limit``."""
    words = words_of(query)
    if not words:
        return []
    exact = query.strip()
    trgm = has_trgm(conn)
    rank = f"similarity(lower(%(query)s), {SEARCH_TEXT}) DESC, " if trgm else ""
    base: dict[str, Any] = {"limit": limit, "query": " ".join(words)}
    if len(words) == 1 and TID_RE.fullmatch(exact):
        by_id = _hits(conn, "t.tid = %(exact)s", {"exact": exact, "limit": 1})
        if by_id:
            return by_id
        if exact.isdigit() and len(exact) <= 12:
            by_digits = _digits(conn, exact, limit)
            if by_digits:
                return by_digits
        prefix = {"prefix": _like(exact)[1:], "limit": limit}
        by_prefix = _hits(conn, "lower(t.tid) LIKE lower(%(prefix)s)", prefix)
        if by_prefix:
            return by_prefix
        spoken = _SPOKEN_ID.fullmatch(exact)
        if spoken:  # T-0004, T4: T-000004 with its zeros left out
            by_number = _hits(
                conn,
                f"{TID_NUMBER} = %(number)s AND lower(t.tid) LIKE lower(%(letters)s)",
                {"number": spoken[2].lstrip("0"), "letters": _like(spoken[1])[1:], "limit": limit},
            )
            if by_number:
                return by_number
    by_words = _hits(
        conn,
        f"to_tsvector('simple', {SEARCH_TEXT}) @@ {_WORDS_QUERY}",
        {**base, "words": " ".join(words)},
        rank=rank,
    )
    if by_words:
        return by_words
    long_words = [w for w in words if len(w) >= 3]
    if not long_words:
        return []
    params: dict[str, Any] = dict(base)
    conditions = []
    for i, word in enumerate(long_words):
        params[f"w{i}"] = _like(word)
        conditions.append(f"{SEARCH_TEXT} LIKE lower(%(w{i})s)")
    by_fragments = _hits(conn, " AND ".join(conditions), params, rank=rank, index_only=True)
    if by_fragments or not trgm:
        return by_fragments
    fuzzy: dict[str, Any] = dict(base)
    close = []
    for i, word in enumerate(long_words):
        fuzzy[f"w{i}"] = word.lower()
        close.append(f"%(w{i})s <%% {SEARCH_TEXT}")
    closeness = " + ".join(f"word_similarity(%(w{i})s, {SEARCH_TEXT})" for i in range(len(close)))
    return _hits(
        conn,
        " AND ".join(close),
        fuzzy,
        rank=f"{closeness} DESC, ",
        index_only=True,
        settings={"pg_trgm.word_similarity_threshold": str(FUZZY_THRESHOLD)},
    )


def _digits(conn: Conn, digits: str, limit: int) -> list[SearchHit]:
    """Ids containing ``digits``: the id whose number they are first, then ids ending with
    them, then the others, shortest first."""
    number = digits.lstrip("0")
    params = {"number": number, "contains": _like(digits), "ends": _like(digits)[:-1],
              "limit": limit}  # fmt: skip
    where = f"{TID_NUMBER} = %(number)s OR lower(t.tid) LIKE %(contains)s"
    rank = f"({TID_NUMBER} = %(number)s) DESC, (t.tid LIKE %(ends)s) DESC, length(t.tid), "
    gather = (
        f"(SELECT {_COLUMNS} FROM terminals t WHERE {TID_NUMBER} = %(number)s LIMIT 20)"
        f" UNION (SELECT {_COLUMNS} FROM terminals t WHERE {where} LIMIT {GATHER})"
    )
    return _hits(conn, "", params, rank=rank, gather=gather)


_COLUMNS: Final = "t.tid, t.name, t.address, t.city, t.region, t.service_group"


def _hits(
    conn: Conn,
    where: str,
    params: dict[str, Any],
    *,
    rank: str = "",
    index_only: bool = False,
    gather: str | None = None,
    settings: dict[str, str] | None = None,
) -> list[SearchHit]:
    """Terminals matching the SQL condition ``where`` (on ``t``), best ``rank`` first, then
    by id, with liveness.

    Matches are first gathered without an order (at most :data:`GATHER`), then sorted: asked
    for "the first ``limit`` by id" directly, the planner walks the primary key and filters
    row by row, which reads most of the registry for a rare word. ``index_only`` keeps the
    planner off a sequential scan for this one statement: it cannot estimate how many rows
    a fragment matches and underrates the cost of the expression per row, and a rare
    fragment it takes for a common one would read the whole registry (with no index to
    use, the scan still happens). ``settings`` are set for this statement alone.
    """
    found = gather or f"SELECT {_COLUMNS} FROM terminals t WHERE {where} LIMIT {GATHER}"
    sql = (
        f"WITH found AS MATERIALIZED ({found})"
        " SELECT f.*, s.online, s.last_seen FROM"
        f" (SELECT t.*, row_number() OVER (ORDER BY {rank}t.tid) AS pos FROM found t"
        f"  ORDER BY pos LIMIT %(limit)s) f"
        " LEFT JOIN terminal_state s ON s.tid = f.tid ORDER BY f.pos"
    )
    local = dict(settings or {})
    if index_only:
        local["enable_seqscan"] = "off"
    if local:
        # In pipeline mode these run in one transaction (implicit in autocommit mode), which
        # bounds the settings' life.
        with conn.pipeline():
            for name, value in local.items():
                conn.execute("SELECT set_config(%s, %s, true)", (name, value))
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
