"""The fleet registry: parse the CSV (telemetry.md, Fleet registry) and load it, all or nothing.

The file is UTF-8 (a byte-order mark is allowed), with the header row
``tid,name,address,city,region,lat,lon,model,service_group`` (any column order; no other
columns). ``tid``, ``name``, ``address``, ``city`` and ``region`` are required; ``lat`` and
``lon`` are optional but come together; ``model`` and ``service_group`` may be empty.
A bad file is refused as a whole, with the line number and reason of every error (up to
:data:`MAX_PROBLEMS`).

A file is read twice and never held in memory: once to check every line, once to stream
the rows into the database with COPY, so importing 200,000 terminals takes a few tens of
megabytes.
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Iterable, Iterator
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
    return list(terminals_of(io.StringIO(text, newline="")))


def terminals_of(lines: Iterable[str]) -> Iterator[Terminal]:
    """Yield the terminals of a registry CSV's lines (line endings kept) as they are read;
    after the last one, raise :class:`RegistryError` listing every problem found, if any.

    A consumer that acts on the terminals must therefore read to the end before it commits.
    """
    lines = iter(lines)
    reader = csv.reader(_without_bom(lines), strict=True)
    problems: list[tuple[int, str]] = []
    count = 0
    try:
        header = next(reader, None)
        if header is None or not any(h.strip() for h in header):
            raise RegistryError(1, f"a header row is required: {','.join(COLUMNS)}")
        names = [h.strip().lower() for h in header]
        _check_header(names)
        first_line: dict[str, int] = {}
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
            count += 1
            yield terminal
    except csv.Error as exc:
        problems.append((reader.line_num, f"not valid CSV: {exc}"))
    if problems:
        shown = problems[:MAX_PROBLEMS]
        raise RegistryError(*shown[0], problems=shown, more=len(problems) - len(shown))
    if not count:
        raise RegistryError(0, "the file lists no terminals")


def _without_bom(lines: Iterator[str]) -> Iterator[str]:
    first = next(lines, None)
    if first is not None:
        yield first.removeprefix("\ufeff")
        yield from lines


def file_lines(path: Path) -> Iterator[str]:
    """The lines of a UTF-8 file, decoded one by one (so that a bad byte is reported at its
    line); an unreadable or non-UTF-8 file is a :class:`RegistryError`."""
    try:
        stream = path.open("rb")
    except OSError as exc:
        raise RegistryError(0, f"cannot read {path}: {exc.strerror}") from None
    with stream:
        for number, raw in enumerate(stream, 1):
            try:
                yield raw.decode("utf-8")
            except UnicodeDecodeError:
                raise RegistryError(number, "not UTF-8 text") from None


def check_file(path: Path) -> int:
    """Read the whole file and count its terminals; raises :class:`RegistryError`."""
    return sum(1 for _ in terminals_of(file_lines(path)))


def read(path: Path) -> list[Terminal]:
    """Every terminal of a registry file, in memory (small files: the demo, tests)."""
    return list(terminals_of(file_lines(path)))


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
    """Insert new terminals and update known ones, in one transaction; count each.

    The rows are streamed with COPY into a temporary table and merged from there, so memory
    does not grow with the fleet. ``terminals`` may be :func:`terminals_of` a file: a
    :class:`RegistryError` it raises at the end rolls everything back. The table is
    analyzed after, so that plans see the fleet's real size.
    """
    names = [f.name for f in fields(Terminal)]
    columns = ", ".join(names)
    updates = ", ".join(f"{n} = EXCLUDED.{n}" for n in names if n != "tid")
    with conn.transaction():
        conn.execute(
            "CREATE TEMP TABLE registry_import (LIKE terminals INCLUDING DEFAULTS) ON COMMIT DROP"
        )
        with conn.cursor().copy(f"COPY registry_import ({columns}) FROM STDIN") as copy:
            for terminal in terminals:
                copy.write_row(astuple(terminal))
        row = conn.execute(
            f"WITH merged AS (INSERT INTO terminals ({columns})"
            f" SELECT {columns} FROM registry_import"
            f" ON CONFLICT (tid) DO UPDATE SET {updates}, updated_at = now()"
            " RETURNING (xmax = 0) AS inserted)"
            " SELECT count(*) FILTER (WHERE inserted) AS inserted,"
            " count(*) FILTER (WHERE NOT inserted) AS updated FROM merged"
        ).fetchone()
        conn.execute("ANALYZE terminals")
    assert row is not None
    return ImportResult(int(row["inserted"]), int(row["updated"]))
