"""Decode one MQTT message into a typed contract message or a rejection.

:func:`decode` is the edge of the collector: it runs on paho's network thread, so it does no
I/O, and it never raises. Whatever the bytes, the result is a :class:`Decoded` (a typed,
validated message ready to be stored) or a :class:`Rejected` (a stable reason class for the
metrics label, a human detail, and the first bytes of the payload for the
``rejected_messages`` table).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import msgspec

from terminals.contract import (
    CONTRACT_VERSION,
    MAX_PAYLOAD,
    Complaint,
    Devices,
    Event,
    Heartbeat,
    Operation,
    Status,
    decoder_for,
    devices_from_payload,
)

#: Reason classes: the ``reason`` label of ``termwatch_rejected_messages_total``.
MALFORMED_JSON: Final = "malformed_json"
WRONG_TYPE: Final = "wrong_type"
MISSING_FIELD: Final = "missing_field"
INVALID_VALUE: Final = "invalid_value"
TOO_LARGE: Final = "too_large"
SPOOFED_TID: Final = "spoofed_tid"
UNKNOWN_TOPIC: Final = "unknown_topic"
FUTURE_TS: Final = "future_ts"
ANCIENT_TS: Final = "ancient_ts"
UNSUPPORTED_VERSION: Final = "unsupported_version"
#: Given by the writer, not here: the database refused a row that passed decoding.
UNSTORABLE: Final = "unstorable"
REASONS: Final = (
    MALFORMED_JSON,
    WRONG_TYPE,
    MISSING_FIELD,
    INVALID_VALUE,
    TOO_LARGE,
    SPOOFED_TID,
    UNKNOWN_TOPIC,
    FUTURE_TS,
    ANCIENT_TS,
    UNSUPPORTED_VERSION,
    UNSTORABLE,
)

COMPLAINTS_TOPIC: Final = "support/complaints"
TELEMETRY_KINDS: Final = ("status", "events", "operations", "heartbeat")
HEAD_BYTES: Final = 256
MAX_FUTURE: Final = timedelta(days=1)
#: Earliest event time accepted: older stamps come from a terminal whose clock was never set,
#: and years before 1 AD in UTC cannot be read back by Python.
EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_BIGINT_MAX: Final = 2**63 - 1
_TID = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
_TEXT_MAX: Final = 256

#: Events that move a device field: name -> (device, field, payload key holding the value).
THRESHOLD_EVENTS: Final[dict[str, tuple[str, str, str]]] = {
    "Printer.PaperThresholdEvent": ("printer", "paper", "threshold"),
    "Printer.TonerThresholdEvent": ("printer", "toner", "state"),
    "Storage.StorageThresholdEvent": ("cashAcceptor", "stacker.replenishment", "replenishment"),
    "CashManagement.ShutterStatusChangedEvent": ("cashAcceptor", "shutter", "shutter"),
}
STATUS_CHANGED: Final = "Common.StatusChangedEvent"
#: Terminal events whose payload values the current state keeps: name -> payload keys.
TERMINAL_EVENTS: Final[dict[str, tuple[str, ...]]] = {
    "Terminal.ServiceMode": ("state", "engineer"),
    "Terminal.Boot": ("app", "reason"),
}

Telemetry = Status | Event | Operation | Heartbeat
FieldChange = tuple[str, str, str]  # (device, field, value)


@dataclass(frozen=True, slots=True)
class Availability:
    """An ``online``/``offline`` word from ``<root>/<tid>/availability``.

    ``ts`` is the event clock's reading when it arrived (the payload carries no time), or the
    wall clock before the event clock has one.
    """

    tid: str
    state: str
    ts: datetime


Message = Status | Event | Operation | Heartbeat | Availability | Complaint


@dataclass(frozen=True, slots=True)
class Decoded:
    """A valid message. ``kind`` is a metrics kind (``status``, ``events``, ...).

    ``ts`` is the message's event time (a complaint's ``received_at``). ``raw_json`` is the
    JSON text kept as ``jsonb`` (a status' ``devices``, an event's ``payload``), unknown
    fields included; ``changes`` lists the device fields it sets, in message order.
    """

    kind: str
    topic: str
    tid: str | None
    message: Message
    ts: datetime
    raw_json: str | None = None
    changes: tuple[FieldChange, ...] = ()


@dataclass(frozen=True, slots=True)
class Rejected:
    """An invalid message. ``kind`` is its topic's kind, or ``unknown``."""

    kind: str
    topic: str
    tid: str | None
    reason: str
    detail: str
    head: bytes

    @property
    def text(self) -> str:
        """``reason: detail``, as kept in ``rejected_messages.reason``."""
        return f"{self.reason}: {self.detail}"


class _StatusRaw(msgspec.Struct):
    devices: msgspec.Raw


class _EventRaw(msgspec.Struct):
    payload: msgspec.Raw = msgspec.Raw(b"{}")


class _Version(msgspec.Struct):
    v: Any = None


def _number(text: str) -> float:
    """A JSON number that is not an integer, if a float holds it; else ValueError.

    ``1e999999`` overflows PostgreSQL's numeric, and ``1e-999999`` (which a float reads as
    0) does too: neither survives a round trip through ``jsonb`` and back to JSON.
    """
    value = float(text)
    mantissa = text.lower().partition("e")[0]
    if not math.isfinite(value) or (value == 0 and mantissa.strip("-+0.") != ""):
        raise ValueError(f"the number {text[:40]} cannot be stored")
    return value


#: Reads the whole payload, unknown fields included, to refuse what PostgreSQL would refuse
#: in a ``jsonb`` column: numbers out of range, lone surrogates (``\ud800``).
_STORABLE: Final = msgspec.json.Decoder(float_hook=_number)
_STATUS_RAW: Final = msgspec.json.Decoder(_StatusRaw)
_EVENT_RAW: Final = msgspec.json.Decoder(_EventRaw)
_VERSION: Final = msgspec.json.Decoder(_Version)
_COMPLAINT: Final = msgspec.json.Decoder(Complaint)
_DECODE_ERRORS: Final = (msgspec.DecodeError, UnicodeDecodeError, RecursionError)


class _Invalid(Exception):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def decode(
    topic: str | bytes,
    payload: bytes | bytearray,
    root: str,
    wall_now: datetime,
    *,
    clock_now: datetime | None = None,
) -> Decoded | Rejected:
    """Decode the message ``payload`` received on ``topic`` under the topic root ``root``.

    ``wall_now`` (timezone-aware) bounds timestamps from the future; ``clock_now`` is the event
    clock's reading, used as the time of an ``availability`` word. Never raises.
    """
    if isinstance(topic, bytes):
        try:
            topic = topic.decode("utf-8")
        except UnicodeDecodeError:
            return _reject(
                "unknown",
                repr(topic)[:_TEXT_MAX],
                None,
                UNKNOWN_TOPIC,
                "topic is not UTF-8",
                payload,
            )
    kind, tid, why = _route(topic, root)
    if why is not None:
        return _reject(kind, topic, tid, UNKNOWN_TOPIC, why, payload)
    if len(payload) > MAX_PAYLOAD:
        return _reject(
            kind, topic, tid, TOO_LARGE, f"{len(payload)} bytes, more than {MAX_PAYLOAD}", payload
        )
    try:
        if kind == "availability":
            assert tid is not None
            return _availability(topic, tid, payload, clock_now or wall_now)
        if b"\\u0000" in payload:
            raise _Invalid(INVALID_VALUE, "contains a NUL character (\\u0000)")
        _storable(payload)
        if kind == "complaints":
            return _complaint(topic, payload, wall_now)
        assert tid is not None
        return _telemetry(kind, topic, tid, payload, wall_now)
    except _Invalid as exc:
        return _reject(kind, topic, tid, exc.reason, exc.detail, payload)
    except _DECODE_ERRORS as exc:
        reason, detail = _classify(exc, payload)
        return _reject(kind, topic, tid, reason, detail, payload)


def _storable(payload: bytes | bytearray) -> None:
    """Raise :class:`_Invalid` when some value, in any nested field, cannot be stored."""
    try:
        _STORABLE.decode(payload)
    except msgspec.ValidationError as exc:
        raise _Invalid(INVALID_VALUE, str(exc)) from None
    except msgspec.DecodeError as exc:
        raise _Invalid(MALFORMED_JSON, str(exc)) from None


def _route(topic: str, root: str) -> tuple[str, str | None, str | None]:
    """``(kind, tid, None)`` for a contract topic, else ``(kind, tid, why)``."""
    if topic == COMPLAINTS_TOPIC:
        return "complaints", None, None
    prefix = root + "/"
    if not topic.startswith(prefix):
        return "unknown", None, f"not under the topic root {root!r}"
    parts = topic[len(prefix) :].split("/")
    if len(parts) != 2:
        return "unknown", None, "expected <root>/<tid>/<kind>"
    tid, kind = parts
    valid_tid = tid if _TID.match(tid) else None
    if kind not in TELEMETRY_KINDS and kind != "availability":
        return "unknown", valid_tid, f"unknown kind {kind[:64]!r}"
    if valid_tid is None:
        return kind, None, f"terminal id {tid[:64]!r} in the topic is not valid"
    return kind, tid, None


def _availability(topic: str, tid: str, payload: bytes | bytearray, now: datetime) -> Decoded:
    word = payload.strip()
    if word not in (b"online", b"offline"):
        raise _Invalid(INVALID_VALUE, "availability must be the word online or offline")
    return Decoded("availability", topic, tid, Availability(tid, word.decode(), now), now)


def _complaint(topic: str, payload: bytes | bytearray, wall_now: datetime) -> Decoded:
    complaint = _COMPLAINT.decode(payload)
    _check_time(complaint.received_at, wall_now, "received_at")
    _check_time(complaint.occurred_at, wall_now, "occurred_at")
    return Decoded("complaints", topic, complaint.tid, complaint, complaint.received_at)


def _telemetry(
    kind: str, topic: str, tid: str, payload: bytes | bytearray, wall_now: datetime
) -> Decoded:
    message: Telemetry = decoder_for(kind).decode(payload)
    if message.v != CONTRACT_VERSION:
        raise _Invalid(UNSUPPORTED_VERSION, f"contract version {message.v} is not supported")
    if message.tid != tid:
        raise _Invalid(SPOOFED_TID, f"tid {message.tid!r} differs from the topic's {tid!r}")
    _check_time(message.ts, wall_now, "ts")
    if message.seq is not None and message.seq > _BIGINT_MAX:
        raise _Invalid(INVALID_VALUE, "seq is too large - at `$.seq`")
    if isinstance(message, Status):
        raw = _STATUS_RAW.decode(payload).devices
        changes = tuple(message.devices.fields())
        return Decoded(kind, topic, tid, message, message.ts, bytes(raw).decode(), changes)
    if isinstance(message, Event):
        raw = _EVENT_RAW.decode(payload).payload
        return Decoded(
            kind, topic, tid, message, message.ts, bytes(raw).decode(), _event_changes(message)
        )
    if isinstance(message, Operation):
        if message.started is not None:
            _check_time(message.started, wall_now, "started")
        for i, step in enumerate(message.steps):
            if step.ts is not None:
                _check_time(step.ts, wall_now, f"steps[{i}].ts")
        return Decoded(kind, topic, tid, message, message.ts)
    if message.uptime_s is not None and message.uptime_s > _BIGINT_MAX:
        raise _Invalid(INVALID_VALUE, "uptime_s is too large - at `$.uptime_s`")
    return Decoded(kind, topic, tid, message, message.ts)


def _event_changes(event: Event) -> tuple[FieldChange, ...]:
    """The device fields an event sets; raises :class:`_Invalid` on a payload of wrong type."""
    if event.name == STATUS_CHANGED:
        try:
            devices: Devices = devices_from_payload(event.payload)
        except msgspec.ValidationError as exc:
            raise _Invalid(
                _validation_reason(str(exc)), f"{exc} (in `$.payload.devices`)"
            ) from None
        return tuple(devices.fields())
    target = THRESHOLD_EVENTS.get(event.name)
    keys = (target[2],) if target else TERMINAL_EVENTS.get(event.name, ())
    for key in keys:
        value = event.payload.get(key)
        if value is not None and not isinstance(value, str):
            raise _Invalid(
                WRONG_TYPE, f"Expected `str`, got `{type(value).__name__}` - at `$.payload.{key}`"
            )
        if isinstance(value, str) and len(value) > _TEXT_MAX:
            raise _Invalid(
                INVALID_VALUE, f"longer than {_TEXT_MAX} characters - at `$.payload.{key}`"
            )
    if target is None:
        return ()
    device, field, key = target
    value = event.payload.get(key)
    return ((device, field, value),) if isinstance(value, str) else ()


def _check_time(ts: datetime, wall_now: datetime, where: str) -> None:
    if ts > wall_now + MAX_FUTURE:
        raise _Invalid(FUTURE_TS, f"{ts.isoformat()} is more than a day ahead - at `$.{where}`")
    if ts < EPOCH:
        raise _Invalid(ANCIENT_TS, f"{ts.isoformat()} is before 1970 - at `$.{where}`")


def _classify(exc: Exception, payload: bytes | bytearray) -> tuple[str, str]:
    if isinstance(exc, UnicodeDecodeError):
        return MALFORMED_JSON, "not valid UTF-8"
    if isinstance(exc, RecursionError):
        return MALFORMED_JSON, "nested too deeply"
    if isinstance(exc, msgspec.ValidationError):
        version = _version_of(payload)
        if (
            isinstance(version, int)
            and not isinstance(version, bool)
            and version != CONTRACT_VERSION
        ):
            return UNSUPPORTED_VERSION, f"contract version {version!r} is not supported"
        return _validation_reason(str(exc)), str(exc)
    return MALFORMED_JSON, str(exc)


def _validation_reason(message: str) -> str:
    if message.startswith("Object missing required field"):
        return MISSING_FIELD
    if message.startswith("Expected `") and "`, got `" in message:
        return WRONG_TYPE
    return INVALID_VALUE


def _version_of(payload: bytes | bytearray) -> object:
    try:
        return _VERSION.decode(payload).v
    except _DECODE_ERRORS:
        return None


def _reject(
    kind: str, topic: str, tid: str | None, reason: str, detail: str, payload: bytes | bytearray
) -> Rejected:
    return Rejected(kind, topic, tid, reason, detail[:1000], bytes(payload[:HEAD_BYTES]))
