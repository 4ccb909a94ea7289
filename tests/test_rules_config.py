"""Rule files: the default one loads; a bad one is refused with its line and the reason."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from rules.config import RuleFileError, default_rules, load_rules, parse_rules
from rules.model import AbsenceClause, ClockClause, ComplaintClause, CountClause, StateClause

API_KINDS = {
    "printer_paper_out": "major",
    "printer_jam": "major",
    "printer_fault": "major",
    "cash_acceptor_jam": "critical",
    "cash_acceptor_full": "critical",
    "cash_acceptor_fault": "critical",
    "terminal_offline": "critical",
    "payment_failures": "critical",
    "silent_fault": "major",
}


def test_the_default_rules_cover_every_incident_kind_and_severity_of_the_api() -> None:
    rules = default_rules()
    for kind, severity in API_KINDS.items():
        rule = rules.by_kind(kind)
        assert rule is not None, kind
        assert rule.severity == severity
    assert {r.severity for r in rules.rules} == {"critical", "major", "minor"}
    assert all(not r.storm for r in rules.rules if r.severity == "minor")


def test_the_default_rules_use_every_rule_form() -> None:
    forms = {type(c) for r in default_rules().rules for c in r.clauses}
    assert forms == {StateClause, CountClause, AbsenceClause, ComplaintClause, ClockClause}


def test_an_operator_file_can_extend_and_override_the_defaults(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(
        """
version: 1
include_defaults: true
storm: {min_terminals: 10}
rules:
  - name: printer_paper_out
    severity: critical
    title: No paper
    when: [{state: {device: printer, field: paper, in: [out]}}]
    clear_for: 5m
  - name: printer_paper_low
    severity: minor
    title: x
    when: [{state: {device: printer, field: paper, in: [low]}}]
    enabled: false
  - name: card_reader_jam
    severity: major
    title: Card reader jammed
    when: [{state: {device: cardReader, field: media, in: [jammed]}}]
    for: 1m
""",
        encoding="utf-8",
    )
    rules = load_rules(path)
    paper = rules.by_kind("printer_paper_out")
    assert paper is not None
    assert paper.severity == "critical"
    assert paper.clear_for == timedelta(minutes=5)
    assert rules.by_kind("printer_paper_low") is None
    card = rules.by_kind("card_reader_jam")
    assert card is not None
    assert card.for_ == timedelta(minutes=1)
    assert rules.by_kind("terminal_offline") is not None
    assert rules.storm.min_terminals == 10
    assert rules.storm.window == timedelta(minutes=5)


def test_an_operator_file_without_include_replaces_the_defaults(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(
        "version: 1\nrules:\n  - name: printer_fault\n    severity: major\n    title: x\n"
        "    when: [{state: {device: printer, field: device, in: [hardwareError]}}]\n",
        encoding="utf-8",
    )
    assert [r.kind for r in load_rules(path).rules] == ["printer_fault"]


GOOD_RULE = """\
version: 1
rules:
  - name: printer_fault
    severity: major
    title: Printer fault
    when:
      - state: {device: printer, field: device, in: [hardwareError]}
"""


@pytest.mark.parametrize(
    ("text", "line", "reason"),
    [
        ("", 1, "the file is empty"),
        ("version: 1\nrules: [\n", 3, "not valid YAML"),
        ("rules: []\n", 1, "missing key 'version'"),
        ("version: 2\nrules: []\n", 1, "version must be between 1 and 1"),
        ("version: 1\nrules: []\nextra: 1\n", 3, "unknown key 'extra'"),
        (GOOD_RULE.replace("severity: major", "severity: urgent"), 4, "severity must be one of"),
        (
            GOOD_RULE.replace("field: device", "field: colour"),
            7,
            "unknown device field printer.colour",
        ),
        (GOOD_RULE.replace("hardwareError", "onFire"), 7, "unknown value 'onFire'"),
        (GOOD_RULE.replace("name: printer_fault", "name: Printer Fault"), 3, "lower-case letters"),
        (GOOD_RULE + "    for: soon\n", 8, "bad duration 'soon'"),
        (GOOD_RULE + "    clear_for: -5\n", 8, "between 0 s and"),
        (GOOD_RULE + "    titel: typo\n", 8, "unknown key 'titel'"),
        (GOOD_RULE + "    inhibit_when_offline: maybe\n", 8, "must be true or false"),
        (GOOD_RULE + GOOD_RULE.split("rules:\n")[1], 8, "defined twice"),
        (
            GOOD_RULE
            + GOOD_RULE.split("rules:\n")[1].replace(
                "name: printer_fault", "name: other\n    kind: printer_fault"
            ),
            8,
            "already opened by rule 'printer_fault'",
        ),
        (
            GOOD_RULE.replace(
                "- state: {device: printer, field: device, in: [hardwareError]}",
                "- count: {events: {name: X}, operations: {step: paymentSent},"
                " at_least: 2, within: 1m}",
            ),
            7,
            "exactly one of events or operations",
        ),
        (
            GOOD_RULE.replace(
                "- state: {device: printer, field: device, in: [hardwareError]}",
                "- count: {operations: {step: paymentSent}, at_least: 0, within: 1m}",
            ),
            7,
            "at_least must be between 1",
        ),
        (
            GOOD_RULE.replace(
                "- state: {device: printer, field: device, in: [hardwareError]}",
                "- count: {operations: {step: paymentMade}, at_least: 2, within: 1m}",
            ),
            7,
            "unknown step 'paymentMade'",
        ),
        (
            GOOD_RULE.replace(
                "- state: {device: printer, field: device, in: [hardwareError]}",
                "- absence: {missed_heartbeats: 3}\n"
                "      - state: {device: printer, field: device, in: [offline]}",
            ),
            7,
            "must stand alone",
        ),
        (
            GOOD_RULE.replace(
                "- state: {device: printer, field: device, in: [hardwareError]}",
                "- absence: {missed_heartbeats: 3}",
            )
            + "    for: 1m\n",
            8,
            "for applies to state conditions only",
        ),
        (
            GOOD_RULE.replace(
                "- state: {device: printer, field: device, in: [hardwareError]}",
                "- complaints: {at_least: 3, within: 1h, categories: [lost_card]}",
            ),
            7,
            "unknown value 'lost_card'",
        ),
        (
            GOOD_RULE.replace("    when:\n      - state", "    when:\n      - status"),
            7,
            "unknown key 'status'",
        ),
        (
            GOOD_RULE.replace(
                "- state: {device: printer, field: device, in: [hardwareError]}",
                "- count: {operations: {step: paymentSent}, at_least: 2, within: 1m,"
                " until_reset: true}",
            ),
            7,
            "until_reset needs a reset",
        ),
        ("version: 1\nversion: 1\nrules: []\n", 2, "duplicate key 'version'"),
    ],
)
def test_it_refuses_a_bad_rule_file_with_its_line_and_reason(
    text: str, line: int, reason: str
) -> None:
    with pytest.raises(RuleFileError) as caught:
        parse_rules(text, "bad.yaml")
    message = str(caught.value)
    assert message.startswith(f"bad.yaml:{line}: "), message
    assert reason in message


def test_it_refuses_a_rule_file_it_cannot_read(tmp_path: Path) -> None:
    with pytest.raises(RuleFileError, match="cannot read"):
        load_rules(tmp_path / "missing.yaml")
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(RuleFileError, match="not UTF-8"):
        load_rules(binary)


def test_it_reads_durations_in_every_spelling() -> None:
    rules = parse_rules(GOOD_RULE + "    for: 1h30m\n    clear_for: 90\n    reopen_window: 45s\n")
    [rule] = rules.rules
    assert (rule.for_, rule.clear_for, rule.reopen_window) == (
        timedelta(minutes=90),
        timedelta(seconds=90),
        timedelta(seconds=45),
    )
