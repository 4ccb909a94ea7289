"""Finding a registered terminal from the free-text address a customer gives.

Words are compared, not strings: case, punctuation, word order and the usual abbreviations
(``st.``, ``ул.``, ``д.``) do not matter, and the house number must agree. The registry is
narrowed in SQL by the address's most distinctive words, then scored here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from rules.journal import Conn

_WORD_RE: Final = re.compile(r"[^\W_]+", re.UNICODE)
#: Words that say nothing about which terminal it is.
_FILLER: Final = frozenset(
    {
        "street", "st", "str", "road", "rd", "avenue", "ave", "av", "prospect", "pr", "prt",
        "lane", "ln", "square", "sq", "building", "bldg", "house", "no", "the", "on", "at", "in",
        "near", "by", "of", "and", "terminal", "kiosk",
        "ул", "улица", "пр", "проспект", "пер", "переулок", "пл", "площадь", "д", "дом", "к",
        "корп", "корпус", "стр", "строение", "г", "город", "в", "на", "у", "около", "терминал",
    }
)  # fmt: skip
MIN_SCORE: Final = 0.6


@dataclass(frozen=True, slots=True)
class Candidate:
    tid: str
    score: float
    address: str


def words(text: str) -> list[str]:
    """Meaningful lower-case words and numbers of an address."""
    return [w for w in _WORD_RE.findall(text.lower()) if w not in _FILLER]


def score(query: list[str], target: list[str]) -> float:
    """Share of the query's words found in the target; numbers weigh double and a house
    number missing from the target rules the target out."""
    if not query:
        return 0.0
    have = set(target)
    total = found = 0.0
    for word in query:
        weight = 2.0 if word.isdigit() else 1.0
        total += weight
        if word in have:
            found += weight
        elif word.isdigit():
            return 0.0
    return found / total


def find_terminals(conn: Conn, address: str, limit: int = 5) -> list[Candidate]:
    """Registered terminals matching ``address``, best first, all scoring at least
    :data:`MIN_SCORE` and within 0.05 of the best (several when the address is ambiguous)."""
    query = words(address)
    if not query:
        return []
    # The longest words and the numbers are the most selective for narrowing the registry.
    keys = sorted(set(query), key=lambda w: (not w.isdigit(), -len(w)))[:3]
    patterns = [f"%{_escape(k)}%" for k in keys]
    rows = conn.execute(
        "SELECT tid, address, city, name FROM terminals"
        " WHERE lower(address || ' ' || city) LIKE ANY(%s) LIMIT 2000",
        (patterns,),
    ).fetchall()
    scored = []
    for row in rows:
        target = words(f"{row['address']} {row['city']}")
        value = score(query, target)
        if value >= MIN_SCORE:
            scored.append(Candidate(row["tid"], value, row["address"]))
    scored.sort(key=lambda c: (-c.score, c.tid))
    if not scored:
        return []
    best = scored[0].score
    return [c for c in scored if c.score >= best - 0.05][:limit]


def _escape(word: str) -> str:
    return word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
