"""``termwatch evaluate`` against a database filled directly with incident rows."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from msgspec.structs import replace

from rules.config import default_rules
from simulator.engine import World
from simulator.evaluate import evaluate, evaluate_command, percentile, report, rule_met_at
from simulator.scenario import load_scenario
from simulator.truth import ComplaintRecord, FaultRecord, RunRecord, write_truth
from termwatch.db import Row
from termwatch.settings import Settings

T0 = datetime(2026, 5, 4, 10, 0, tzinfo=UTC)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def fault(
    fid: str, tid: str, kind: str, start: float, end: float, observable: bool = True
) -> FaultRecord:
    return FaultRecord(
        fault_id=fid,
        tid=tid,
        kind=kind,
        start=at(start),
        end=at(end),
        source="scenario",
        observable=observable,
    )


def complaint(ref: str, tid: str, cause: str | None, op_id: str | None) -> ComplaintRecord:
    return ComplaintRecord(
        ref=ref, tid=tid, true_cause_kind=cause, op_id=op_id, fault_id=None, category="no_receipt",
        occurred_at=at(5), received_at=at(20), by_address=False,
    )  # fmt: skip


def incident(
    db: psycopg.Connection[Row], tid: str, kind: str, opened: float, *, severity: str = "major",
    is_group: bool = False, parent: int | None = None, detected: float | None = None,
) -> int:  # fmt: skip
    row = db.execute(
        "INSERT INTO incidents (tid, kind, severity, status, title, opened_at, last_fault_at,"
        " is_group, parent_id, detected_at)"
        " VALUES (%s, %s, %s, 'resolved', 'test', %s, %s, %s, %s, %s) RETURNING id",
        (
            tid,
            kind,
            severity,
            at(opened),
            at(opened),
            is_group,
            parent,
            at(detected) if detected is not None else None,
        ),
    ).fetchone()
    assert row is not None
    return int(row["id"])


def stored_complaint(
    db: psycopg.Connection[Row], ref: str, tid: str, op_id: str | None, incident_id: int | None
) -> None:
    db.execute(
        "INSERT INTO complaints (ref, received_at, channel, category, tid, occurred_at,"
        " matched_op_id, incident_id)"
        " VALUES (%s, %s, 'phone', 'no_receipt', %s, %s, %s, %s)",
        (ref, at(20), tid, at(5), op_id, incident_id),
    )


@pytest.fixture
def truth(tmp_path: Path) -> Path:
    path = tmp_path / "truth.jsonl"
    write_truth(
        [
            RunRecord(
                scenario="x",
                seed=1,
                start=T0,
                end=at(120),
                terminals=9,
                tid_prefix="T",
                topic_root="r",
            ),
            fault("a", "T-000001", "printer_paper_out", 10, 40),
            fault("b", "T-000002", "printer_paper_out", 10, 40),
            fault("c", "T-000003", "terminal_offline", 30, 50),
            fault("d", "T-000004", "payment_failures", 30, 50),
            fault("e", "T-000005", "payment_failures", 30, 50),
            fault("f", "T-000006", "payment_failures", 30, 50, observable=False),
            complaint("C1", "T-000001", "printer_paper_out", "op-1"),
            complaint("C2", "T-000004", "payment_failures", "op-2"),
            complaint("C3", "T-000007", None, None),
            complaint("C4", "T-000002", "printer_paper_out", "op-4"),
        ],
        path,
    )
    return path


def test_it_scores_detections_false_and_duplicate_incidents_and_complaints(
    db: psycopg.Connection[Row], truth: Path
) -> None:
    paper = incident(db, "T-000001", "printer_paper_out", 11)  # detected after 60 s
    incident(db, "T-000001", "printer_paper_out", 20)  # the same fault again: a duplicate
    incident(db, "T-000003", "terminal_offline", 33)  # 180 s
    incident(db, "T-000003", "terminal_offline", 54)  # within the 5 min tolerance: duplicate
    incident(db, "T-000008", "printer_jam", 50)  # no such fault: false
    incident(db, "T-000001", "printer_paper_out", 80)  # after the fault: false
    incident(db, "T-000009", "printer_jam", 121)  # after the run, matching nothing: not counted
    incident(db, "T-000002", "printer_paper_low", 15, severity="minor")  # maintenance: ignored
    parent = incident(db, "region:volga", "payment_failures", 31, is_group=True)
    child = incident(db, "T-000004", "payment_failures", 31, parent=parent)  # 60 s
    incident(db, "T-000005", "payment_failures", 32, parent=parent)  # 120 s
    stored_complaint(db, "C1", "T-000001", "op-1", paper)  # right on both
    stored_complaint(db, "C2", "T-000004", "op-2", parent)  # the regional parent is right too
    stored_complaint(db, "C3", "T-000007", "op-9", None)  # linked to an operation it is not about
    # C4 never reached termwatch

    result = evaluate(db, truth, timedelta(minutes=5))

    paper_score = result.kinds["printer_paper_out"]
    assert (paper_score.faults, paper_score.detected, paper_score.incidents) == (2, 1, 3)
    assert (paper_score.false, paper_score.duplicates) == (1, 1)
    payments = result.kinds["payment_failures"]
    assert (payments.faults, payments.observable, payments.detected, payments.false) == (3, 2, 2, 0)
    o = result.overall
    assert (o.faults, o.observable, o.detected) == (6, 5, 4)
    assert (o.incidents, o.matching, o.false, o.duplicates) == (8, 6, 2, 2)
    assert sorted(o.ttd_s) == [60.0, 60.0, 120.0, 180.0]
    assert result.after_run == 1
    c = result.complaints
    assert (c.total, c.found, c.op_right, c.incident_right, c.both_right) == (4, 3, 2, 3, 2)
    lines = report(result)
    assert (
        lines[-1] == "evaluate: precision 0.750 recall 0.800 ttd_p95 180 s complaints_matched 0.500"
    )
    assert any(line.startswith("printer_paper_out") for line in lines)
    del child


def test_it_reports_honestly_that_nothing_was_detected(
    settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    world = World(load_scenario("tiny"), 7)
    for _ in world.emissions():
        pass
    path = tmp_path / "truth.jsonl"
    write_truth(world.truth(), path)
    code = evaluate_command(argparse.Namespace(truth=str(path), tolerance="5m"), settings)
    out = capsys.readouterr().out.splitlines()
    assert code == 0
    assert "nothing was detected" in out[-2]
    assert out[-1] == "evaluate: precision n/a recall 0.000 ttd_p95 n/a s complaints_matched 0.000"


def test_a_missing_or_bad_truth_file_is_a_clear_error(
    settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = evaluate_command(
        argparse.Namespace(truth=str(tmp_path / "none.jsonl"), tolerance="5m"), settings
    )
    assert code == 2
    assert "no such file" in capsys.readouterr().err
    code = evaluate_command(
        argparse.Namespace(truth=str(tmp_path / "none.jsonl"), tolerance="soon"), settings
    )
    assert code == 2
    assert "--tolerance" in capsys.readouterr().err


def test_percentiles_are_nearest_rank() -> None:
    assert percentile([], 95) is None
    assert percentile([5.0], 50) == 5.0
    values = [float(v) for v in range(1, 21)]
    assert percentile(values, 50) == 10.0
    assert percentile(values, 95) == 19.0


def test_time_to_detect_counts_from_when_the_fault_met_its_rule() -> None:
    rules = default_rules()

    def met(f: FaultRecord) -> datetime:
        return rule_met_at(f, rules.by_kind(f.kind), 60)

    paper = fault("p", "T-000001", "printer_paper_out", 10, 40)
    assert met(paper) == at(10)  # the state shows at once
    payments = fault("d", "T-000004", "payment_failures", 30, 90)
    # two timed-out payments within 30 minutes: met at the second of a close pair
    assert met(replace(payments, evidence_at=[at(31), at(70), at(85)])) == at(85)
    assert met(replace(payments, evidence_at=[at(31), at(45)])) == at(45)
    assert met(replace(payments, evidence_at=[at(31)])) == at(30)  # never enough: its start
    silent = fault("s", "T-000005", "silent_fault", 0, 600)
    # three complaints within 3 hours
    assert met(replace(silent, evidence_at=[at(60), at(100), at(300), at(330), at(350)])) == at(350)
    offline = fault("o", "T-000003", "terminal_offline", 30, 50)
    assert met(offline) == at(30)  # a network loss: the will says offline at once
    hang = replace(offline, mode="hang", last_message=at(29.5))
    assert met(hang) == at(32.5)  # 3 heartbeat intervals after its last message


def test_the_report_gives_times_from_the_rule_and_from_the_start(
    db: psycopg.Connection[Row], tmp_path: Path
) -> None:
    path = tmp_path / "truth.jsonl"
    run = RunRecord(
        scenario="x", seed=1, start=T0, end=at(120), terminals=2, tid_prefix="T", topic_root="r"
    )
    payments = replace(
        fault("d", "T-000001", "payment_failures", 30, 90), evidence_at=[at(40), at(50)]
    )
    write_truth([run, payments], path)
    # proven by the second failure at 50:00; the engine's clock read 50:03 when it opened it
    incident(db, "T-000001", "payment_failures", 50, detected=50.05)

    result = evaluate(db, path, timedelta(minutes=5), default_rules())

    score = result.kinds["payment_failures"]
    assert score.ttd_s == [pytest.approx(3.0)]
    assert score.since_start_s == [pytest.approx(20 * 60 + 3.0)]
    lines = report(result)
    assert (
        lines[-1] == "evaluate: precision 1.000 recall 1.000 ttd_p95 3 s complaints_matched 0.000"
    )
    row = next(line for line in lines if line.startswith("payment_failures"))
    assert row.split()[-4:] == ["3", "3", "1203", "1203"]
