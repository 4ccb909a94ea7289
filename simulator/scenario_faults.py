"""The ``faults`` section of a scenario: each injected fault parsed, then checked against
the fleet and the simulated window (terminals and regions that exist, inside the run,
flapping and modes only where they mean something)."""

from __future__ import annotations

import yaml

from simulator.scenario_model import FLAPPABLE, OFFLINE_MODES, FaultSpec, Scenario
from simulator.timefmt import SECOND, parse_duration
from simulator.yamlread import Doc, YamlError
from terminals.kinds import INCIDENT_KINDS


def parse_faults(doc: Doc, node: yaml.Node, scenario: Scenario) -> tuple[FaultSpec, ...]:
    """The fault specs of ``node`` for ``scenario`` (its fleet and window already read);
    raises YamlError with the line of the first refused value."""
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
