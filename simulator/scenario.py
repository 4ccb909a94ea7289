"""Scenarios: the fleet, its customers, natural wear and the faults to inject (YAML).

The format is documented in docs/simulator.md. :func:`load_scenario` parses strictly (unknown
keys, wrong types and duplicate keys are refused) and then checks the meaning (faults inside
the simulated window, terminals and regions that exist, flapping only where it means
something); every refusal is a :class:`~simulator.yamlread.YamlError` with the line.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Final

import yaml

from simulator.timefmt import DAY, HOUR, MINUTE, SECOND, parse_duration, parse_offset
from simulator.yamlread import Doc, YamlError

INCIDENT_KINDS: Final = (
    "printer_paper_out",
    "printer_jam",
    "printer_fault",
    "cash_acceptor_jam",
    "cash_acceptor_full",
    "cash_acceptor_fault",
    "terminal_offline",
    "payment_failures",
    "silent_fault",
)
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
SHIPPED_DIR: Final = "scenarios"


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
        from dataclasses import replace

        kept = tuple(f for f in self.faults if f.at + f.duration <= duration)
        return replace(self, duration=duration, faults=kept)


def shipped_names() -> list[str]:
    """Names of the scenarios shipped with termwatch (``day``, ``tiny``, ...)."""
    folder = resources.files("simulator").joinpath(SHIPPED_DIR)
    return sorted(
        p.name.removesuffix(".yaml") for p in folder.iterdir() if p.name.endswith(".yaml")
    )


def load_scenario(name_or_path: str) -> Scenario:
    """A shipped scenario by name, or a YAML file by path.

    Raises FileNotFoundError when neither exists and YamlError when the file is refused.
    """
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") or path.exists():
        return parse_scenario(path.read_text(encoding="utf-8"), str(path))
    folder = resources.files("simulator").joinpath(SHIPPED_DIR)
    shipped = folder.joinpath(f"{name_or_path}.yaml")
    if not shipped.is_file():
        raise FileNotFoundError(
            f"no scenario file {name_or_path!r} and no shipped scenario of that name"
            f" (shipped: {', '.join(shipped_names())})"
        )
    return parse_scenario(shipped.read_text(encoding="utf-8"), f"{name_or_path}.yaml")


def parse_scenario(text: str, source: str = "<scenario>") -> Scenario:
    """Parse and check a scenario document; raises YamlError with the line and reason."""
    doc = Doc(source)
    root = doc.compose(text)
    keys = doc.mapping(
        root,
        "scenario",
        required=("name", "start", "duration", "fleet"),
        optional=(
            "description",
            "seed",
            "heartbeat_interval",
            "customers",
            "complaints",
            "supplies",
            "natural",
            "engineers",
            "faults",
        ),
    )
    duration = doc.duration(keys["duration"], "duration", minimum=MINUTE)
    if duration > 31 * DAY:
        raise doc.fail(keys["duration"], "duration must be at most 31d")
    prefix, regions = _fleet(doc, keys["fleet"])
    scenario = Scenario(
        name=doc.text(keys["name"], "name", max_len=64),
        description=doc.text(keys["description"], "description", max_len=2000)
        if "description" in keys
        else "",
        start=doc.instant(keys["start"], "start"),
        duration=duration,
        seed=doc.integer(keys["seed"], "seed", lo=0, hi=2**63 - 1) if "seed" in keys else 1,
        heartbeat_s=_heartbeat(doc, keys.get("heartbeat_interval")),
        tid_prefix=prefix,
        regions=regions,
        source=source,
        customers=_customers(doc, keys["customers"]) if "customers" in keys else Customers(),
        complaints=_complaints(doc, keys["complaints"]) if "complaints" in keys else Complaints(),
        supplies=_supplies(doc, keys["supplies"]) if "supplies" in keys else Supplies(),
        natural=_natural(doc, keys["natural"]) if "natural" in keys else Natural(),
        engineers=_engineers(doc, keys["engineers"]) if "engineers" in keys else Engineers(),
    )
    faults = _faults(doc, keys["faults"], scenario) if "faults" in keys else ()
    from dataclasses import replace

    return replace(scenario, faults=faults)


def _heartbeat(doc: Doc, node: yaml.Node | None) -> int:
    if node is None:
        return 60
    ms = doc.duration(node, "heartbeat_interval", minimum=SECOND)
    if ms % SECOND or ms > HOUR:
        raise doc.fail(node, "heartbeat_interval must be whole seconds, at most 1h")
    return ms // SECOND


def _fleet(doc: Doc, node: yaml.Node) -> tuple[str, tuple[Region, ...]]:
    keys = doc.mapping(node, "fleet", required=("regions",), optional=("tid_prefix",))
    prefix = "T"
    if "tid_prefix" in keys:
        prefix = doc.text(keys["tid_prefix"], "fleet.tid_prefix", max_len=20)
        if not prefix.replace("_", "").replace("-", "").isalnum() or not prefix.isascii():
            raise doc.fail(keys["tid_prefix"], "fleet.tid_prefix: letters, digits, _ and - only")
    regions: list[Region] = []
    for i, item in enumerate(doc.sequence(keys["regions"], "fleet.regions")):
        where = f"fleet.regions[{i}]"
        rk = doc.mapping(
            item,
            where,
            required=("name", "city", "utc_offset", "terminals"),
            optional=("service_group",),
        )
        name = doc.text(rk["name"], f"{where}.name", max_len=64)
        if any(r.name == name for r in regions):
            raise doc.fail(rk["name"], f"{where}.name: region {name!r} is listed twice")
        offset_node = rk["utc_offset"]
        try:
            offset = parse_offset(str(offset_node.value))
        except ValueError as exc:
            raise doc.fail(offset_node, f"{where}.utc_offset: {exc}") from None
        regions.append(
            Region(
                name=name,
                city=doc.text(rk["city"], f"{where}.city", max_len=64),
                utc_offset_min=offset,
                terminals=doc.integer(rk["terminals"], f"{where}.terminals", lo=1, hi=100_000),
                service_group=doc.text(rk["service_group"], f"{where}.service_group", max_len=64)
                if "service_group" in rk
                else f"{name}-field",
            )
        )
    if not regions:
        raise doc.fail(keys["regions"], "fleet.regions must list at least one region")
    if sum(r.terminals for r in regions) > 999_999:
        raise doc.fail(keys["regions"], "fleet: at most 999999 terminals")
    return prefix, tuple(regions)


def _probability(doc: Doc, node: yaml.Node, what: str) -> float:
    return doc.number(node, what, lo=0.0, hi=1.0)


def _customers(doc: Doc, node: yaml.Node) -> Customers:
    names = ("per_terminal_per_day", "receipt_share", "note_error_rate", "decline_rate")
    keys = doc.mapping(node, "customers", optional=names)
    base = Customers()
    return Customers(
        per_terminal_per_day=doc.number(
            keys["per_terminal_per_day"], "customers.per_terminal_per_day", lo=0, hi=5000
        )
        if "per_terminal_per_day" in keys
        else base.per_terminal_per_day,
        receipt_share=_probability(doc, keys["receipt_share"], "customers.receipt_share")
        if "receipt_share" in keys
        else base.receipt_share,
        note_error_rate=_probability(doc, keys["note_error_rate"], "customers.note_error_rate")
        if "note_error_rate" in keys
        else base.note_error_rate,
        decline_rate=_probability(doc, keys["decline_rate"], "customers.decline_rate")
        if "decline_rate" in keys
        else base.decline_rate,
    )


def _complaints(doc: Doc, node: yaml.Node) -> Complaints:
    keys = doc.mapping(
        node,
        "complaints",
        optional=("probability", "delay", "address_only", "amount_wrong", "background_per_day"),
    )
    base = Complaints()
    probability = dict(base.probability)
    if "probability" in keys:
        pk = doc.mapping(keys["probability"], "complaints.probability", optional=COMPLAINT_KINDS)
        for name, value in pk.items():
            probability[name] = _probability(doc, value, f"complaints.probability.{name}")
    delay = base.delay
    if "delay" in keys:
        delay = doc.duration_range(keys["delay"], "complaints.delay")
        if delay[1] > 2 * DAY:
            raise doc.fail(keys["delay"], "complaints.delay: at most 2d")
    return Complaints(
        probability=probability,
        delay=delay,
        address_only=_probability(doc, keys["address_only"], "complaints.address_only")
        if "address_only" in keys
        else base.address_only,
        amount_wrong=_probability(doc, keys["amount_wrong"], "complaints.amount_wrong")
        if "amount_wrong" in keys
        else base.amount_wrong,
        background_per_day=doc.number(
            keys["background_per_day"], "complaints.background_per_day", lo=0, hi=100_000
        )
        if "background_per_day" in keys
        else base.background_per_day,
    )


def _supplies(doc: Doc, node: yaml.Node) -> Supplies:
    keys = doc.mapping(
        node,
        "supplies",
        optional=(
            "paper_roll",
            "paper_low_at",
            "stacker_capacity",
            "stacker_high_at",
            "refill_delay",
        ),
    )
    base = Supplies()
    return Supplies(
        paper_roll=doc.integer(keys["paper_roll"], "supplies.paper_roll", lo=10, hi=100_000)
        if "paper_roll" in keys
        else base.paper_roll,
        paper_low_at=doc.number(keys["paper_low_at"], "supplies.paper_low_at", lo=0.01, hi=0.9)
        if "paper_low_at" in keys
        else base.paper_low_at,
        stacker_capacity=doc.integer(
            keys["stacker_capacity"], "supplies.stacker_capacity", lo=10, hi=100_000
        )
        if "stacker_capacity" in keys
        else base.stacker_capacity,
        stacker_high_at=doc.number(
            keys["stacker_high_at"], "supplies.stacker_high_at", lo=0.1, hi=0.99
        )
        if "stacker_high_at" in keys
        else base.stacker_high_at,
        refill_delay=doc.duration_range(keys["refill_delay"], "supplies.refill_delay")
        if "refill_delay" in keys
        else base.refill_delay,
    )


def _natural(doc: Doc, node: yaml.Node) -> Natural:
    keys = doc.mapping(node, "natural", optional=(*NATURAL_KINDS, "offline_duration"))
    rates = {
        kind: doc.number(value, f"natural.{kind}", lo=0, hi=100)
        for kind, value in keys.items()
        if kind != "offline_duration"
    }
    offline = Natural().offline_duration
    if "offline_duration" in keys:
        offline = doc.duration_range(keys["offline_duration"], "natural.offline_duration")
        if offline[0] < SECOND:
            raise doc.fail(keys["offline_duration"], "natural.offline_duration: at least 1s")
    return Natural(rates=rates, offline_duration=offline)


def _engineers(doc: Doc, node: yaml.Node) -> Engineers:
    keys = doc.mapping(node, "engineers", optional=("response", "visit"))
    base = Engineers()
    return Engineers(
        response=doc.duration_range(keys["response"], "engineers.response")
        if "response" in keys
        else base.response,
        visit=doc.duration_range(keys["visit"], "engineers.visit")
        if "visit" in keys
        else base.visit,
    )


def _faults(doc: Doc, node: yaml.Node, scenario: Scenario) -> tuple[FaultSpec, ...]:
    tids = set(scenario.tids())
    regions = {r.name: r for r in scenario.regions}
    faults: list[FaultSpec] = []
    for i, item in enumerate(doc.sequence(node, "faults")):
        where = f"faults[{i}]"
        keys = doc.mapping(
            item,
            where,
            required=("id", "kind", "at", "duration"),
            optional=("terminals", "count", "region", "flap", "mode"),
        )
        fid = doc.text(keys["id"], f"{where}.id", max_len=64)
        if any(f.id == fid for f in faults):
            raise doc.fail(keys["id"], f"{where}.id: fault id {fid!r} is used twice")
        where = f"fault {fid!r}"
        kind = doc.text(keys["kind"], f"{where}: kind")
        if kind not in INCIDENT_KINDS:
            raise doc.fail(
                keys["kind"], f"{where}: unknown kind {kind!r} (one of {', '.join(INCIDENT_KINDS)})"
            )
        at = _offset(doc, keys["at"], f"{where}: at", scenario)
        duration = doc.duration(keys["duration"], f"{where}: duration", minimum=SECOND)
        if at + duration > scenario.duration:
            raise doc.fail(keys["duration"], f"{where}: ends after the end of the scenario")
        targets = [k for k in ("terminals", "count", "region") if k in keys]
        if not targets:
            raise doc.fail(item, f"{where}: say which terminals: terminals, count or region")
        if "terminals" in keys and len(targets) > 1:
            raise doc.fail(keys["terminals"], f"{where}: terminals cannot go with count or region")
        chosen: tuple[str, ...] = ()
        if "terminals" in keys:
            listed = []
            for t in doc.sequence(keys["terminals"], f"{where}: terminals"):
                tid = doc.text(t, f"{where}: terminal", max_len=32)
                if tid not in tids:
                    raise doc.fail(t, f"{where}: no terminal {tid!r} in the fleet")
                if tid in listed:
                    raise doc.fail(t, f"{where}: terminal {tid!r} is listed twice")
                listed.append(tid)
            if not listed:
                raise doc.fail(keys["terminals"], f"{where}: terminals is empty")
            chosen = tuple(listed)
        region = None
        if "region" in keys:
            region = doc.text(keys["region"], f"{where}: region", max_len=64)
            if region not in regions:
                raise doc.fail(
                    keys["region"],
                    f"{where}: no region {region!r} (regions: {', '.join(regions)})",
                )
        count = None
        if "count" in keys:
            pool = regions[region].terminals if region else len(tids)
            count = doc.integer(keys["count"], f"{where}: count", lo=1, hi=pool)
        flap = None
        if "flap" in keys:
            flap = doc.duration(keys["flap"], f"{where}: flap", minimum=2 * SECOND)
            if kind not in FLAPPABLE:
                raise doc.fail(keys["flap"], f"{where}: a {kind} fault cannot flap")
            if flap * 2 > duration:
                raise doc.fail(keys["flap"], f"{where}: flap must be at most half the duration")
        mode = "network"
        if "mode" in keys:
            mode = doc.text(keys["mode"], f"{where}: mode")
            if kind != "terminal_offline":
                raise doc.fail(keys["mode"], f"{where}: mode is only for terminal_offline")
            if mode not in OFFLINE_MODES:
                raise doc.fail(keys["mode"], f"{where}: mode must be network or hang")
        faults.append(
            FaultSpec(
                id=fid,
                kind=kind,
                at=at,
                duration=duration,
                line=item.start_mark.line + 1,
                terminals=chosen,
                count=count,
                region=region,
                flap=flap,
                mode=mode,
            )
        )
    return tuple(faults)


def _offset(doc: Doc, node: yaml.Node, what: str, scenario: Scenario) -> int:
    """ms after the start, from a duration (``2h``) or an RFC 3339 instant."""
    raw = str(getattr(node, "value", ""))
    try:
        offset = parse_duration(raw)
    except ValueError:
        try:
            offset = doc.instant(node, what) - scenario.start
        except YamlError:
            raise doc.fail(
                node,
                f"{what}: {raw!r} is neither a time after the start (2h30m) nor an RFC 3339 time",
            ) from None
    if not 0 <= offset < scenario.duration:
        raise doc.fail(node, f"{what} is outside the scenario ({raw})")
    return offset


__all__ = ["Scenario", "YamlError", "load_scenario", "parse_scenario"]
