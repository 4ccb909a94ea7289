"""The collector's edge: every payload becomes a typed message or a rejection, never an error."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collector import traffic
from collector.decode import (
    ANCIENT_TS,
    FUTURE_TS,
    HEAD_BYTES,
    INVALID_VALUE,
    MALFORMED_JSON,
    MISSING_FIELD,
    SPOOFED_TID,
    TOO_LARGE,
    UNKNOWN_TOPIC,
    UNSUPPORTED_VERSION,
    WRONG_TYPE,
    Availability,
    Decoded,
    Rejected,
    decode,
)
from terminals.contract import Complaint, Event, Heartbeat, Operation, Status, encode

ROOT = "terminals"
NOW = datetime(2026, 5, 4, 12, 0, tzinfo=UTC)
T0 = datetime(2026, 5, 4, 10, 0, tzinfo=UTC)


def heartbeat(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "v": 1,
        "tid": "T-000042",
        "id": "T-000042-902",
        "ts": "2026-05-04T10:32:00+03:00",
        "seq": 902,
        "interval_s": 60,
        "uptime_s": 86400,
        "app": "kiosk 2.3.1",
    }
    body.update(changes)
    return {k: v for k, v in body.items() if v is not None}


def rejected(topic: str, payload: bytes | str) -> Rejected:
    raw = payload.encode() if isinstance(payload, str) else payload
    result = decode(topic, raw, ROOT, NOW)
    assert isinstance(result, Rejected), result
    return result


def test_it_decodes_each_telemetry_kind_into_its_contract_type() -> None:
    cases = {
        "status": (traffic.status("T-1", T0, "s1", 1), Status),
        "events": (traffic.event("T-1", T0, "e1", "Common.ErrorEvent", {"eventId": "user"}), Event),
        "operations": (traffic.operation("T-1", T0, "o1"), Operation),
        "heartbeat": (traffic.heartbeat("T-1", T0, "h1"), Heartbeat),
    }
    for kind, (message, cls) in cases.items():
        result = decode(f"{ROOT}/T-1/{kind}", encode(message), ROOT, NOW)
        assert isinstance(result, Decoded)
        assert (result.kind, result.tid, result.ts) == (kind, "T-1", T0)
        assert isinstance(result.message, cls)


def test_it_keeps_unknown_fields_of_a_status_in_its_raw_devices() -> None:
    body = json.loads(encode(traffic.status("T-1", T0, "s1")))
    body["devices"]["barcodeReader"] = {"device": "online"}
    body["firmware"] = "9.1"
    result = decode(f"{ROOT}/T-1/status", json.dumps(body).encode(), ROOT, NOW)
    assert isinstance(result, Decoded)
    assert result.raw_json is not None
    assert json.loads(result.raw_json)["barcodeReader"] == {"device": "online"}
    assert ("printer", "paper", "full") in result.changes


def test_it_lists_the_fields_a_status_changed_event_and_threshold_events_set() -> None:
    changed = traffic.event(
        "T-1",
        T0,
        "e1",
        "Common.StatusChangedEvent",
        {"devices": {"printer": {"paper": "out"}, "cashAcceptor": {"stacker": {"status": "ok"}}}},
    )
    result = decode(f"{ROOT}/T-1/events", encode(changed), ROOT, NOW)
    assert isinstance(result, Decoded)
    assert result.changes == (("printer", "paper", "out"), ("cashAcceptor", "stacker.status", "ok"))
    thresholds = {
        "Printer.PaperThresholdEvent": ({"threshold": "low"}, ("printer", "paper", "low")),
        "Printer.TonerThresholdEvent": ({"state": "out"}, ("printer", "toner", "out")),
        "Storage.StorageThresholdEvent": (
            {"unit": "stacker", "replenishment": "full"},
            ("cashAcceptor", "stacker.replenishment", "full"),
        ),
        "CashManagement.ShutterStatusChangedEvent": (
            {"position": "center", "shutter": "jammedOpen"},
            ("cashAcceptor", "shutter", "jammedOpen"),
        ),
    }
    for name, (payload, change) in thresholds.items():
        result = decode(
            f"{ROOT}/T-1/events", encode(traffic.event("T-1", T0, "e", name, payload)), ROOT, NOW
        )
        assert isinstance(result, Decoded)
        assert result.changes == (change,)


def test_it_reads_availability_as_a_word_timed_by_the_event_clock() -> None:
    clock = datetime(2026, 5, 4, 11, 0, tzinfo=UTC)
    online = decode(f"{ROOT}/T-1/availability", b"online", ROOT, NOW, clock_now=clock)
    offline = decode(f"{ROOT}/T-1/availability", b"offline", ROOT, NOW)
    assert isinstance(online, Decoded)
    assert online.message == Availability("T-1", "online", clock)
    assert isinstance(offline, Decoded)
    assert offline.message == Availability("T-1", "offline", NOW)
    assert rejected(f"{ROOT}/T-1/availability", "maybe").reason == INVALID_VALUE


def test_it_decodes_a_complaint_from_the_support_topic() -> None:
    body = {
        "ref": "CRM-1",
        "received_at": "2026-05-04T11:02:00+03:00",
        "channel": "phone",
        "category": "no_receipt",
        "tid": "T-000042",
        "occurred_at": "2026-05-04T10:30:00+03:00",
        "amount_minor": 50000,
        "currency": "RUB",
        "customer": "+79161234567",
        "text": "no receipt",
    }
    result = decode("support/complaints", json.dumps(body).encode(), ROOT, NOW)
    assert isinstance(result, Decoded)
    assert isinstance(result.message, Complaint)
    assert (result.kind, result.tid) == ("complaints", "T-000042")
    body["category"] = "weather"
    bad = rejected("support/complaints", json.dumps(body))
    assert (bad.kind, bad.reason) == ("complaints", INVALID_VALUE)


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ("{not json", MALFORMED_JSON),
        (b"\xff\xfe\x00", MALFORMED_JSON),
        (
            '{"v":1,"tid":"T-000042","id":"x","ts":"2026-05-04T10:32:00+03:00","payload":'
            + "[" * 5000
            + "]" * 5000
            + "}",
            MALFORMED_JSON,
        ),
        (json.dumps(heartbeat(seq="902")), WRONG_TYPE),
        (json.dumps(heartbeat(interval_s=1.5)), WRONG_TYPE),
        (json.dumps([heartbeat()]), WRONG_TYPE),
        (json.dumps(heartbeat(id=None)), MISSING_FIELD),
        (json.dumps(heartbeat(ts="2026-05-04T10:32:00")), INVALID_VALUE),
        (json.dumps(heartbeat(seq=-1)), INVALID_VALUE),
        (json.dumps(heartbeat(seq=2**63)), INVALID_VALUE),
        (json.dumps(heartbeat(app="a\u0000b")), INVALID_VALUE),
        (json.dumps(heartbeat(tid="T-000043")), SPOOFED_TID),
        (json.dumps(heartbeat(ts="2026-05-06T10:32:00+00:00")), FUTURE_TS),
        (json.dumps(heartbeat(ts="1969-12-31T23:59:59+00:00")), ANCIENT_TS),
        (json.dumps(heartbeat(v=2)), UNSUPPORTED_VERSION),
        (json.dumps({"v": 2, "tid": "T-000042", "shape": "new"}), UNSUPPORTED_VERSION),
        (json.dumps(heartbeat(v="1")), WRONG_TYPE),
    ],
)
def test_it_rejects_a_bad_heartbeat_with_a_stable_reason(payload: str | bytes, reason: str) -> None:
    result = rejected(f"{ROOT}/T-000042/heartbeat", payload)
    assert (result.kind, result.tid, result.reason) == ("heartbeat", "T-000042", reason)
    assert result.detail
    raw = payload.encode() if isinstance(payload, str) else payload
    assert result.head == raw[:HEAD_BYTES]


def test_it_rejects_a_payload_over_64_kib_before_parsing_it() -> None:
    body = heartbeat(app="x" * 100)
    payload = json.dumps(body).encode() + b" " * (64 * 1024)
    result = rejected(f"{ROOT}/T-000042/heartbeat", payload)
    assert result.reason == TOO_LARGE
    assert len(result.head) == HEAD_BYTES


@pytest.mark.parametrize(
    "topic",
    [
        "terminals/T-1/commands",
        "terminals/T-1",
        "terminals/T-1/status/extra",
        "terminals/bad tid/status",
        "other/T-1/status",
        "support/other",
    ],
)
def test_it_rejects_a_topic_outside_the_contract(topic: str) -> None:
    result = rejected(topic, json.dumps(heartbeat()))
    assert result.reason == UNKNOWN_TOPIC
    assert result.topic == topic


def test_it_rejects_an_event_whose_state_payload_has_the_wrong_type() -> None:
    bad_devices = traffic.event(
        "T-1", T0, "e1", "Common.StatusChangedEvent", {"devices": {"printer": {"paper": 3}}}
    )
    bad_threshold = traffic.event("T-1", T0, "e2", "Printer.PaperThresholdEvent", {"threshold": 1})
    assert rejected(f"{ROOT}/T-1/events", encode(bad_devices)).reason == WRONG_TYPE
    assert rejected(f"{ROOT}/T-1/events", encode(bad_threshold)).reason == WRONG_TYPE


def test_it_accepts_unknown_event_names_and_enum_values_as_they_came() -> None:
    new_event = traffic.event("T-1", T0, "e1", "Printer.FutureEvent", {"x": [1, {"y": None}]})
    new_value = traffic.status("T-1", T0, "s1", paper="halfFull")
    event = decode(f"{ROOT}/T-1/events", encode(new_event), ROOT, NOW)
    status = decode(f"{ROOT}/T-1/status", encode(new_value), ROOT, NOW)
    assert isinstance(event, Decoded)
    assert event.changes == ()
    assert isinstance(status, Decoded)
    assert ("printer", "paper", "halfFull") in status.changes


TOPICS = st.sampled_from(
    [f"{ROOT}/T-1/{k}" for k in ("status", "events", "operations", "heartbeat", "availability")]
    + ["support/complaints", f"{ROOT}/T-1/other", "x"]
)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: st.lists(children) | st.dictionaries(st.text(), children),
    max_leaves=30,
)
SMALL = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(
            st.sampled_from(["printer", "paper", "device", "threshold", "x"]), children
        )
    ),
    max_leaves=6,
)
ENVELOPE = st.fixed_dictionaries(
    {
        "v": st.sampled_from([1, 2, "1"]),
        "tid": st.sampled_from(["T-1", "T-2", ""]),
        "id": st.text(max_size=70),
        "ts": st.sampled_from(
            [
                "2026-05-04T10:00:00Z",
                "2026-05-04T10:00:00",
                "9999-12-31T23:59:59-23:59",
                "0001-01-01T00:00:00+23:59",
                "nonsense",
            ]
        ),
    },
    optional={
        "seq": SMALL,
        "devices": SMALL,
        "payload": SMALL,
        "device": SMALL,
        "name": SMALL,
        "interval_s": SMALL,
        "steps": SMALL,
        "op_id": SMALL,
        "amount_minor": SMALL,
        "outcome": SMALL,
        "ref": SMALL,
        "category": SMALL,
    },
)


def _is_result(value: object) -> bool:
    return isinstance(value, Decoded | Rejected)


@settings(max_examples=300, deadline=None)
@given(topic=TOPICS | st.binary(max_size=40), payload=st.binary(max_size=300))
def test_it_never_raises_on_arbitrary_bytes(topic: str | bytes, payload: bytes) -> None:
    assert _is_result(decode(topic, payload, ROOT, NOW))


@settings(max_examples=300, deadline=None)
@given(topic=TOPICS, value=JSON)
def test_it_never_raises_on_arbitrary_json(topic: str, value: Any) -> None:
    assert _is_result(decode(topic, json.dumps(value).encode(), ROOT, NOW))


@settings(max_examples=300, deadline=None)
@given(topic=TOPICS, value=ENVELOPE)
def test_it_never_raises_on_json_shaped_like_a_message(topic: str, value: dict[str, Any]) -> None:
    result = decode(topic, json.dumps(value).encode(), ROOT, NOW)
    assert _is_result(result)
    if isinstance(result, Decoded) and result.kind != "complaints":
        assert result.tid == "T-1"
        assert NOW - timedelta(days=365 * 60) < result.ts <= NOW + timedelta(days=1)
