"""Device state of one kiosk (receipt printer, cash acceptor) and how faults change it.

A change is a dict of attribute names to new values; :meth:`Devices.apply` applies it and
returns the partial ``devices`` object of telemetry.md (only changed fields), and
:func:`fault_on` / :func:`fault_off` say which change and which XFS4IoT event reveal a fault.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

Change = dict[str, Any]

#: attribute -> (device, field of that device; ``stacker.x`` inside the stacker).
FIELDS: Final[dict[str, tuple[str, str]]] = {
    "p_device": ("printer", "device"),
    "paper": ("printer", "paper"),
    "media": ("printer", "media"),
    "a_device": ("cashAcceptor", "device"),
    "acceptor": ("cashAcceptor", "acceptor"),
    "shutter": ("cashAcceptor", "shutter"),
    "transport": ("cashAcceptor", "transport"),
    "replenishment": ("cashAcceptor", "stacker.replenishment"),
    "count": ("cashAcceptor", "stacker.count"),
}


@dataclass(slots=True)
class Event:
    """An XFS4IoT event to publish on ``events``."""

    device: str
    name: str
    payload: dict[str, Any]


@dataclass(slots=True)
class Devices:
    paper_roll: int
    paper_low: int  # receipts left when the paper turns ``low``
    capacity: int
    stacker_high: int  # notes when the stacker turns ``high``
    paper_left: int
    count: int
    p_device: str = "online"
    paper: str = "full"
    media: str = "notPresent"
    a_device: str = "online"
    acceptor: str = "ok"
    shutter: str = "closed"
    transport: str = "ok"
    replenishment: str = "ok"

    def __post_init__(self) -> None:
        self.paper = self.paper_level()
        self.replenishment = self.stacker_level()

    def paper_level(self) -> str:
        if self.paper_left <= 0:
            return "out"
        return "low" if self.paper_left <= self.paper_low else "full"

    def stacker_level(self) -> str:
        if self.count >= self.capacity:
            return "full"
        if self.count >= self.stacker_high:
            return "high"
        return "empty" if self.count == 0 else "ok"

    def snapshot(self) -> dict[str, Any]:
        """The full ``devices`` object of a status message."""
        return {
            "printer": {
                "device": self.p_device,
                "paper": self.paper,
                "media": self.media,
                "toner": "full",
            },
            "cashAcceptor": {
                "device": self.a_device,
                "acceptor": self.acceptor,
                "banknoteReader": "ok",
                "shutter": self.shutter,
                "transport": self.transport,
                "stacker": {
                    "status": "ok",
                    "replenishment": self.replenishment,
                    "count": self.count,
                    "capacity": self.capacity,
                },
            },
            "cardReader": {"device": "noDevice"},
        }

    def apply(self, change: Change) -> dict[str, Any]:
        """Apply ``change``; return the partial devices object of the fields that changed."""
        partial: dict[str, Any] = {}
        for attr, value in change.items():
            if getattr(self, attr) == value:
                continue
            setattr(self, attr, value)
            device, name = FIELDS[attr]
            target = partial.setdefault(device, {})
            if name.startswith("stacker."):
                target = target.setdefault("stacker", {})
                name = name.removeprefix("stacker.")
            target[name] = value
        return partial

    def receipt_error(self) -> str | None:
        """Why a receipt cannot be printed now (an XFS4IoT error code), or None."""
        if self.p_device != "online":
            return "hardwareError"
        if self.media == "jammed":
            return "mediaJammed"
        if self.paper == "jammed":
            return "paperJammed"
        if self.paper == "out" or self.paper_left <= 0:
            return "paperOut"
        return None

    def accepts_cash(self) -> bool:
        """False when the acceptor cannot take notes at all (jammed or failed)."""
        return (
            self.a_device == "online"
            and self.acceptor != "stop"
            and self.transport == "ok"
            and not self.shutter.startswith("jammed")
        )

    def restore(self) -> Change:
        """What an engineer's visit (with a fresh roll and a cash collection) sets."""
        self.paper_left = self.paper_roll
        self.count = 0
        return {
            "p_device": "online",
            "paper": "full",
            "media": "notPresent",
            "a_device": "online",
            "acceptor": "ok",
            "shutter": "closed",
            "transport": "ok",
            "replenishment": "empty",
            "count": 0,
        }


PRINTER_JAMS: Final = ("media", "paper")
PRINTER_FAULTS: Final = ("hardwareError", "hardwareError", "offline", "powerOff")
ACCEPTOR_JAMS: Final = ("jammedOpen", "jammedClosed", "jammedPartiallyOpen", "transport")


def fault_on(devices: Devices, kind: str, variant: str) -> tuple[Change, Event]:
    """The change and the event that show ``kind`` starting (variant from the lists above)."""
    if kind == "printer_paper_out":
        devices.paper_left = 0
        return {"paper": "out"}, paper_event("out")
    if kind == "printer_jam":
        if variant == "media":
            return {"media": "jammed"}, Event(
                "printer", "Printer.MediaAutoRetractedEvent", {"result": "jammed"}
            )
        return {"paper": "jammed"}, _status_event("printer", {"paper": "jammed"})
    if kind == "printer_fault":
        if variant == "hardwareError":
            return {"p_device": "hardwareError"}, Event(
                "printer",
                "Common.ErrorEvent",
                {
                    "eventId": "hardware",
                    "action": "reset",
                    "vendorDescription": "print head fault 0x31",
                },
            )
        return {"p_device": variant}, _status_event("printer", {"device": variant})
    if kind == "cash_acceptor_jam":
        if variant == "transport":
            change: Change = {"transport": "inoperative", "acceptor": "attention"}
            return change, _status_event(
                "cashAcceptor", {"transport": "inoperative", "acceptor": "attention"}
            )
        return {"shutter": variant, "acceptor": "attention"}, Event(
            "cashAcceptor",
            "CashManagement.ShutterStatusChangedEvent",
            {"position": "input", "shutter": variant},
        )
    if kind == "cash_acceptor_full":
        devices.count = devices.capacity
        change = {"replenishment": "full", "count": devices.capacity, "acceptor": "attention"}
        return change, stacker_event("full")
    if kind == "cash_acceptor_fault":
        return {"a_device": "hardwareError", "acceptor": "stop"}, Event(
            "cashAcceptor",
            "Common.ErrorEvent",
            {
                "eventId": "hardware",
                "action": "reset",
                "vendorDescription": "validator head failure E-17",
            },
        )
    raise ValueError(f"{kind} is not a device fault")


def fault_off(devices: Devices, kind: str, variant: str) -> tuple[Change, Event]:
    """The change and event of a flapping fault clearing by itself for a moment."""
    if kind == "printer_paper_out":
        devices.paper_left = max(devices.paper_left, 1)
        return {"paper": "low"}, paper_event("low")
    if kind == "printer_jam":
        field = "media" if variant == "media" else "paper"
        value = "notPresent" if variant == "media" else devices.paper_level()
        return {field: value}, _status_event("printer", {field: value})
    if kind == "printer_fault":
        return {"p_device": "online"}, _status_event("printer", {"device": "online"})
    if kind == "cash_acceptor_jam":
        if variant == "transport":
            return {"transport": "ok", "acceptor": "ok"}, _status_event(
                "cashAcceptor", {"transport": "ok", "acceptor": "ok"}
            )
        return {"shutter": "closed", "acceptor": "ok"}, Event(
            "cashAcceptor",
            "CashManagement.ShutterStatusChangedEvent",
            {"position": "input", "shutter": "closed"},
        )
    if kind == "cash_acceptor_fault":
        return {"a_device": "online", "acceptor": "ok"}, _status_event(
            "cashAcceptor", {"device": "online", "acceptor": "ok"}
        )
    raise ValueError(f"{kind} does not flap")


def paper_event(threshold: str) -> Event:
    """``Printer.PaperThresholdEvent`` of the (single) upper roll."""
    return Event(
        "printer", "Printer.PaperThresholdEvent", {"paperSource": "upper", "threshold": threshold}
    )


def stacker_event(level: str) -> Event:
    """``Storage.StorageThresholdEvent`` of the stacker at ``level``."""
    return Event(
        "cashAcceptor", "Storage.StorageThresholdEvent", {"unit": "stacker", "replenishment": level}
    )


def refuse_event(reason: str) -> Event:
    """``CashAcceptor.InputRefuseEvent``: the acceptor refused the customer's notes."""
    return Event("cashAcceptor", "CashAcceptor.InputRefuseEvent", {"reason": reason})


def _status_event(device: str, fields: dict[str, Any]) -> Event:
    return Event(device, "Common.StatusChangedEvent", {device: fields})
