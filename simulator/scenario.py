"""Scenario files (YAML): the shipped ones by name, others by path.

The format is documented in docs/simulator.md. :func:`load_scenario` parses strictly (unknown
keys, wrong types and duplicate keys are refused) and then checks the meaning (faults inside
the simulated window, terminals and regions that exist, flapping only where it means
something: :mod:`simulator.scenario_faults`); every refusal is a
:class:`~simulator.yamlread.YamlError` with the line. The model itself is
:mod:`simulator.scenario_model`.
"""

from __future__ import annotations

from dataclasses import replace
from importlib import resources
from pathlib import Path
from typing import Final

import yaml

from simulator.scenario_faults import parse_faults
from simulator.scenario_model import (
    COMPLAINT_KINDS,
    NATURAL_KINDS,
    Complaints,
    Customers,
    Engineers,
    FaultSpec,
    Mess,
    Natural,
    Region,
    Scenario,
    Supplies,
)
from simulator.timefmt import DAY, HOUR, MINUTE, SECOND, parse_offset
from simulator.yamlread import Doc, YamlError
from terminals.kinds import INCIDENT_KINDS

SHIPPED_DIR: Final = "scenarios"


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
            "mess",
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
        mess=_mess(doc, keys["mess"]) if "mess" in keys else Mess(),
    )
    faults = parse_faults(doc, keys["faults"], scenario) if "faults" in keys else ()
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


def _mess(doc: Doc, node: yaml.Node) -> Mess:
    keys = doc.mapping(
        node,
        "mess",
        optional=("skewed_share", "duplicates", "duplicate_delay", "reorder", "reorder_delay"),
    )
    base = Mess()

    def share(name: str, default: float) -> float:
        return doc.number(keys[name], f"mess.{name}", lo=0, hi=1) if name in keys else default

    def span(name: str, default: tuple[int, int]) -> tuple[int, int]:
        return doc.duration_range(keys[name], f"mess.{name}") if name in keys else default

    return Mess(
        skewed_share=share("skewed_share", base.skewed_share),
        duplicates=share("duplicates", base.duplicates),
        duplicate_delay=span("duplicate_delay", base.duplicate_delay),
        reorder=share("reorder", base.reorder),
        reorder_delay=span("reorder_delay", base.reorder_delay),
    )


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


__all__ = [
    "INCIDENT_KINDS",
    "FaultSpec",
    "Scenario",
    "YamlError",
    "load_scenario",
    "parse_scenario",
    "shipped_names",
]
