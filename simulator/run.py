"""``termwatch simulate``: load a scenario, generate, publish (or dump), write the truth."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import sys
import time
from pathlib import Path

from simulator.engine import Emission, World
from simulator.fleet import save_registry
from simulator.links import Credentials, LinkError
from simulator.progress import ProgressLine
from simulator.publisher import PublishOptions, PublishStats, publish
from simulator.scenario import Scenario, load_scenario
from simulator.sink import ApiRefused, ApiTarget, ComplaintSink
from simulator.timefmt import HOUR, parse_duration, parse_instant
from simulator.truth import write_truth
from simulator.yamlread import YamlError
from termwatch.settings import Settings


def prepare(args: argparse.Namespace) -> Scenario:
    """The scenario with the command line's overrides; raises ValueError, YamlError, OSError."""
    scenario = load_scenario(args.scenario)
    if args.start:
        scenario = dataclasses.replace(scenario, start=parse_instant(args.start))
    if args.duration:
        scenario = scenario.with_duration(parse_duration(args.duration))
    return scenario


def emission_json(em: Emission) -> str:
    """One emission as a JSON line (the payload as text: it is UTF-8 JSON or a plain word)."""
    return json.dumps(
        {
            "at": em.at,
            "action": em.action,
            "topic": em.topic,
            "retained": em.retained,
            "qos": em.qos,
            "payload": em.payload.decode("utf-8"),
        },
        ensure_ascii=False,
    )


def simulate_command(args: argparse.Namespace, settings: Settings) -> int:
    try:
        scenario = prepare(args)
    except (YamlError, FileNotFoundError, ValueError) as exc:
        print(f"simulate: {exc}", file=sys.stderr)
        return 2
    world = World(scenario, args.seed, settings.topic_root)
    if getattr(args, "resume", None):
        from simulator import resume

        try:
            resume.apply(world, resume.load(Path(args.resume)))
        except ValueError as exc:
            print(f"simulate: {exc}", file=sys.stderr)
            return 2
    if args.registry_out:
        save_registry(world.sites, Path(args.registry_out))
    started = time.monotonic()
    if args.dry_run:
        count = _dump(world, Path(args.out) if args.out else None)
        stats = PublishStats(emitted=count, published=count, wall_s=time.monotonic() - started)
    else:
        stats_or_code = _publish(args, settings, scenario, world)
        if isinstance(stats_or_code, int):
            return stats_or_code
        stats = stats_or_code
    if args.truth:
        write_truth(world.truth(), Path(args.truth))
    faults = sum(1 for f in world.faults)
    hours = scenario.duration / HOUR
    rate = stats.published / stats.wall_s if stats.wall_s > 0 else 0.0
    print(
        f"simulate: {scenario.name} seed {world.seed}: {len(world.terminals)} terminals,"
        f" {hours:g} simulated h in {stats.wall_s:.1f} s, {stats.published} messages"
        f" ({rate:,.0f} msg/s), {faults} faults, {len(world.complaints)} complaints"
    )
    return 0


def _dump(world: World, out: Path | None) -> int:
    """Generate without a broker; write each emission as a JSON line when ``out`` is set."""
    count = 0
    with contextlib.ExitStack() as stack:
        sink = stack.enter_context(out.open("w", encoding="utf-8")) if out is not None else None
        for em in world.emissions():
            count += 1
            if sink is not None:
                sink.write(emission_json(em) + "\n")
    return count


def _publish(
    args: argparse.Namespace, settings: Settings, scenario: Scenario, world: World
) -> PublishStats | int:
    url = settings.require_mqtt()
    api = None
    if args.api_token:
        api = ApiTarget(args.api_url or f"http://{settings.http}", args.api_token)
    sink = ComplaintSink(api)
    options = PublishOptions(
        speed=args.speed,
        client_id=args.client_id,
        topic_root=settings.topic_root,
        credentials=Credentials(args.password_template),
        complaints_topic=args.complaints_topic,
    )
    progress = None
    if not args.quiet:
        progress = ProgressLine(
            scenario.start, scenario.end, len(world.terminals), lambda: len(world.faults)
        )
    try:
        stats = publish(world.emissions(), url, options, scenario.start, sink, progress)
    except LinkError as exc:
        print(f"simulate: {exc}", file=sys.stderr)
        return 1
    except ApiRefused as exc:
        print(f"simulate: {exc}", file=sys.stderr)
        return 2
    if progress is not None:
        progress(stats)
    if stats.unacked:
        print(f"simulate: {stats.unacked} messages not acknowledged by the broker", file=sys.stderr)
    print(
        f"complaints: {sink.via_api} via the API, {sink.via_mqtt} via MQTT,"
        f" {sink.rejected} rejected",
        file=sys.stderr,
    )
    return stats
