"""One simulated kiosk: its connection, devices, customers, faults and engineer visits.

Every method named ``on_*`` is an action the world calls at a simulated time ``at`` (ms);
actions change state and hand messages to the world, stamped with the time they happen.
A customer's payment itself is played by :mod:`simulator.payment`.
"""

from __future__ import annotations

import random
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Final

from simulator import payment
from simulator.complaints import Affected
from simulator.customers import next_arrival
from simulator.devices import (
    ACCEPTOR_JAMS,
    PRINTER_FAULTS,
    PRINTER_JAMS,
    Change,
    Devices,
    Event,
    fault_off,
    fault_on,
    paper_event,
    stacker_event,
)
from simulator.fault import VISIT_ENDS, Fault
from simulator.fleet import Site
from simulator.ids import op_id
from simulator.timefmt import SECOND

if TYPE_CHECKING:
    from simulator.engine import World

APP = "kiosk 2.3.1"


#: The wrong clocks a clock_skew fault gives (its variant): a terminal set to local time but
#: labelled UTC, a lost RTC, a clock drifting for months; ahead and behind.
CLOCK_SKEWS: Final = ("+3h", "+5h", "-2h", "+45m", "-20m", "+9m", "-7m", "-1h")


def parse_skew(text: str) -> int:
    """``+3h`` / ``-20m`` in milliseconds."""
    sign = -1 if text.startswith("-") else 1
    unit = {"h": 3_600_000, "m": 60_000, "s": 1_000}[text[-1]]
    return sign * int(text.lstrip("+-")[:-1]) * unit


class TerminalSim:
    def __init__(self, world: World, site: Site) -> None:
        sc = world.scenario
        self.world = world
        self.site = site
        self.tid = site.tid
        self.offset = site.utc_offset_min
        self.rng = random.Random(f"{world.seed}:{site.tid}")
        sup = sc.supplies
        self.devices = Devices(
            paper_roll=sup.paper_roll,
            paper_low=max(1, int(sup.paper_roll * sup.paper_low_at)),
            capacity=sup.stacker_capacity,
            stacker_high=max(1, int(sup.stacker_capacity * sup.stacker_high_at)),
            paper_left=int(sup.paper_roll * self.rng.uniform(0.03, 1.0)),
            count=int(sup.stacker_capacity * self.rng.uniform(0.0, 0.8)),
        )
        self.per_day = sc.customers.per_terminal_per_day * self.rng.lognormvariate(0, 0.4)
        self.seq = 0
        self.op_n = 0
        self.connected = False
        self.hung = False
        self.in_service = 0
        self.busy_until = 0
        self.visit_due: int | None = None
        self.boot = sc.start - self.rng.randint(3_600, 40 * 86_400) * SECOND
        self.active: dict[str, Fault] = {}
        self.jam_waiting: Fault | None = None
        self.outbox: list[tuple[int, str, dict[str, Any], bool, int]] = []
        self.last_sent: int | None = None  # when this terminal last published (ms)
        #: how far this terminal's clock is off (ms, positive: ahead); its messages' ts
        self.clock_skew_ms = 0

    # -- output -------------------------------------------------------------------------

    def send(
        self, at: int, kind: str, body: dict[str, Any], retained: bool = False, qos: int = 1
    ) -> None:
        self.world.telemetry(at, self, kind, body, retained, qos)

    def event(self, at: int, ev: Event) -> None:
        self.send(at, "events", {"device": ev.device, "name": ev.name, "payload": ev.payload})

    def status(self, at: int) -> None:
        self.send(at, "status", {"devices": self.devices.snapshot()}, retained=True)

    def change(self, at: int, change: Change, ev: Event | None) -> None:
        """Apply a device change now; publish its event (if any) and a fresh snapshot."""
        partial = self.devices.apply(change)
        if not partial and ev is None:
            return
        if ev is None:
            device = next(iter(partial))
            ev = Event(device, "Common.StatusChangedEvent", {device: partial[device]})
        self.event(at, ev)
        self.status(at)

    # -- life ---------------------------------------------------------------------------

    def begin(self) -> None:
        """Schedule this terminal's own processes over the scenario."""
        w, sc = self.world, self.world.scenario
        w.at(sc.start, self.on_connect, None)
        w.at(sc.start + self.rng.randrange(sc.heartbeat_s * SECOND), self.on_heartbeat, None)
        first = next_arrival(self.rng, self.per_day, sc.start, self.offset, sc.end)
        if first is not None:
            w.at(first, self.on_arrival, None)
        for kind in sorted(sc.natural.rates):
            rate = sc.natural.rates[kind]
            t = float(sc.start)
            while rate > 0:
                t += self.rng.expovariate(rate / 86_400_000)
                if t >= sc.end:
                    break
                w.at(int(t), self.on_natural, kind)
        if self.devices.paper == "low" or self.devices.replenishment == "high":
            self.request_visit(sc.start + self.rng.randint(*sc.supplies.refill_delay))

    def on_connect(self, at: int, _: object) -> None:
        """Connected: what was held during a network loss goes first, in the order it was
        produced, then a fresh snapshot, so that the broker retains the current status (not
        a held one) and ``seq`` follows ``ts``."""
        self.connected = True
        self.world.connect(at, self)
        for when, kind, body, retained, qos in self.outbox:
            self.world.telemetry(when, self, kind, body, retained, qos)
        self.outbox.clear()
        self.status(at)

    def on_drop(self, at: int, _: object) -> None:
        if self.connected:
            self.connected = False
            self.world.drop(at, self)

    def on_heartbeat(self, at: int, _: object) -> None:
        hb = self.world.scenario.heartbeat_s
        self.world.at(at + hb * SECOND, self.on_heartbeat, None)
        if self.connected and not self.hung:
            body = {"interval_s": hb, "uptime_s": (at - self.boot) // SECOND, "app": APP}
            self.send(at, "heartbeat", body, qos=0)

    def can_serve(self) -> bool:
        return (
            self.connected and not self.hung and not self.in_service and self.devices.accepts_cash()
        )

    def on_arrival(self, at: int, _: object) -> None:
        sc = self.world.scenario
        following = next_arrival(self.rng, self.per_day, at, self.offset, sc.end)
        if following is not None:
            self.world.at(following, self.on_arrival, None)
        self.on_customer(at, None)

    def on_customer(self, at: int, _: object) -> None:
        """A customer at the terminal; one who finds it busy waits for the one before."""
        if self.busy_until > at:
            self.world.at(self.busy_until, self.on_customer, None)
            return
        if self.can_serve():
            self.serve(at, self.jam_waiting)
            return
        if self.in_service and not self.active:
            return
        cause = self.blocking_fault()
        if cause is not None:
            self.maybe_complain(at, "terminal_out_of_order", cause, None, None)

    def blocking_fault(self) -> Fault | None:
        for kind in ("terminal_offline", "cash_acceptor_jam", "cash_acceptor_fault"):
            if kind in self.active:
                return self.active[kind]
        return None

    # -- customers ----------------------------------------------------------------------

    def serve(self, at: int, jam: Fault | None) -> None:
        """One customer's payment (:func:`simulator.payment.serve`)."""
        payment.serve(self, at, jam)

    def op_id(self, start: int) -> str:
        """The ``op_id`` of the operation numbered ``op_n`` that began at ``start``."""
        return op_id(self.tid, self.world.run_tag, start, self.offset, self.op_n)

    def on_send(self, at: int, item: tuple[str, dict[str, Any]]) -> None:
        self.send(at, item[0], item[1])

    def later(self, at: int, change: Change | None, ev: Event) -> None:
        """A device change or event that happens later in a customer's operation."""
        self.world.at(at, self.on_change, (change or {}, ev))

    def on_change(self, at: int, item: tuple[Change, Event]) -> None:
        change, ev = item
        if change:
            self.change(at, change, ev)
        else:
            self.event(at, ev)

    def affected(
        self, at: int, amount: int | None, service: str | None, phone: str | None
    ) -> Affected:
        return Affected("", self.tid, self.site.address, self.offset, at, amount, service, phone)

    def maybe_complain(
        self,
        at: int,
        category: str,
        cause: Fault | None,
        op_id: str | None,
        affected: Affected | None,
        scale: float = 1.0,
    ) -> None:
        sc = self.world.scenario
        if self.rng.random() >= sc.complaints.probability.get(category, 0.0) * scale:
            return
        base = affected or self.affected(at, None, None, None)
        received = at + self.rng.randint(*sc.complaints.delay)
        self.world.complaint(self.rng, replace(base, category=category), received, cause, op_id)

    # -- faults -------------------------------------------------------------------------

    def on_natural(self, at: int, kind: str) -> None:
        """A fault happening by itself (wear, a missed collection, a network blip)."""
        if kind in self.active or (kind == "cash_acceptor_jam" and self.jam_waiting):
            return
        fault = self.world.new_fault(self.tid, kind, "natural", region=self.site.region)
        if kind == "terminal_offline":
            fault.mode = "network"
            self.world.at(at, self.on_fault_begins, fault)
            low, high = self.world.scenario.natural.offline_duration
            self.world.at(at + self.rng.randint(low, high), self.on_fault_ends, fault)
        elif kind == "cash_acceptor_jam":
            self.jam_waiting = fault  # it strikes on the next customer's banknote
        else:
            self.on_fault_begins(at, fault)

    def inject(self, at: int, fault: Fault, end: int) -> None:
        """A scenario fault from ``at`` to ``end``; device faults end with a visit at ``end``."""
        if fault.kind in self.active:
            return
        if fault.kind == "cash_acceptor_jam" and self.can_serve():
            self.serve(at, fault)  # a customer is paying when the acceptor jams
        else:
            self.on_fault_begins(at, fault)
        if fault.kind in VISIT_ENDS:
            low, high = self.world.scenario.engineers.visit
            length = min(self.rng.randint(low, high), max(SECOND, (end - at) // 2))
            self.world.at(end - length, self.on_visit, (length, fault.kind))
        else:
            self.world.at(end, self.on_fault_ends, fault)

    def on_fault_begins(self, at: int, fault: Fault) -> None:
        if fault.kind in self.active:
            return
        fault.start = at
        self.active[fault.kind] = fault
        self.world.started(fault)
        kind = fault.kind
        if kind == "terminal_offline":
            fault.last_message = self.last_sent
            if fault.mode == "hang":
                self.hung = True
            else:
                self.on_drop(at, None)
        elif kind == "clock_skew":
            fault.variant = self.rng.choice(CLOCK_SKEWS)
            self.clock_skew_ms = parse_skew(fault.variant)
        elif kind not in ("payment_failures", "silent_fault"):
            fault.variant = self.variant(kind)
            self.change(at, *fault_on(self.devices, kind, fault.variant))
        if fault.flap:
            self.world.at(at + self.flap_step(fault.flap), self.on_flap, fault)
        if fault.source == "natural" and kind in VISIT_ENDS:
            self.request_visit(at + self.rng.randint(*self.world.scenario.engineers.response))

    def variant(self, kind: str) -> str:
        choices = {
            "printer_jam": PRINTER_JAMS,
            "printer_fault": PRINTER_FAULTS,
            "cash_acceptor_jam": ACCEPTOR_JAMS,
        }
        return self.rng.choice(choices[kind]) if kind in choices else ""

    def flap_step(self, period: int) -> int:
        return max(SECOND, int(period / 2 * self.rng.uniform(0.7, 1.3)))

    def on_flap(self, at: int, fault: Fault) -> None:
        if fault.end is not None:
            return
        fault.flap_on = not fault.flap_on
        if fault.kind == "terminal_offline":
            if fault.flap_on:
                self.on_drop(at, None)
            else:
                self.on_connect(at, None)
        elif fault.flap_on:
            self.change(at, *fault_on(self.devices, fault.kind, fault.variant))
        else:
            self.change(at, *fault_off(self.devices, fault.kind, fault.variant))
        assert fault.flap is not None
        self.world.at(at + self.flap_step(fault.flap), self.on_flap, fault)

    def on_fault_ends(self, at: int, fault: Fault) -> None:
        """End of a fault that needs no engineer: the network, the app, the payment host."""
        if fault.end is not None or fault.start < 0:
            return
        if fault.kind == "terminal_offline":
            if self.hung:
                self.hung = False
                self.boot = at
                self.event(
                    at, Event("terminal", "Terminal.Boot", {"app": APP, "reason": "watchdog"})
                )
                self.status(at)
            if not self.connected:
                self.on_connect(at, None)
        self.close(at, fault, "recovery")

    def close(self, at: int, fault: Fault, how: str) -> None:
        fault.end = at
        fault.ended_by = how
        if fault.kind == "clock_skew":
            self.clock_skew_ms = 0  # the engineer set the clock right
        if self.active.get(fault.kind) is fault:
            del self.active[fault.kind]

    # -- engineers ----------------------------------------------------------------------

    def request_visit(self, when: int) -> None:
        """Ask for a visit by ``when``; an earlier visit already booked is kept."""
        if self.visit_due is not None and self.visit_due <= when:
            return
        self.visit_due = when
        low, high = self.world.scenario.engineers.visit
        self.world.at(when, self.on_booked_visit, (when, self.rng.randint(low, high)))

    def on_booked_visit(self, at: int, item: tuple[int, int]) -> None:
        when, length = item
        if self.visit_due == when:
            self.on_visit(at, (length, "maintenance"))

    def on_visit(self, at: int, item: tuple[int, str]) -> None:
        length, reason = item
        self.in_service += 1
        who = (
            "cash collection"
            if reason in ("maintenance", "cash_acceptor_full")
            else "field engineer"
        )
        self.event(
            at, Event("terminal", "Terminal.ServiceMode", {"state": "entered", "engineer": who})
        )
        self.world.at(at + length, self.on_visit_done, reason)

    def on_visit_done(self, at: int, reason: str) -> None:
        d = self.devices
        had_paper, had_notes = d.paper, d.count
        partial = d.apply(d.restore())
        if had_paper != "full":
            self.event(at, paper_event("full"))
        if had_notes:
            self.event(at, stacker_event("empty"))
        if partial:
            self.event(at, Event("terminal", "Common.StatusChangedEvent", partial))
        self.status(at)
        for kind in sorted(VISIT_ENDS & set(self.active)):
            self.close(
                at, self.active[kind], "collection" if kind == "cash_acceptor_full" else "engineer"
            )
        if self.jam_waiting is not None:
            self.jam_waiting = None
        self.visit_due = None
        self.in_service -= 1
        self.event(at, Event("terminal", "Terminal.ServiceMode", {"state": "left"}))
