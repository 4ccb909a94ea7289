"""The scenario model: a fleet, its customers, natural wear and the faults to inject.

Plain frozen values, built by :mod:`simulator.scenario` from a checked YAML file; times are
integer milliseconds (:mod:`simulator.timefmt`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Final

from simulator.timefmt import HOUR, MINUTE

#: Kinds whose fault can clear and return (a device state or the connection toggles).
FLAPPABLE: Final = frozenset(
    {
        "printer_paper_out",
        "printer_jam",
        "printer_fault",
        "cash_acceptor_jam",
        "cash_acceptor_fault",
        "terminal_offline",
    }
)
#: Kinds that also happen by themselves, at a rate per terminal per day.
NATURAL_KINDS: Final = (
    "printer_jam",
    "printer_fault",
    "cash_acceptor_jam",
    "cash_acceptor_fault",
    "terminal_offline",
)
COMPLAINT_KINDS: Final = (
    "no_receipt",
    "payment_failed",
    "cash_not_credited",
    "terminal_out_of_order",
)
OFFLINE_MODES: Final = ("network", "hang")


@dataclass(frozen=True, slots=True)
class Region:
    name: str
    city: str
    utc_offset_min: int
    terminals: int
    service_group: str


@dataclass(frozen=True, slots=True)
class Customers:
    per_terminal_per_day: float = 120.0
    receipt_share: float = 0.7
    note_error_rate: float = 0.01
    decline_rate: float = 0.002


@dataclass(frozen=True, slots=True)
class Complaints:
    probability: dict[str, float] = field(
        default_factory=lambda: {
            "no_receipt": 0.08,
            "payment_failed": 0.3,
            "cash_not_credited": 0.5,
            "terminal_out_of_order": 0.01,
        }
    )
    delay: tuple[int, int] = (5 * MINUTE, 3 * HOUR)
    address_only: float = 0.2
    amount_wrong: float = 0.15
    background_per_day: float = 0.0


@dataclass(frozen=True, slots=True)
class Supplies:
    paper_roll: int = 700
    paper_low_at: float = 0.1
    stacker_capacity: int = 1500
    stacker_high_at: float = 0.9
    refill_delay: tuple[int, int] = (2 * HOUR, 12 * HOUR)


@dataclass(frozen=True, slots=True)
class Natural:
    rates: dict[str, float] = field(default_factory=dict)
    offline_duration: tuple[int, int] = (3 * MINUTE, 40 * MINUTE)


@dataclass(frozen=True, slots=True)
class Engineers:
    response: tuple[int, int] = (30 * MINUTE, 2 * HOUR)
    visit: tuple[int, int] = (10 * MINUTE, 30 * MINUTE)


@dataclass(frozen=True, slots=True)
class Mess:
    """Real fleets' disorder, usable on every scenario (all off by default).

    ``skewed_share`` of the terminals have a wrong clock for the whole run (a ``clock_skew``
    fault each, in the ground truth); ``duplicates``: the share of telemetry messages sent
    again (the same id, a newer ``ts``: a terminal's resend) ``duplicate_delay`` later;
    ``reorder``: the share held back by up to ``reorder_delay`` (delivered out of order).
    """

    skewed_share: float = 0.0
    duplicates: float = 0.0
    duplicate_delay: tuple[int, int] = (1_000, 30_000)
    reorder: float = 0.0
    reorder_delay: tuple[int, int] = (1_000, 60_000)


@dataclass(frozen=True, slots=True)
class FaultSpec:
    """One injected fault; exactly one of ``terminals``, ``count``, ``region`` picks targets.

    ``count`` with ``region`` picks that many at random inside the region; ``region`` alone
    hits every terminal of the region at once.
    """

    id: str
    kind: str
    at: int  # ms after the scenario start
    duration: int
    line: int
    terminals: tuple[str, ...] = ()
    count: int | None = None
    region: str | None = None
    flap: int | None = None
    mode: str = "network"


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    start: int  # ms since the epoch
    duration: int
    regions: tuple[Region, ...]
    source: str
    description: str = ""
    seed: int = 1
    heartbeat_s: int = 60
    tid_prefix: str = "T"
    customers: Customers = Customers()
    complaints: Complaints = Complaints()
    supplies: Supplies = Supplies()
    natural: Natural = Natural()
    engineers: Engineers = Engineers()
    mess: Mess = Mess()
    faults: tuple[FaultSpec, ...] = ()

    @property
    def end(self) -> int:
        return self.start + self.duration

    @property
    def terminal_count(self) -> int:
        return sum(r.terminals for r in self.regions)

    def tids(self) -> list[str]:
        """Terminal ids in registry order: ``<prefix>-000001`` onwards, region by region."""
        return [f"{self.tid_prefix}-{n:06d}" for n in range(1, self.terminal_count + 1)]

    def with_duration(self, duration: int) -> Scenario:
        """The same scenario cut (or stretched) to ``duration``; faults past it are dropped."""
        kept = tuple(f for f in self.faults if f.at + f.duration <= duration)
        return replace(self, duration=duration, faults=kept)
