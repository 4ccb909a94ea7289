"""``termwatch complaints import FILE.csv``: complaints exported from a CRM, all or nothing.

Columns are the JSON fields of ``POST /api/v1/complaints`` (api.md); ``ref``,
``received_at``, ``category`` and ``occurred_at`` are required, and ``tid`` or ``address``.
An empty cell is an absent field. Every line is checked before anything is stored; a bad
file is refused with each bad line's number and reason (never its content: a line may hold
a customer's number).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Final

import msgspec

from rules.intake import ComplaintIntake
from rules.journal import Conn
from terminals.contract import Complaint
from termwatch.metrics import MESSAGES

COLUMNS: Final = (
    "ref",
    "received_at",
    "channel",
    "category",
    "tid",
    "address",
    "occurred_at",
    "amount_minor",
    "currency",
    "customer",
    "text",
)
REQUIRED: Final = ("ref", "received_at", "category", "occurred_at")
MAX_ERRORS: Final = 20
MAX_BYTES: Final = 200 * 1024 * 1024


class ComplaintFileError(ValueError):
    """The file is refused; ``errors`` are ``line N: reason`` strings."""

    def __init__(self, path: Path, errors: list[str]) -> None:
        super().__init__(f"{path}: " + "; ".join(errors))
        self.errors = errors


@dataclass(frozen=True, slots=True)
class ImportSummary:
    read: int
    created: int
    known: int
    matched: int
    attached: int


def _reason(exc: msgspec.ValidationError) -> str:
    """msgspec's message, ``- at `$.field``` turned into ``field: ...``."""
    text = str(exc)
    message, sep, where = text.rpartition(" - at `$.")
    if sep:
        return f"{where.rstrip('`')}: {message}"
    return text


def read_complaints(path: Path) -> list[Complaint]:
    """Every complaint of the file, checked. Raises :class:`ComplaintFileError`."""
    try:
        if path.stat().st_size > MAX_BYTES:
            raise ComplaintFileError(path, [f"larger than {MAX_BYTES // 2**20} MiB"])
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise ComplaintFileError(path, [f"cannot read: {exc.strerror}"]) from None
    except UnicodeDecodeError:
        raise ComplaintFileError(path, ["not UTF-8 text"]) from None
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        raise ComplaintFileError(path, ["line 1: empty file, a header row is required"]) from None
    except csv.Error as exc:
        raise ComplaintFileError(path, [f"line 1: {exc}"]) from None
    names = [h.strip() for h in header]
    errors = [f"line 1: unknown column {n!r}" for n in names if n not in COLUMNS]
    errors += [f"line 1: missing column {n!r}" for n in REQUIRED if n not in names]
    if len(set(names)) != len(names):
        errors.append("line 1: a column appears twice")
    if errors:
        raise ComplaintFileError(path, errors)
    complaints: list[Complaint] = []
    refs: dict[str, int] = {}
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            errors.append(f"line {reader.line_num}: {exc}")
            break
        line = reader.line_num
        if not any(c.strip() for c in cells):
            continue
        if len(cells) != len(names):
            errors.append(f"line {line}: {len(cells)} cells, the header has {len(names)}")
            continue
        body: dict[str, Any] = {
            n: c.strip() for n, c in zip(names, cells, strict=True) if c.strip()
        }
        if "amount_minor" in body:
            try:
                body["amount_minor"] = int(body["amount_minor"])
            except ValueError:
                errors.append(f"line {line}: amount_minor: not a whole number of minor units")
                continue
        try:
            complaint = msgspec.convert(body, Complaint)
        except msgspec.ValidationError as exc:
            errors.append(f"line {line}: {_reason(exc)}")
            continue
        if complaint.ref in refs:
            errors.append(f"line {line}: ref repeats line {refs[complaint.ref]}")
            continue
        refs[complaint.ref] = line
        complaints.append(complaint)
        if len(errors) >= MAX_ERRORS:
            break
    if errors:
        MESSAGES.labels("complaints", "rejected").inc(len(errors))
        raise ComplaintFileError(path, errors[:MAX_ERRORS])
    return complaints


def import_complaints(
    conn: Conn, intake: ComplaintIntake, path: Path, now: datetime
) -> ImportSummary:
    """Check the whole file, then store every complaint in one transaction.

    Raises :class:`ComplaintFileError` (nothing stored). Complaints already known by ref are
    left as they were.
    """
    complaints = read_complaints(path)
    created = known = matched = attached = 0
    with conn.transaction():
        for complaint in complaints:
            result = intake.submit(conn, complaint, now)
            if not result.created:
                known += 1
                continue
            created += 1
            matched += result.matched_op_id is not None
            attached += result.incident_id is not None
    return ImportSummary(len(complaints), created, known, matched, attached)
