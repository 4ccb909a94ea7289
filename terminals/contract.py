"""Typed messages of the terminal telemetry contract, version 1 (shared/contract/telemetry.md).

Decoding is strict about types (no string-to-number coercion) and lenient about the future:
unknown fields are ignored here (the raw payload is stored by the collector), and enumerated
values are plain strings, so a value the standard adds later is kept as it came and reads as
``unknown`` through :func:`known`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Final

import msgspec
from msgspec import Meta, Struct

CONTRACT_VERSION: Final = 1
MAX_PAYLOAD: Final = 64 * 1024

Tid = Annotated[str, Meta(pattern=r"^[A-Za-z0-9_-]{1,32}$")]
MsgId = Annotated[str, Meta(min_length=1, max_length=64)]
Timestamp = Annotated[datetime, Meta(tz=True)]
Short = Annotated[str, Meta(max_length=256)]
Minor = Annotated[int, Meta(ge=0, le=10**15)]

DEVICE_STATES: Final = frozenset(
    {
        "online",
        "offline",
        "powerOff",
        "noDevice",
        "hardwareError",
        "userError",
        "deviceBusy",
        "fraudAttempt",
        "potentialFraud",
        "starting",
    }
)
PAPER: Final = frozenset({"full", "low", "out", "jammed", "unknown"})
MEDIA: Final = frozenset({"unknown", "present", "notPresent", "jammed", "entering", "retracted"})
TONER: Final = frozenset({"full", "low", "out", "unknown"})
ACCEPTOR: Final = frozenset({"ok", "attention", "stop", "unknown"})
BANKNOTE_READER: Final = frozenset({"ok", "inoperable", "unknown"})
SHUTTER: Final = frozenset(
    {
        "closed",
        "open",
        "jammedOpen",
        "jammedPartiallyOpen",
        "jammedClosed",
        "jammedUnknown",
        "unknown",
    }
)
TRANSPORT: Final = frozenset({"ok", "inoperative", "unknown"})
STACKER_STATUS: Final = frozenset({"ok", "inoperative", "missing", "notConfigured", "manipulated"})
REPLENISHMENT: Final = frozenset({"ok", "full", "high", "low", "empty"})
CARD_MEDIA: Final = frozenset({"unknown", "present", "notPresent", "jammed", "entering", "latched"})
OUTCOMES: Final = frozenset({"completed", "completedWithWarnings", "failed", "cancelled"})
STEPS: Final = frozenset({"cashAccepted", "cardAuthorised", "paymentSent", "receiptPrinted"})
STEP_RESULTS: Final = frozenset({"success", "failed", "timeout", "skipped"})

#: Allowed values per flattened device field, as ``(device, field)``.
FIELD_VALUES: Final[dict[tuple[str, str], frozenset[str]]] = {
    ("printer", "device"): DEVICE_STATES,
    ("printer", "paper"): PAPER,
    ("printer", "media"): MEDIA,
    ("printer", "toner"): TONER,
    ("cashAcceptor", "device"): DEVICE_STATES,
    ("cashAcceptor", "acceptor"): ACCEPTOR,
    ("cashAcceptor", "banknoteReader"): BANKNOTE_READER,
    ("cashAcceptor", "shutter"): SHUTTER,
    ("cashAcceptor", "transport"): TRANSPORT,
    ("cashAcceptor", "stacker.status"): STACKER_STATUS,
    ("cashAcceptor", "stacker.replenishment"): REPLENISHMENT,
    ("cardReader", "device"): DEVICE_STATES,
    ("cardReader", "media"): CARD_MEDIA,
}


def known(value: str | None, allowed: frozenset[str]) -> str:
    """``value`` if the contract knows it, else ``"unknown"`` (the raw value is kept elsewhere)."""
    return value if value is not None and value in allowed else "unknown"


class Envelope(Struct, kw_only=True):
    v: int
    tid: Tid
    id: MsgId
    ts: Timestamp
    seq: Annotated[int, Meta(ge=0)] | None = None


class Printer(Struct, kw_only=True, omit_defaults=True):
    device: Short | None = None
    paper: Short | None = None
    media: Short | None = None
    toner: Short | None = None


class Stacker(Struct, kw_only=True, omit_defaults=True):
    status: Short | None = None
    replenishment: Short | None = None
    count: Annotated[int, Meta(ge=0)] | None = None
    capacity: Annotated[int, Meta(ge=0)] | None = None


class CashAcceptor(Struct, kw_only=True, omit_defaults=True):
    device: Short | None = None
    acceptor: Short | None = None
    banknoteReader: Short | None = None
    shutter: Short | None = None
    transport: Short | None = None
    stacker: Stacker | None = None


class CardReader(Struct, kw_only=True, omit_defaults=True):
    device: Short | None = None
    media: Short | None = None


class Devices(Struct, kw_only=True, omit_defaults=True):
    printer: Printer | None = None
    cashAcceptor: CashAcceptor | None = None
    cardReader: CardReader | None = None

    def fields(self) -> list[tuple[str, str, str]]:
        """Flatten to ``(device, field, value)``; nested stacker fields become ``stacker.x``.

        Only fields present in the message are listed: a missing device or field is unchanged.
        """
        out: list[tuple[str, str, str]] = []
        for device_name in ("printer", "cashAcceptor", "cardReader"):
            device = getattr(self, device_name)
            if device is None:
                continue
            for name in device.__struct_fields__:
                value = getattr(device, name)
                if value is None:
                    continue
                if isinstance(value, Stacker):
                    for sub in value.__struct_fields__:
                        sub_value = getattr(value, sub)
                        if sub_value is not None:
                            out.append((device_name, f"stacker.{sub}", str(sub_value)))
                else:
                    out.append((device_name, name, value))
        return out


class Status(Envelope, kw_only=True):
    devices: Devices


class Event(Envelope, kw_only=True):
    device: Short
    name: Annotated[str, Meta(min_length=1, max_length=128)]
    payload: dict[str, Any] = msgspec.field(default_factory=dict)


class Step(Struct, kw_only=True):
    step: Short
    result: Short
    ts: Timestamp | None = None
    amount_minor: Minor | None = None
    error: Short | None = None
    host_ref: Short | None = None


class Operation(Envelope, kw_only=True):
    op_id: Annotated[str, Meta(min_length=1, max_length=128)]
    kind: Short = "payment"
    service: Short | None = None
    account: Short | None = None
    amount_minor: Minor
    currency: Annotated[str, Meta(pattern=r"^[A-Z]{3}$")] = "RUB"
    outcome: Short
    started: Timestamp | None = None
    steps: list[Step] = msgspec.field(default_factory=list)

    def step(self, name: str) -> Step | None:
        """The last step of that name, or None."""
        found = None
        for step in self.steps:
            if step.step == name:
                found = step
        return found

    def failed_step(self) -> Step | None:
        """The first step whose result is not ``success`` or ``skipped``."""
        for step in self.steps:
            if step.result not in ("success", "skipped"):
                return step
        return None

    def cash_accepted_minor(self) -> int:
        step = self.step("cashAccepted")
        if step is None or step.result != "success":
            return 0
        return step.amount_minor if step.amount_minor is not None else self.amount_minor

    def money_at_risk_minor(self) -> int:
        """Cash accepted on an operation whose ``paymentSent`` did not succeed."""
        cash = self.cash_accepted_minor()
        if not cash:
            return 0
        sent = self.step("paymentSent")
        return 0 if sent is not None and sent.result == "success" else cash


class Heartbeat(Envelope, kw_only=True):
    interval_s: Annotated[int, Meta(ge=1, le=86_400)] = 60
    uptime_s: Annotated[int, Meta(ge=0)] | None = None
    app: Short | None = None


COMPLAINT_CATEGORIES: Final = (
    "no_receipt",
    "payment_failed",
    "cash_not_credited",
    "terminal_out_of_order",
    "other",
)


class Complaint(Struct, kw_only=True, forbid_unknown_fields=False):
    """A customer complaint from the support desk (api.md, Complaints)."""

    ref: Annotated[str, Meta(min_length=1, max_length=128)]
    received_at: Timestamp
    category: Annotated[str, Meta(min_length=1, max_length=64)]
    occurred_at: Timestamp
    channel: Short = "phone"
    tid: Tid | None = None
    address: Annotated[str, Meta(min_length=1, max_length=512)] | None = None
    amount_minor: Minor | None = None
    currency: Annotated[str, Meta(pattern=r"^[A-Z]{3}$")] = "RUB"
    customer: Annotated[str, Meta(max_length=64)] | None = None
    text: Annotated[str, Meta(max_length=4000)] | None = None

    def __post_init__(self) -> None:
        if self.category not in COMPLAINT_CATEGORIES:
            raise ValueError(f"category must be one of {', '.join(COMPLAINT_CATEGORIES)}")
        if self.tid is None and self.address is None:
            raise ValueError("either tid or address is required")


MESSAGE_TYPES: Final[dict[str, type[Envelope]]] = {
    "status": Status,
    "events": Event,
    "operations": Operation,
    "heartbeat": Heartbeat,
}

_DECODERS: Final = {kind: msgspec.json.Decoder(cls) for kind, cls in MESSAGE_TYPES.items()}
_ENCODER: Final = msgspec.json.Encoder()


def decoder_for(kind: str) -> msgspec.json.Decoder[Any]:
    """The strict JSON decoder for a telemetry kind (``status``, ``events``, ...)."""
    return _DECODERS[kind]


def encode(message: Struct) -> bytes:
    """JSON bytes of a contract message (used by the simulator and tests)."""
    return _ENCODER.encode(message)


def devices_from_payload(payload: dict[str, Any]) -> Devices:
    """The partial ``devices`` object of a ``Common.StatusChangedEvent``.

    Accepts both ``{"devices": {...}}`` and the devices object itself. Raises
    :class:`msgspec.ValidationError` when the types are wrong.
    """
    body = payload.get("devices", payload)
    return msgspec.convert(body, Devices, strict=True)
