"""Ground truth of a simulation: what was injected and what customers complained about.

A JSON-lines file; every line has ``type``:

* ``run`` (first line): scenario, seed, start, end, terminals, the run tag;
* ``fault``: one fault on one terminal, ``start``/``end`` in event time (RFC 3339);
* ``complaint``: one complaint by ``ref``, its true cause (an incident kind, or null for a
  complaint that matches nothing) and the operation it is about (or null).

:func:`read_truth` refuses a malformed line with its line number.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Literal

import msgspec


class RunRecord(msgspec.Struct, kw_only=True, tag_field="type", tag="run"):
    scenario: str
    seed: int
    start: datetime
    end: datetime
    terminals: int
    tid_prefix: str
    topic_root: str
    run_tag: str = ""  # in every message id, op_id and complaint ref of the run (ids.py)
    heartbeat_s: int = 60  # the terminals' heartbeat interval

    def tids(self) -> list[str]:
        """Every terminal id of the run's fleet."""
        return [f"{self.tid_prefix}-{n:06d}" for n in range(1, self.terminals + 1)]


class FaultRecord(msgspec.Struct, kw_only=True, tag_field="type", tag="fault"):
    """One fault on one terminal. ``end`` is when the devices were restored (or the run end).

    ``observable`` is False when nothing a rule can see happened (payment failures with
    fewer than two failed payments, a silent fault with fewer than two complaints).
    """

    fault_id: str
    tid: str
    kind: str
    start: datetime
    end: datetime
    source: Literal["scenario", "natural"]
    scenario_id: str | None = None  # the ``id`` of the scenario's fault entry
    group: str | None = None  # set on every fault of a regional event
    region: str | None = None
    flapping: bool = False
    mode: str | None = None  # terminal_offline: network | hang
    ended_by: str = "end"  # engineer | collection | recovery | end (still on at the run end)
    evidence: int = 0  # failed payments or complaints it caused
    observable: bool = True
    #: When the evidence a rule can see arrived: timed-out payments (payment_failures),
    #: complaints received (silent_fault); empty for the other kinds.
    evidence_at: list[datetime] = []
    #: terminal_offline: the terminal's last message before the fault (None: none in the run).
    last_message: datetime | None = None


class ComplaintRecord(msgspec.Struct, kw_only=True, tag_field="type", tag="complaint"):
    ref: str
    tid: str
    true_cause_kind: str | None
    op_id: str | None
    fault_id: str | None
    category: str
    occurred_at: datetime  # the real time (the complaint carries the remembered one)
    received_at: datetime
    by_address: bool


TruthRecord = RunRecord | FaultRecord | ComplaintRecord

_ENCODER = msgspec.json.Encoder()
_DECODER = msgspec.json.Decoder(TruthRecord)


class TruthError(ValueError):
    """A ground-truth file is missing or malformed; names the line."""


def write_truth(records: Iterable[TruthRecord], path: Path) -> int:
    """Write the records as JSON lines; returns how many."""
    n = 0
    with path.open("wb") as out:
        for record in records:
            out.write(_ENCODER.encode(record) + b"\n")
            n += 1
    return n


def encode_record(record: TruthRecord) -> bytes:
    return _ENCODER.encode(record)


def read_truth(path: Path) -> tuple[RunRecord, list[FaultRecord], list[ComplaintRecord]]:
    """The run header, faults and complaints of a truth file. Raises TruthError."""
    try:
        lines = path.read_bytes().splitlines()
    except FileNotFoundError:
        raise TruthError(f"{path}: no such file") from None
    run: RunRecord | None = None
    faults: list[FaultRecord] = []
    complaints: list[ComplaintRecord] = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = _DECODER.decode(line)
        except msgspec.DecodeError as exc:
            raise TruthError(f"{path}:{number}: {exc}") from None
        if isinstance(record, RunRecord):
            if run is not None:
                raise TruthError(f"{path}:{number}: a second run record")
            run = record
        elif isinstance(record, FaultRecord):
            faults.append(record)
        else:
            complaints.append(record)
    if run is None:
        raise TruthError(f"{path}: no run record (is this a ground-truth file?)")
    return run, faults, complaints
