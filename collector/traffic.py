"""Contract messages for benchmarks and tests: single builders and a fleet's traffic mix.

Everything here produces valid telemetry (version 1 of the contract) as typed structs or as
``(topic, payload)`` pairs ready to publish.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any, Final

from terminals.contract import (
    CardReader,
    CashAcceptor,
    Devices,
    Event,
    Heartbeat,
    Operation,
    Printer,
    Stacker,
    Status,
    Step,
    encode,
)

#: Share of each kind in the benchmark's mix (heartbeats dominate a real fleet's traffic).
MIX: Final = (("heartbeat", 0.55), ("operations", 0.25), ("events", 0.12), ("status", 0.08))
SERVICES: Final = ("mobile", "internet", "utilities", "transport", "wallet", "loan")


def heartbeat(tid: str, ts: datetime, msg_id: str, seq: int | None = None, **kw: Any) -> Heartbeat:
    return Heartbeat(
        v=1,
        tid=tid,
        id=msg_id,
        ts=ts,
        seq=seq,
        interval_s=kw.pop("interval_s", 60),
        uptime_s=kw.pop("uptime_s", 86_400),
        app=kw.pop("app", "kiosk 2.3.1"),
        **kw,
    )


def status(
    tid: str,
    ts: datetime,
    msg_id: str,
    seq: int | None = None,
    *,
    paper: str = "full",
    printer: str = "online",
    shutter: str = "closed",
    replenishment: str = "ok",
    count: int = 120,
) -> Status:
    return Status(
        v=1,
        tid=tid,
        id=msg_id,
        ts=ts,
        seq=seq,
        devices=Devices(
            printer=Printer(device=printer, paper=paper, media="notPresent", toner="full"),
            cashAcceptor=CashAcceptor(
                device="online",
                acceptor="ok",
                banknoteReader="ok",
                shutter=shutter,
                transport="ok",
                stacker=Stacker(
                    status="ok", replenishment=replenishment, count=count, capacity=600
                ),
            ),
            cardReader=CardReader(device="noDevice"),
        ),
    )


def event(
    tid: str,
    ts: datetime,
    msg_id: str,
    name: str,
    payload: dict[str, Any],
    device: str = "printer",
    seq: int | None = None,
) -> Event:
    return Event(v=1, tid=tid, id=msg_id, ts=ts, seq=seq, device=device, name=name, payload=payload)


def operation(
    tid: str,
    ts: datetime,
    msg_id: str,
    seq: int | None = None,
    *,
    amount_minor: int = 50_000,
    account: str = "*4567",
    payment: str = "success",
    receipt: str = "success",
    op_id: str | None = None,
) -> Operation:
    started = ts - timedelta(seconds=40)
    steps = [
        Step(
            step="cashAccepted",
            result="success",
            ts=started + timedelta(seconds=5),
            amount_minor=amount_minor,
        ),
        Step(
            step="paymentSent",
            result=payment,
            ts=started + timedelta(seconds=20),
            host_ref="AUTH-1" if payment == "success" else None,
            error=None if payment == "success" else "hostTimeout",
        ),
        Step(
            step="receiptPrinted",
            result=receipt,
            ts=ts,
            error=None if receipt == "success" else "paperOut",
        ),
    ]
    if payment != "success":
        outcome = "failed"
    elif receipt != "success":
        outcome = "completedWithWarnings"
    else:
        outcome = "completed"
    return Operation(
        v=1,
        tid=tid,
        id=msg_id,
        ts=ts,
        seq=seq,
        op_id=op_id or f"{msg_id}-op",
        kind="payment",
        service="mobile",
        account=account,
        amount_minor=amount_minor,
        currency="RUB",
        outcome=outcome,
        started=started,
        steps=steps,
    )


class FleetTraffic:
    """An endless, deterministic stream of one fleet's telemetry in the benchmark's mix.

    Terminal ids are ``<prefix>-000001`` and up; each terminal's messages have increasing
    ``seq`` and ``ts``; message ids are unique across the stream.
    """

    def __init__(
        self, root: str, terminals: int, start: datetime, *, prefix: str = "T", seed: int = 1
    ) -> None:
        self.root = root
        self.tids = [f"{prefix}-{i:06d}" for i in range(1, terminals + 1)]
        self._rng = random.Random(seed)
        self._seq = dict.fromkeys(self.tids, 0)
        self._clock = start
        self._kinds = [k for k, _ in MIX]
        self._weights = [w for _, w in MIX]

    def __iter__(self) -> Iterator[tuple[str, bytes]]:
        return self

    def __next__(self) -> tuple[str, bytes]:
        rng = self._rng
        tid = rng.choice(self.tids)
        seq = self._seq[tid] = self._seq[tid] + 1
        self._clock += timedelta(milliseconds=5)
        ts = self._clock
        msg_id = f"{tid}-{seq}"
        kind = rng.choices(self._kinds, self._weights)[0]
        message: Heartbeat | Status | Event | Operation
        if kind == "heartbeat":
            message = heartbeat(tid, ts, msg_id, seq, uptime_s=seq * 60)
        elif kind == "status":
            message = status(
                tid,
                ts,
                msg_id,
                seq,
                paper=rng.choice(("full", "full", "full", "low")),
                count=rng.randrange(0, 600),
            )
        elif kind == "events":
            message = self._event(tid, ts, msg_id, seq)
        else:
            payment = "success" if rng.random() < 0.97 else "timeout"
            receipt = "success" if rng.random() < 0.95 else "failed"
            message = operation(
                tid,
                ts,
                msg_id,
                seq,
                amount_minor=rng.randrange(100, 1_500_000, 100),
                account=f"*{rng.randrange(10_000):04d}",
                payment=payment,
                receipt=receipt,
            )
        return f"{self.root}/{tid}/{kind}", encode(message)

    def _event(self, tid: str, ts: datetime, msg_id: str, seq: int) -> Event:
        roll = self._rng.random()
        if roll < 0.4:
            return event(
                tid,
                ts,
                msg_id,
                "CashAcceptor.InputRefuseEvent",
                {"reason": "invalidBill"},
                device="cashAcceptor",
                seq=seq,
            )
        if roll < 0.6:
            return event(
                tid,
                ts,
                msg_id,
                "Printer.PaperThresholdEvent",
                {"paperSource": "upper", "threshold": self._rng.choice(("low", "full"))},
                seq=seq,
            )
        if roll < 0.8:
            return event(
                tid,
                ts,
                msg_id,
                "Common.StatusChangedEvent",
                {"devices": {"cashAcceptor": {"stacker": {"count": self._rng.randrange(600)}}}},
                device="cashAcceptor",
                seq=seq,
            )
        return event(
            tid,
            ts,
            msg_id,
            "CashManagement.NoteErrorEvent",
            {"reason": "skewedNote"},
            device="cashAcceptor",
            seq=seq,
        )
