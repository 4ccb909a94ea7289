"""The discrete-event simulation: a pure generator of timed messages, with ground truth.

:class:`World` runs every terminal of a scenario in simulated time and yields
:class:`Emission` items in time order; it never touches the network or the wall clock, so
the same (scenario, seed) always gives the same items, byte for byte. A publisher
(:mod:`simulator.publisher`) sends them; ``truth()`` gives the ground-truth records.

Randomness: each terminal draws from its own generator seeded by ``(seed, tid)``; the
world (target picks, background complaints) from ``(seed, "world")``.
"""

from __future__ import annotations

import heapq
import itertools
import random
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

import msgspec

from simulator.complaints import Affected, complaint_body
from simulator.fault import Fault
from simulator.fleet import Site, build_fleet
from simulator.ids import complaint_ref, message_id, run_tag
from simulator.scenario_model import FaultSpec, Scenario
from simulator.terminal import TerminalSim
from simulator.timefmt import HOUR, MINUTE, rfc3339, to_datetime, to_ms
from simulator.truth import ComplaintRecord, FaultRecord, RunRecord, TruthRecord

COMPLAINTS_TOPIC = "support/complaints"
_encode = msgspec.json.Encoder().encode


class Emission(NamedTuple):
    """One thing to do at simulated time ``at`` (ms since the epoch).

    ``action``: ``publish`` (telemetry), ``connect`` (open the terminal's connection with its
    last will, then publish ``payload`` = ``online`` retained on ``topic``), ``drop`` (lose
    the connection without DISCONNECT: the broker publishes the will, ``offline``, on
    ``topic``) or ``complaint`` (``payload`` is the api.md complaint JSON).
    """

    at: int
    tid: str | None
    action: str
    topic: str
    payload: bytes
    retained: bool
    qos: int


Action = Callable[[int, Any], None]


class World:
    def __init__(
        self, scenario: Scenario, seed: int | None = None, topic_root: str = "terminals"
    ) -> None:
        self.scenario = scenario
        self.seed = scenario.seed if seed is None else seed
        self.root = topic_root
        self.now = scenario.start
        self.rng = random.Random(f"{self.seed}:world")
        self.sites: list[Site] = build_fleet(scenario)
        self.terminals = [TerminalSim(self, site) for site in self.sites]
        self.by_tid = {t.tid: t for t in self.terminals}
        self.faults: list[Fault] = []
        self.complaints: list[ComplaintRecord] = []
        self._heap: list[tuple[int, int, Action, Any]] = []
        self._order = itertools.count()
        self._ready: list[Emission] = []
        self._fault_n = 0
        self._ref_n = 0
        self._claimed: dict[str, list[tuple[int, int]]] = {}
        self.run_tag = run_tag(scenario, self.seed)
        self._mess_rng = random.Random(f"{self.seed}:mess")  # untouched without a mess

    # -- scheduling and output (used by terminals) ----------------------------------------

    def at(self, when: int, action: Action, arg: Any) -> None:
        heapq.heappush(self._heap, (when, next(self._order), action, arg))

    def telemetry(
        self, at: int, term: TerminalSim, kind: str, body: dict[str, Any], retained: bool, qos: int
    ) -> None:
        """Publish now, keep it for the reconnection (network down), or lose it (app hung)."""
        if term.hung:
            return
        if not term.connected:
            if kind != "heartbeat":
                term.outbox.append((at, kind, body, retained, qos))
            return
        term.seq += 1
        term.last_sent = at
        message = {
            "v": 1,
            "tid": term.tid,
            "id": message_id(term.tid, self.run_tag, term.seq),
            "ts": rfc3339(at + term.clock_skew_ms, term.offset),
            "seq": term.seq,
        }
        message.update(body)
        topic = f"{self.root}/{term.tid}/{kind}"
        mess, rng = self.scenario.mess, self._mess_rng
        if mess.duplicates and rng.random() < mess.duplicates:
            later = self.now + rng.randint(*mess.duplicate_delay)
            self.at(later, self._resend, (term, topic, message, retained, qos))
        emission = Emission(self.now, term.tid, "publish", topic, _encode(message), retained, qos)
        if mess.reorder and rng.random() < mess.reorder:
            self.at(self.now + rng.randint(*mess.reorder_delay), self._emit_late, emission)
        else:
            self._ready.append(emission)

    def _resend(self, at: int, item: tuple[TerminalSim, str, dict[str, Any], bool, int]) -> None:
        """The same message id sent again with the terminal's newer time (a resend)."""
        term, topic, message, retained, qos = item
        if term.hung or not term.connected:
            return
        again = dict(message, ts=rfc3339(at + term.clock_skew_ms, term.offset))
        self._ready.append(Emission(at, term.tid, "publish", topic, _encode(again), retained, qos))

    def _emit_late(self, at: int, emission: Emission) -> None:
        """A message held back on its way: delivered after newer ones."""
        self._ready.append(emission._replace(at=at))

    def connect(self, at: int, term: TerminalSim) -> None:
        topic = f"{self.root}/{term.tid}/availability"
        self._ready.append(Emission(at, term.tid, "connect", topic, b"online", True, 1))

    def drop(self, at: int, term: TerminalSim) -> None:
        topic = f"{self.root}/{term.tid}/availability"
        self._ready.append(Emission(at, term.tid, "drop", topic, b"offline", True, 1))

    def new_fault(self, tid: str, kind: str, source: str, **fields: Any) -> Fault:
        self._fault_n += 1
        return Fault(
            fault_id=f"{source}-{self._fault_n:05d}", tid=tid, kind=kind, source=source, **fields
        )

    def started(self, fault: Fault) -> None:
        self.faults.append(fault)

    def complaint(
        self,
        rng: random.Random,
        affected: Affected,
        received: int,
        cause: Fault | None,
        op_id: str | None,
    ) -> None:
        """A customer complains at ``received`` (nothing happens if that is past the end)."""
        if received >= self.scenario.end:
            return
        self._ref_n += 1
        ref = complaint_ref(self.scenario.start, self.run_tag, self._ref_n)
        sc = self.scenario.complaints
        body, by_address = complaint_body(
            rng, ref, affected, received, address_only=sc.address_only, amount_wrong=sc.amount_wrong
        )
        if cause is not None and cause.kind == "silent_fault":
            cause.evidence += 1
            cause.evidence_at.append(received)
        self.complaints.append(
            ComplaintRecord(
                ref=ref,
                tid=affected.tid,
                true_cause_kind=cause.kind if cause is not None else None,
                op_id=op_id,
                fault_id=cause.fault_id if cause is not None else None,
                category=affected.category,
                occurred_at=to_datetime(affected.occurred, affected.offset_min),
                received_at=to_datetime(received, affected.offset_min),
                by_address=by_address,
            )
        )
        self.at(received, self._on_complaint, body)

    def _on_complaint(self, at: int, body: dict[str, Any]) -> None:
        self._ready.append(
            Emission(at, None, "complaint", COMPLAINTS_TOPIC, _encode(body), False, 1)
        )

    # -- the run ------------------------------------------------------------------------

    def emissions(self) -> Iterator[Emission]:
        """Everything the fleet does, in time order; call once."""
        sc = self.scenario
        for term in self.terminals:
            term.begin()
        for spec in sc.faults:
            self._schedule_spec(spec)
        self._schedule_skewed_clocks()
        self._schedule_background()
        while self._heap:
            when, _, action, arg = heapq.heappop(self._heap)
            if when >= sc.end:
                break
            self.now = when
            action(when, arg)
            if self._ready:
                ready, self._ready = self._ready, []
                yield from ready
        for fault in self.faults:
            if fault.end is None:
                fault.end = sc.end

    def _schedule_skewed_clocks(self) -> None:
        """``mess.skewed_share`` of the fleet with a wrong clock from the start."""
        share = self.scenario.mess.skewed_share
        if not share:
            return
        count = max(1, round(share * len(self.sites)))
        for site in sorted(self._mess_rng.sample(self.sites, count), key=lambda s: s.tid):
            fault = self.new_fault(
                site.tid, "clock_skew", "scenario", scenario_id="mess-clock", region=site.region
            )
            self.at(self.scenario.start, self.by_tid[site.tid].on_fault_begins, fault)

    def _schedule_spec(self, spec: FaultSpec) -> None:
        sc = self.scenario
        group = None
        if spec.terminals:
            targets = list(spec.terminals)
        elif spec.region is not None and spec.count is None:
            targets = [s.tid for s in self.sites if s.region == spec.region]
            group = spec.id
        else:
            pool = [s.tid for s in self.sites if spec.region is None or s.region == spec.region]
            assert spec.count is not None
            free = [t for t in pool if not self._busy(t, spec)]
            targets = sorted(self.rng.sample(free if len(free) >= spec.count else pool, spec.count))
        start, end = sc.start + spec.at, sc.start + spec.at + spec.duration
        for tid in targets:
            term = self.by_tid[tid]
            fault = Fault(
                fault_id=f"{spec.id}:{tid}",
                tid=tid,
                kind=spec.kind,
                source="scenario",
                scenario_id=spec.id,
                group=group,
                region=term.site.region,
                flap=spec.flap,
                mode=spec.mode if spec.kind == "terminal_offline" else None,
            )
            self._claimed.setdefault(tid, []).append((start, end))
            self.at(start, self._on_inject, (term, fault, end))

    def _busy(self, tid: str, spec: FaultSpec) -> bool:
        start = self.scenario.start + spec.at
        end = start + spec.duration
        return any(s < end + HOUR and start < e + HOUR for s, e in self._claimed.get(tid, ()))

    def _on_inject(self, at: int, item: tuple[TerminalSim, Fault, int]) -> None:
        term, fault, end = item
        term.inject(at, fault, end)

    def _schedule_background(self) -> None:
        sc = self.scenario
        rate = sc.complaints.background_per_day
        t = float(sc.start)
        while rate > 0:
            t += self.rng.expovariate(rate / 86_400_000)
            if t >= sc.end:
                break
            site = self.rng.choice(self.sites)
            occurred = max(sc.start, int(t) - self.rng.randint(10 * MINUTE, 6 * HOUR))
            amount = self.rng.choice((None, self.rng.randrange(100, 5000, 50) * 100))
            category = self.rng.choice(
                ("other", "other", "payment_failed", "no_receipt", "cash_not_credited")
            )
            affected = Affected(
                category, site.tid, site.address, site.utc_offset_min, occurred, amount, None, None
            )
            self.at(int(t), self._on_background, affected)

    def _on_background(self, at: int, affected: Affected) -> None:
        self.complaint(self.rng, affected, at, None, None)

    # -- truth --------------------------------------------------------------------------

    def truth(self) -> list[TruthRecord]:
        """The run header, every fault that began and every complaint sent (after the run)."""
        sc = self.scenario
        records: list[TruthRecord] = [
            RunRecord(
                scenario=sc.name,
                seed=self.seed,
                start=to_datetime(sc.start, sc.regions[0].utc_offset_min),
                end=to_datetime(sc.end, sc.regions[0].utc_offset_min),
                terminals=len(self.terminals),
                tid_prefix=sc.tid_prefix,
                topic_root=self.root,
                run_tag=self.run_tag,
                heartbeat_s=sc.heartbeat_s,
            )
        ]
        for f in sorted(self.faults, key=lambda f: (f.start, f.tid, f.kind)):
            offset = self.by_tid[f.tid].offset
            needs = 2 if f.kind in ("payment_failures", "silent_fault") else 0
            records.append(
                FaultRecord(
                    fault_id=f.fault_id,
                    tid=f.tid,
                    kind=f.kind,
                    start=to_datetime(f.start, offset),
                    end=to_datetime(f.end if f.end is not None else sc.end, offset),
                    source="scenario" if f.source == "scenario" else "natural",
                    scenario_id=f.scenario_id,
                    group=f.group,
                    region=f.region,
                    flapping=f.flap is not None,
                    mode=f.mode,
                    ended_by=f.ended_by,
                    evidence=f.evidence,
                    observable=f.evidence >= needs,
                    evidence_at=[to_datetime(t, offset) for t in sorted(f.evidence_at)],
                    last_message=(
                        to_datetime(f.last_message, offset) if f.last_message is not None else None
                    ),
                )
            )
        complaints = sorted(self.complaints, key=lambda c: (to_ms(c.received_at), c.ref))
        records.extend(complaints)
        return records
