"""The fleet registry: parse the CSV (telemetry.md, Fleet registry) and load it, all or nothing.

The file is UTF-8 (a byte-order mark is allowed), with the header row
``tid,name,address,city,region,lat,lon,model,service_group`` (any column order; no other
columns). ``tid``, ``name``, ``address``, ``city`` and ``region`` are required; ``lat`` and
``lon`` are optional but come together; ``model`` and ``service_group`` may be empty.
A bad file is refused as a whole with the line number and the reason of its first error.
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Iterable
from dataclasses import astuple, dataclass, fields
from pathlib import Path
from typing import Final

import psycopg

from termwatch.db import Row

COLUMNS: Final = (
    "tid",
    "name",
    "address",
    "city",
    "region",
    "lat",
    "lon",
    "model",
    "service_group",
)
REQUIRED: Final = ("tid", "name", "address", "city", "region")
_TID = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
_MAX_TEXT: Final = 500


#: Problems reported at most for one refused file (the rest are counted).
MAX_PROBLEMS: Final = 20


class RegistryError(ValueError):
    """The file is refused; ``line`` is its 1-based line number (0: the file as a whole).

    ``problems`` lists every ``(line, reason)`` found, up to :data:`MAX_PROBLEMS`, the first
    being ``(line, reason)``; ``more`` counts those left out.
    """

    def __init__(
        self, line: int, reason: str, problems: list[tuple[int, str]] | None = None, more: int = 0
    ) -> None:
        super().__init__(f"line {line}: {reason}" if line else reason)
        self.line = line
        self.reason = reason
        self.problems = problems or [(line, reason)]
        self.more = more


@dataclass(frozen=True, slots=True)
class Terminal:
    tid: str
    name: str
    address: str
    city: str
    region: str
    lat: float | None
    lon: float | None
    model: str
    service_group: str


@dataclass(frozen=True, slots=True)
class ImportResult:
    inserted: int
    updated: int


def parse(text: str) -> list[Terminal]:
    """The terminals of a registry CSV, in file order; raises :class:`RegistryError`."""
    text = text.removeprefix("\ufeff")
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader, None)
        if header is None or not any(h.strip() for h in header):
            raise RegistryError(1, f"a header row is required: {','.join(COLUMNS)}")
        names = [h.strip().lower() for h in header]
        _check_header(names)
        terminals: list[Terminal] = []
        first_line: dict[str, int] = {}
        problems: list[tuple[int, str]] = []
        for values in reader:
            line = reader.line_num
            if not any(v.strip() for v in values):
                continue
            try:
                if len(values) != len(names):
                    raise RegistryError(line, f"{len(values)} fields, the header has {len(names)}")
                row = dict(zip(names, (v.strip() for v in values), strict=True))
                terminal = _terminal(row, line)
                if terminal.tid in first_line:
                    raise RegistryError(
                        line, f"tid {terminal.tid} is already on line {first_line[terminal.tid]}"
                    )
            except RegistryError as exc:
                problems.append((exc.line, exc.reason))
                continue
            first_line[terminal.tid] = line
            terminals.append(terminal)
    except csv.Error as exc:
        problems.append((reader.line_num, f"not valid CSV: {exc}"))
    if problems:
        shown = problems[:MAX_PROBLEMS]
        raise RegistryError(*shown[0], problems=shown, more=len(problems) - len(shown))
    if not terminals:
        raise RegistryError(0, "the file lists no terminals")
    return terminals


def read(path: Path) -> list[Terminal]:
    """:func:`parse` a file; an unreadable or non-UTF-8 file is a :class:`RegistryError`."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise RegistryError(0, f"cannot read {path}: {exc.strerror}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise RegistryError(line, "not UTF-8 text") from None
    return parse(text)


def _check_header(names: list[str]) -> None:
    unknown = [n for n in names if n not in COLUMNS]
    if unknown:
        raise RegistryError(1, f"unknown column {unknown[0]!r}; columns are {','.join(COLUMNS)}")
    missing = [c for c in COLUMNS if c not in names]
    if missing:
        raise RegistryError(1, f"missing column {missing[0]!r}")
    repeated = [n for n in names if names.count(n) > 1]
    if repeated:
        raise RegistryError(1, f"column {repeated[0]!r} appears twice")


def _terminal(row: dict[str, str], line: int) -> Terminal:
    for name in REQUIRED:
        if not row[name]:
            raise RegistryError(line, f"{name} is empty")
    for name, value in row.items():
        if len(value) > _MAX_TEXT:
            raise RegistryError(line, f"{name} is longer than {_MAX_TEXT} characters")
        if "\x00" in value:
            raise RegistryError(line, f"{name} contains a NUL character")
    if not _TID.match(row["tid"]):
        raise RegistryError(line, f"tid {row['tid']!r} must be 1-32 letters, digits, '_' or '-'")
    lat = _coordinate(row["lat"], "lat", 90.0, line)
    lon = _coordinate(row["lon"], "lon", 180.0, line)
    if (lat is None) != (lon is None):
        raise RegistryError(line, "lat and lon must be given together")
    return Terminal(
        tid=row["tid"],
        name=row["name"],
        address=row["address"],
        city=row["city"],
        region=row["region"],
        lat=lat,
        lon=lon,
        model=row["model"],
        service_group=row["service_group"],
    )


def _coordinate(value: str, name: str, limit: float, line: int) -> float | None:
    if not value:
        return None
    try:
        number = float(value)
    except ValueError:
        raise RegistryError(line, f"{name} {value!r} is not a number") from None
    if not math.isfinite(number) or not -limit <= number <= limit:
        raise RegistryError(line, f"{name} {value} is outside -{limit:g}..{limit:g}")
    return number


def load(conn: psycopg.Connection[Row], terminals: Iterable[Terminal]) -> ImportResult:
    """Insert new terminals and update known ones, in one transaction; count each."""
    names = [f.name for f in fields(Terminal)]
    updates = ", ".join(f"{n} = EXCLUDED.{n}" for n in names if n != "tid")
    inserted = updated = 0
    with conn.transaction(), conn.cursor() as cur:
        cur.executemany(
            f"INSERT INTO terminals ({', '.join(names)}) VALUES ({', '.join(['%s'] * len(names))})"
            f" ON CONFLICT (tid) DO UPDATE SET {updates}, updated_at = now()"
            " RETURNING (xmax = 0) AS inserted",
            [astuple(t) for t in terminals],
            returning=True,
        )
        while True:
            row = cur.fetchone()
            assert row is not None
            if row["inserted"]:
                inserted += 1
            else:
                updated += 1
            if not cur.nextset():
                break
    return ImportResult(inserted, updated)
