"""A device's current state in words, from the raw ``device_state`` rows.

Each raw ``(device, field, value)`` may be a problem: a code (``paper_out``) with a level.
A device's condition is its worst problem; its state in words lists its problems, worst
first; "since" is when the worst problem began, or, for a healthy device, when its last
field changed (it has been in this state since then). Values the contract does not know are
shown as an unknown state, never dropped.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from terminals.contract import FIELD_VALUES
from termwatch.web.i18n import text
from termwatch.web.models import Condition, Device, DeviceField

OK, WARNING, FAULT = 0, 1, 2
DEVICES: Final = ("printer", "cashAcceptor", "cardReader")

_DEVICE_FIELD: Final[dict[str, tuple[str, int]]] = {
    "offline": ("offline", FAULT),
    "powerOff": ("power_off", FAULT),
    "hardwareError": ("hardware_error", FAULT),
    "userError": ("user_error", WARNING),
    "fraudAttempt": ("fraud_attempt", FAULT),
    "potentialFraud": ("potential_fraud", WARNING),
    "starting": ("starting", WARNING),
}

#: (device, field) -> value -> (problem code, level). Values not listed are healthy.
PROBLEMS: Final[dict[tuple[str, str], dict[str, tuple[str, int]]]] = {
    ("printer", "device"): _DEVICE_FIELD,
    ("printer", "paper"): {
        "out": ("paper_out", FAULT),
        "jammed": ("paper_jammed", FAULT),
        "low": ("paper_low", WARNING),
    },
    ("printer", "media"): {"jammed": ("media_jammed", FAULT)},
    ("printer", "toner"): {"out": ("toner_out", FAULT), "low": ("toner_low", WARNING)},
    ("cashAcceptor", "device"): _DEVICE_FIELD,
    ("cashAcceptor", "acceptor"): {
        "stop": ("acceptor_stopped", FAULT),
        "attention": ("acceptor_attention", WARNING),
    },
    ("cashAcceptor", "banknoteReader"): {"inoperable": ("reader_inoperable", FAULT)},
    ("cashAcceptor", "shutter"): dict.fromkeys(
        ("jammedOpen", "jammedPartiallyOpen", "jammedClosed", "jammedUnknown"),
        ("shutter_jammed", FAULT),
    ),
    ("cashAcceptor", "transport"): {"inoperative": ("transport_inoperative", FAULT)},
    ("cashAcceptor", "stacker.status"): {
        "inoperative": ("stacker_inoperative", FAULT),
        "missing": ("stacker_missing", FAULT),
        "manipulated": ("stacker_manipulated", FAULT),
        "notConfigured": ("stacker_not_configured", WARNING),
    },
    ("cashAcceptor", "stacker.replenishment"): {
        "full": ("stacker_full", FAULT),
        "high": ("stacker_high", WARNING),
    },
    ("cardReader", "device"): _DEVICE_FIELD,
    ("cardReader", "media"): {"jammed": ("card_jammed", FAULT)},
}
#: Fields that carry counts, not states.
_COUNTS: Final = frozenset({"stacker.count", "stacker.capacity"})


@dataclass(frozen=True, slots=True)
class StateRow:
    """One row of ``device_state``."""

    device: str
    field: str
    value: str
    since: datetime


@dataclass(frozen=True, slots=True)
class Problem:
    code: str
    level: int
    since: datetime


def problems_of(rows: Iterable[StateRow]) -> list[Problem]:
    """The problems among one device's fields, worst and oldest first."""
    found: list[Problem] = []
    for row in rows:
        if row.field in _COUNTS:
            continue
        allowed = FIELD_VALUES.get((row.device, row.field))
        if allowed is not None and row.value not in allowed:
            found.append(Problem("unknown_value", WARNING, row.since))
            continue
        hit = PROBLEMS.get((row.device, row.field), {}).get(row.value)
        if hit is not None:
            found.append(Problem(hit[0], hit[1], row.since))
    found.sort(key=lambda p: (-p.level, p.since))
    return found


def describe(device: str, rows: list[StateRow], lang: str) -> Device:
    """The device's condition, its state in words (in ``lang``) and since when."""
    fields = [DeviceField(field=r.field, value=r.value, since=r.since) for r in rows]
    fields.sort(key=lambda f: f.field)
    label = text(lang, f"device.{device}")
    by_field = {r.field: r for r in rows}
    absent = by_field.get("device")
    if not rows:
        return Device(
            device=device,
            label=label,
            condition="unknown",
            state=text(lang, "state.no_data"),
            problems=[],
            since=None,
            fields=[],
        )
    if absent is not None and absent.value == "noDevice":
        return Device(
            device=device,
            label=label,
            condition="absent",
            state=text(lang, "state.not_installed"),
            problems=[],
            since=absent.since,
            fields=fields,
        )
    found = problems_of(rows)
    if not found:
        return Device(
            device=device,
            label=label,
            condition="ok",
            state=text(lang, "state.ok"),
            problems=[],
            since=max(r.since for r in rows),
            fields=fields,
        )
    condition: Condition = "fault" if found[0].level == FAULT else "warning"
    codes = list(dict.fromkeys(p.code for p in found))
    return Device(
        device=device,
        label=label,
        condition=condition,
        state="; ".join(text(lang, f"state.{code}") for code in codes),
        problems=codes,
        since=found[0].since,
        fields=fields,
    )


def describe_all(rows: Iterable[StateRow], lang: str) -> list[Device]:
    """Every known device of a terminal (the three of the contract first, then others)."""
    grouped: dict[str, list[StateRow]] = {name: [] for name in DEVICES}
    for row in rows:
        grouped.setdefault(row.device, []).append(row)
    return [describe(name, grouped[name], lang) for name in grouped]
