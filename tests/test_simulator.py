"""The simulated fleet, without a broker: contract, device-driven outcomes, determinism."""

from __future__ import annotations

import argparse
import dataclasses
import io
import itertools
import re
from collections import defaultdict
from pathlib import Path
from typing import Any

import msgspec
import pytest

from simulator.cli import template
from simulator.engine import Emission, World
from simulator.fleet import REGISTRY_COLUMNS, write_registry
from simulator.scenario import Scenario, load_scenario, parse_scenario
from simulator.truth import ComplaintRecord, FaultRecord, RunRecord, read_truth, write_truth
from terminals.contract import MAX_PAYLOAD, Complaint, Event, Operation, Status, decoder_for

BASE = """\
name: {name}
start: 2026-05-04T17:00:00+03:00
duration: {duration}
fleet:
  regions:
    - {{name: north, city: Moscow, utc_offset: "+03:00", terminals: {north}}}
    - {{name: east, city: Novosibirsk, utc_offset: "+07:00", terminals: {east}}}
customers:
  per_terminal_per_day: 1500
complaints:
  probability:
    {{no_receipt: 1.0, payment_failed: 1.0, cash_not_credited: 1.0, terminal_out_of_order: 0.2}}
  delay: [1m, 5m]
faults:
{faults}
"""


KINDS = ("status", "events", "operations", "heartbeat")


def scenario(
    faults: str, *, north: int = 1, east: int = 1, duration: str = "1h", name: str = "t"
) -> Scenario:
    return parse_scenario(
        BASE.format(name=name, duration=duration, north=north, east=east, faults=faults)
    )


def run(sc: Scenario, seed: int = 1) -> tuple[list[Emission], World]:
    world = World(sc, seed, "sim")
    return list(world.emissions()), world


def decoded(emissions: list[Emission], kind: str, tid: str | None = None) -> list[Any]:
    dec = decoder_for(kind)
    return [
        dec.decode(e.payload)
        for e in emissions
        if e.action == "publish" and e.topic.endswith(f"/{kind}") and (tid is None or e.tid == tid)
    ]


def result(op: Operation, step: str) -> str | None:
    found = op.step(step)
    return None if found is None else found.result


def error(op: Operation, step: str) -> str | None:
    found = op.step(step)
    return None if found is None else found.error


def inside(ts: Any, fault: FaultRecord) -> bool:
    return bool(fault.start <= ts <= fault.end)


def the_fault(world: World, kind: str) -> FaultRecord:
    faults = [
        r
        for r in world.truth()
        if isinstance(r, FaultRecord) and r.kind == kind and r.source == "scenario"
    ]
    assert len(faults) == 1
    return faults[0]


def test_every_message_the_simulator_emits_decodes_with_the_contract_types() -> None:
    emissions, _world = run(load_scenario("tiny"))
    seen: dict[str, int] = defaultdict(int)
    last_seq: dict[str, int] = {}
    ids: set[str] = set()
    for e in emissions:
        assert len(e.payload) <= MAX_PAYLOAD
        if e.action == "complaint":
            complaint = msgspec.json.decode(e.payload, type=Complaint)
            assert complaint.customer is not None
            assert complaint.customer.startswith("+79")
            seen["complaint"] += 1
            continue
        root, tid, kind = e.topic.split("/")
        assert root == "sim"
        assert tid == e.tid
        if e.action in ("connect", "drop"):
            assert kind == "availability"
            assert e.retained
            assert e.qos == 1
            assert e.payload == (b"online" if e.action == "connect" else b"offline")
            seen[e.action] += 1
            continue
        message = decoder_for(kind).decode(e.payload)
        assert message.tid == tid
        assert message.v == 1
        assert message.id not in ids
        ids.add(message.id)
        assert message.seq is not None
        assert message.seq > last_seq.get(tid, 0)
        last_seq[tid] = message.seq
        assert e.retained == (kind == "status")
        seen[kind] += 1
    assert {"status", "events", "operations", "heartbeat", "connect", "drop", "complaint"} <= set(
        seen
    )
    assert seen["heartbeat"] >= 5 * 55  # five terminals, one a minute, one offline for 10 min


def test_the_same_seed_gives_byte_identical_output_and_another_seed_does_not() -> None:
    sc = load_scenario("tiny")
    first, w1 = run(sc, seed=11)
    second, w2 = run(sc, seed=11)
    assert first == second
    assert [msgspec.json.encode(r) for r in w1.truth()] == [
        msgspec.json.encode(r) for r in w2.truth()
    ]
    other, _ = run(sc, seed=12)
    assert [e.payload for e in other] != [e.payload for e in first]


def identifiers(emissions: list[Emission]) -> tuple[set[str], set[str], set[str]]:
    """Message ids, op_ids (both with their tid) and complaint refs of a run."""
    ids = {f"{m.tid} {m.id}" for kind in KINDS for m in decoded(emissions, kind)}
    ops = {f"{o.tid} {o.op_id}" for o in decoded(emissions, "operations")}
    refs = {
        msgspec.json.decode(e.payload, type=Complaint).ref
        for e in emissions
        if e.action == "complaint"
    }
    return ids, ops, refs


def test_every_identifier_carries_the_run_tag_of_the_start_and_seed() -> None:
    sc = load_scenario("tiny")
    emissions, world = run(sc, seed=11)
    tag = world.run_tag
    assert re.fullmatch(r"[0-9a-z]{9}", tag)
    assert int(tag[:6], 36) == sc.start // 1000 % 36**6  # the start, in seconds
    messages = [m for kind in KINDS for m in decoded(emissions, kind)]
    assert messages
    assert all(m.id == f"{m.tid}-{tag}-{m.seq}" for m in messages)
    ops: list[Operation] = decoded(emissions, "operations")
    assert ops
    assert all(re.fullmatch(rf"{o.tid}-2026050[45]-{tag}-\d{{6}}", o.op_id) for o in ops)
    assert world.complaints
    assert all(c.ref.startswith(f"CRM-20260504-{tag}-") for c in world.complaints)
    header = world.truth()[0]
    assert isinstance(header, RunRecord)
    assert header.run_tag == tag
    other_seed = World(sc, 12).run_tag
    assert other_seed[:6] == tag[:6]  # the same start
    assert other_seed != tag
    later = World(dataclasses.replace(sc, start=sc.start + 1000), 11).run_tag
    assert later[:6] != tag[:6]


def test_consecutive_runs_like_the_demo_phases_never_reuse_an_identifier() -> None:
    sc = load_scenario("tiny")
    half = 30 * 60_000
    first, _ = run(sc.with_duration(half), seed=8081)
    later = dataclasses.replace(sc, start=sc.start + half).with_duration(half)
    for seed in (8082, 8081):  # the demo's next seed, and the same seed again
        second, _ = run(later, seed=seed)
        for a, b in zip(identifiers(first), identifiers(second), strict=True):
            assert a
            assert b
            assert not a & b


def test_message_ids_stay_within_the_contract_length_for_the_longest_tids() -> None:
    sc = dataclasses.replace(load_scenario("tiny"), tid_prefix="P" * 20)
    emissions, world = run(sc.with_duration(10 * 60_000))
    messages = [m for kind in KINDS for m in decoded(emissions, kind)]
    assert messages
    assert len(messages[0].tid) == 27  # the longest prefix a scenario allows, - and 6 digits
    assert max(len(m.id) for m in messages) <= 64
    assert world.run_tag in messages[0].id


def test_emissions_come_in_time_order() -> None:
    emissions, _ = run(load_scenario("tiny"))
    times = [e.at for e in emissions]
    assert times == sorted(times)


def test_paper_out_makes_receipts_fail_with_paper_out_until_the_engineer_refills() -> None:
    sc = scenario(
        "  - {id: p, kind: printer_paper_out, at: 10m, duration: 30m, terminals: [T-000001]}"
    )
    emissions, world = run(sc)
    fault = the_fault(world, "printer_paper_out")
    ops: list[Operation] = decoded(emissions, "operations", "T-000001")
    during = [
        o
        for o in ops
        if inside(o.ts, fault) and result(o, "receiptPrinted") not in (None, "skipped")
    ]
    after = [o for o in ops if o.ts > fault.end and result(o, "receiptPrinted") == "success"]
    assert during
    assert after
    assert all(o.outcome == "completedWithWarnings" for o in during)
    assert all(error(o, "receiptPrinted") == "paperOut" for o in during)
    statuses: list[Status] = decoded(emissions, "status", "T-000001")
    assert any(s.devices.printer and s.devices.printer.paper == "out" for s in statuses)
    events: list[Event] = decoded(emissions, "events", "T-000001")
    names = [(e.name, e.payload.get("state") or e.payload.get("threshold")) for e in events]
    assert ("Printer.PaperThresholdEvent", "out") in names
    assert names.index(("Terminal.ServiceMode", "entered")) < names.index(
        ("Terminal.ServiceMode", "left")
    )
    assert fault.ended_by == "engineer"
    complaints = [
        r for r in world.truth() if isinstance(r, ComplaintRecord) and r.fault_id == fault.fault_id
    ]
    assert complaints
    assert {c.op_id for c in complaints} <= {o.op_id for o in during}


def test_an_acceptor_jam_mid_payment_takes_the_cash_without_paying() -> None:
    sc = scenario(
        "  - {id: j, kind: cash_acceptor_jam, at: 10m, duration: 30m, terminals: [T-000001]}"
    )
    emissions, world = run(sc)
    fault = the_fault(world, "cash_acceptor_jam")
    ops: list[Operation] = decoded(emissions, "operations", "T-000001")
    at_risk = [
        o for o in ops if o.money_at_risk_minor() > 0 and result(o, "paymentSent") == "skipped"
    ]
    assert len(at_risk) == 1
    op = at_risk[0]
    assert op.outcome == "failed"
    assert result(op, "paymentSent") == "skipped"
    assert inside(op.ts, fault) or op.ts - fault.end < __import__("datetime").timedelta(minutes=2)
    assert not [
        o for o in ops if fault.start < o.ts < fault.end and o is not op
    ]  # out of order meanwhile
    statuses: list[Status] = decoded(emissions, "status", "T-000001")
    jammed = [
        s
        for s in statuses
        if s.devices.cashAcceptor
        and (
            s.devices.cashAcceptor.transport == "inoperative"
            or (s.devices.cashAcceptor.shutter or "").startswith("jammed")
        )
    ]
    assert jammed
    assert jammed[0].ts == fault.start


def test_a_regional_payment_host_outage_times_out_payments_in_that_region_only() -> None:
    sc = scenario(
        "  - {id: host, kind: payment_failures, at: 10m, duration: 20m, region: north}",
        north=3,
        east=2,
    )
    emissions, world = run(sc)
    faults = [
        r for r in world.truth() if isinstance(r, FaultRecord) and r.kind == "payment_failures"
    ]
    assert sorted(f.tid for f in faults) == ["T-000001", "T-000002", "T-000003"]
    assert {f.group for f in faults} == {"host"}
    window = faults[0]
    for tid in ("T-000001", "T-000002", "T-000003", "T-000004", "T-000005"):
        ops: list[Operation] = decoded(emissions, "operations", tid)
        during = [
            o
            for o in ops
            if o.started
            and window.start <= o.started < window.end - __import__("datetime").timedelta(minutes=1)
        ]
        assert during
        results = {result(o, "paymentSent") for o in during} - {None}
        if tid in ("T-000004", "T-000005"):
            assert "timeout" not in results
        else:
            assert results == {"timeout"}
            assert all(o.outcome == "failed" and o.money_at_risk_minor() > 0 for o in during)


def test_a_silent_fault_looks_healthy_and_only_complaints_reveal_it() -> None:
    sc = scenario("  - {id: s, kind: silent_fault, at: 5m, duration: 50m, terminals: [T-000002]}")
    emissions, world = run(sc)
    fault = the_fault(world, "silent_fault")
    ops: list[Operation] = decoded(emissions, "operations", "T-000002")
    during = [o for o in ops if inside(o.ts, fault)]
    assert during
    assert all(
        o.outcome in ("completed", "completedWithWarnings") and o.money_at_risk_minor() == 0
        for o in during
    )
    events: list[Event] = decoded(emissions, "events", "T-000002")
    assert not [
        e
        for e in events
        if fault.start <= e.ts < fault.end - __import__("datetime").timedelta(minutes=30)
        and e.name == "Common.ErrorEvent"
    ]
    complaints = [
        r
        for r in world.truth()
        if isinstance(r, ComplaintRecord) and r.true_cause_kind == "silent_fault"
    ]
    assert len(complaints) >= 2
    assert fault.observable
    assert fault.evidence == len(complaints)
    assert all(c.category == "cash_not_credited" for c in complaints)


def test_a_clock_skew_shifts_the_terminals_timestamps_until_the_engineer_sets_it() -> None:
    from datetime import UTC, datetime, timedelta

    from simulator.terminal import CLOCK_SKEWS, parse_skew

    sc = scenario("  - {id: c, kind: clock_skew, at: 5m, duration: 40m, terminals: [T-000002]}")
    emissions, world = run(sc)
    fault = the_fault(world, "clock_skew")
    dec = decoder_for("heartbeat")
    offsets: list[tuple[datetime, timedelta]] = []
    for e in emissions:
        if e.action == "publish" and e.tid == "T-000002" and e.topic.endswith("/heartbeat"):
            sent = datetime.fromtimestamp(e.at / 1000, UTC)
            offsets.append((sent, dec.decode(e.payload).ts - sent))
    during = {off for sent, off in offsets if fault.start < sent < fault.end}
    outside = {off for sent, off in offsets if not fault.start <= sent <= fault.end}
    skews = {timedelta(milliseconds=parse_skew(v)) for v in CLOCK_SKEWS}
    assert len(during) == 1
    assert during <= skews
    assert outside == {timedelta(0)}
    assert fault.ended_by == "engineer"
    others = {
        dec.decode(e.payload).ts - datetime.fromtimestamp(e.at / 1000, UTC)
        for e in emissions
        if e.action == "publish" and e.tid == "T-000001" and e.topic.endswith("/heartbeat")
    }
    assert others == {timedelta(0)}


def test_a_network_loss_drops_the_connection_and_the_terminal_catches_up_after() -> None:
    sc = scenario(
        "  - {id: n, kind: terminal_offline, at: 10m, duration: 15m, terminals: [T-000001]}"
    )
    emissions, world = run(sc)
    fault = the_fault(world, "terminal_offline")
    mine = [e for e in emissions if e.tid == "T-000001"]
    actions = [e.action for e in mine]
    assert actions.count("drop") == 1
    assert actions.count("connect") == 2
    dropped = actions.index("drop")
    back = actions.index("connect", dropped)
    assert mine[dropped].at == world.scenario.start + 10 * 60_000
    assert mine[back].at == mine[dropped].at + 15 * 60_000
    assert all(e.at == mine[back].at for e in mine[dropped + 1 : back + 1])  # silent while down
    heartbeats: list[Any] = decoded(emissions, "heartbeat", "T-000001")
    assert not [h for h in heartbeats if fault.start < h.ts < fault.end]
    gaps = [(b.ts - a.ts).total_seconds() for a, b in itertools.pairwise(heartbeats)]
    assert max(gaps) >= 15 * 60 - 60
    assert min(gaps) == 60


def test_what_a_terminal_held_during_a_network_loss_goes_first_then_a_fresh_snapshot() -> None:
    sc = scenario(
        "  - {id: n, kind: terminal_offline, at: 10m, duration: 15m, terminals: [T-000001]}\n"
        "  - {id: j, kind: printer_jam, at: 12m, duration: 6m, terminals: [T-000001]}"
    )
    emissions, _ = run(sc)
    mine = [e for e in emissions if e.tid == "T-000001"]
    back = [i for i, e in enumerate(mine) if e.action == "connect"][1]
    reconnected = mine[back].at
    burst = [e for e in mine[back + 1 :] if e.at == reconnected]
    messages = [decoder_for(e.topic.rsplit("/", 1)[1]).decode(e.payload) for e in burst]
    held = [m for m in messages if m.ts < messages[-1].ts]
    assert {type(m) for m in held} >= {Status, Event}  # the jam and the visit, while away
    assert [m.ts for m in messages] == sorted(m.ts for m in messages)
    assert [m.seq for m in messages] == list(range(messages[0].seq, messages[0].seq + len(burst)))
    assert isinstance(messages[-1], Status)
    assert int(messages[-1].ts.timestamp() * 1000) == reconnected


def test_a_flapping_printer_toggles_many_times_and_is_one_fault_in_the_truth() -> None:
    sc = scenario(
        "  - {id: f, kind: printer_fault, at: 10m, duration: 10m, flap: 20s, terminals: [T-000002]}"
    )
    emissions, world = run(sc)
    fault = the_fault(world, "printer_fault")
    assert fault.flapping
    statuses: list[Status] = decoded(emissions, "status", "T-000002")
    states = [
        s.devices.printer.device for s in statuses if s.devices.printer and inside(s.ts, fault)
    ]
    changes = sum(1 for a, b in itertools.pairwise(states) if a != b)
    assert changes >= 40  # ten minutes at about one toggle every 10 s
    assert states[-1] == "online"


def test_the_ground_truth_round_trips_and_lists_faults_and_complaints(tmp_path: Path) -> None:
    _, world = run(load_scenario("tiny"), seed=7)
    path = tmp_path / "truth.jsonl"
    write_truth(world.truth(), path)
    run_record, faults, complaints = read_truth(path)
    assert isinstance(run_record, RunRecord)
    assert run_record.terminals == 5
    assert run_record.tids()[-1] == "T-000005"
    assert {f.kind for f in faults} >= {
        "printer_paper_out",
        "cash_acceptor_jam",
        "payment_failures",
        "terminal_offline",
        "printer_fault",
    }
    assert all(f.start <= f.end for f in faults)
    refs = [c.ref for c in complaints]
    assert len(refs) == len(set(refs)) == len(world.complaints)
    assert any(c.true_cause_kind is None for c in complaints)  # the background that matches nothing


def test_the_registry_csv_has_the_contract_columns_and_every_terminal() -> None:
    world = World(load_scenario("tiny"))
    out = io.StringIO()
    write_registry(world.sites, out)
    lines = out.getvalue().splitlines()
    assert lines[0] == ",".join(REGISTRY_COLUMNS)
    assert len(lines) == 6
    assert lines[4].startswith("T-000004,")
    assert ",ural," in lines[4]


@pytest.mark.parametrize("text", ["{", "[]"])
def test_a_malformed_truth_file_is_refused_with_its_line(tmp_path: Path, text: str) -> None:
    from simulator.truth import TruthError

    path = tmp_path / "t.jsonl"
    path.write_text(
        '{"type":"run","scenario":"x","seed":1,"start":"2026-05-04T00:00:00Z","end":"2026-05-04T01:00:00Z","terminals":1,"tid_prefix":"T","topic_root":"r"}\n'
        + text
        + "\n"
    )
    with pytest.raises(TruthError, match=r"t.jsonl:2: "):
        read_truth(path)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("pw-{tod}", "uses {tod}; only {tid} may be used"),
        ("pw-{}", "uses {}; only {tid} may be used"),
        ("pw-{tid", "is not a template"),
        ("pw-{tid:d}", "is not a template"),
    ],
)
def test_a_bad_password_template_is_refused_before_anything_connects(
    text: str, reason: str
) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match=re.escape(reason)):
        template("tid")(text)
    assert template("tid")("{{literal}}-{tid}") == "{{literal}}-{tid}"
    assert template("tid", "root")("{root}-{tid}") == "{root}-{tid}"


def test_the_truth_times_the_evidence_a_rule_can_see() -> None:
    sc = scenario(
        "  - {id: host, kind: payment_failures, at: 10m, duration: 20m, terminals: [T-000001]}\n"
        "  - {id: s, kind: silent_fault, at: 5m, duration: 50m, terminals: [T-000002]}\n"
        "  - {id: h, kind: terminal_offline, mode: hang, at: 40m, duration: 10m,"
        " terminals: [T-000001]}"
    )
    emissions, world = run(sc)
    host = the_fault(world, "payment_failures")
    timed_out = [
        o.ts
        for o in decoded(emissions, "operations", "T-000001")
        if result(o, "paymentSent") == "timeout"
    ]
    assert timed_out
    assert host.evidence_at == timed_out
    silent = the_fault(world, "silent_fault")
    received = sorted(
        r.received_at
        for r in world.truth()
        if isinstance(r, ComplaintRecord) and r.fault_id == silent.fault_id
    )
    assert silent.evidence_at == received
    hang = the_fault(world, "terminal_offline")
    start_ms = int(hang.start.timestamp() * 1000)
    before = [
        e for e in emissions if e.action == "publish" and e.tid == "T-000001" and e.at <= start_ms
    ]
    assert hang.last_message is not None
    assert int(hang.last_message.timestamp() * 1000) == before[-1].at


def test_the_messy_scenario_skews_clocks_resends_ids_and_delivers_out_of_order() -> None:
    from datetime import UTC, datetime

    sc = load_scenario("messy").with_duration(30 * 60_000)
    emissions, world = run(sc)
    skewed = {
        r.tid
        for r in world.truth()
        if isinstance(r, FaultRecord) and r.kind == "clock_skew" and r.fault_id
    }
    assert len(skewed) >= round(0.2 * sc.terminal_count)
    published = [e for e in emissions if e.action == "publish"]
    dec = decoder_for("heartbeat")
    late = {
        e.tid
        for e in published
        if e.topic.endswith("/heartbeat")
        and abs(
            (dec.decode(e.payload).ts - datetime.fromtimestamp(e.at / 1000, UTC)).total_seconds()
        )
        > 300
    }
    assert late
    assert late <= skewed
    ids: dict[str, set[bytes]] = defaultdict(set)
    for e in published:
        ids[msgspec.json.decode(e.payload)["id"]].add(e.payload)
    assert any(len(bodies) == 2 for bodies in ids.values())  # one id, two ts
    seqs: dict[str, list[int]] = defaultdict(list)
    for e in published:
        seqs[e.tid or ""].append(msgspec.json.decode(e.payload)["seq"])
    assert any(s != sorted(s) for s in seqs.values())  # out of order
    assert [e.at for e in emissions] == sorted(e.at for e in emissions)


def test_without_a_mess_section_a_scenario_runs_as_before() -> None:
    sc = scenario(
        "  - {id: p, kind: printer_paper_out, at: 5m, duration: 20m, terminals: [T-000001]}"
    )
    assert sc.mess.skewed_share == 0.0
    first, _ = run(sc)
    again, _ = run(sc)
    assert first == again
