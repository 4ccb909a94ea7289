"""Sends a simulation's emissions to the broker, paced against the wall clock.

At ``speed`` S, the emission at simulated time t is sent at ``wall0 + (t - start) / S``;
with no speed, as fast as the broker takes them. Messages of one terminal go out in the
generator's order on that terminal's own connection; across terminals the broker may
interleave them (each connection is its own TCP stream).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from simulator.engine import Emission
from simulator.links import Credentials, LinkPool
from simulator.sink import ComplaintSink
from termwatch.settings import MqttUrl

SUPPORT_DESK = "support-desk"


@dataclass(slots=True)
class PublishStats:
    emitted: int = 0
    published: int = 0
    connects: int = 0
    drops: int = 0
    complaints: int = 0
    sim_now: int = 0
    wall_s: float = 0.0
    lag_s: float = 0.0  # how far behind the pace the publisher is (speed mode)
    unacked: int = 0
    connected: int = 0


@dataclass(frozen=True, slots=True)
class PublishOptions:
    speed: float | None = None  # simulated seconds per wall second; None = as fast as possible
    client_id: str = "{tid}"  # template: {tid}, {root}
    topic_root: str = "terminals"
    credentials: Credentials = field(default_factory=Credentials)
    keepalive: int = 60
    complaints_topic: str = "support/complaints"
    drain_s: float = 30.0


Progress = Callable[[PublishStats], None]


def publish(
    emissions: Iterable[Emission],
    url: MqttUrl,
    options: PublishOptions,
    sim_start: int,
    sink: ComplaintSink,
    progress: Progress | None = None,
) -> PublishStats:
    """Send everything; returns the figures. Raises LinkError when the broker is unusable
    and ApiRefused when the complaints API refuses the token."""
    pool = LinkPool(url, options.credentials, options.keepalive)
    stats = PublishStats()
    wall0 = time.monotonic()
    next_report = wall0 + 2.0
    try:
        for em in emissions:
            stats.emitted += 1
            stats.sim_now = em.at
            if options.speed is not None:
                due = wall0 + (em.at - sim_start) / 1000.0 / options.speed
                now = time.monotonic()
                while now < due:
                    pool.pump(min(due - now, 0.05))
                    now = time.monotonic()
                stats.lag_s = now - due
            elif stats.emitted % 256 == 0:
                pool.pump(0)
            _apply(em, pool, options, sink, stats)
            if progress is not None and stats.emitted % 64 == 0 and time.monotonic() >= next_report:
                next_report = time.monotonic() + 2.0
                _fill(stats, pool, wall0)
                progress(stats)
        pool.drain(options.drain_s)
    finally:
        _fill(stats, pool, wall0)
        pool.close_all()
    return stats


def _fill(stats: PublishStats, pool: LinkPool, wall0: float) -> None:
    stats.wall_s = time.monotonic() - wall0
    stats.unacked = pool.unacked
    stats.connected = pool.connected_count() - (
        1 if SUPPORT_DESK in pool.links and pool.links[SUPPORT_DESK].connected else 0
    )


def _apply(
    em: Emission, pool: LinkPool, options: PublishOptions, sink: ComplaintSink, stats: PublishStats
) -> None:
    if em.action == "publish":
        assert em.tid is not None
        if pool.publish(em.tid, em.topic, em.payload, em.qos, em.retained):
            stats.published += 1
    elif em.action == "connect":
        assert em.tid is not None
        client_id = options.client_id.format(tid=em.tid, root=options.topic_root)
        pool.open(em.tid, client_id, em.tid, (em.topic, b"offline"))
        pool.publish(em.tid, em.topic, em.payload, 1, True)
        stats.connects += 1
        stats.published += 1
    elif em.action == "drop":
        assert em.tid is not None
        pool.cut(em.tid)
        stats.drops += 1
    elif em.action == "complaint":
        stats.complaints += 1
        if not sink.try_api(em.payload):
            if SUPPORT_DESK not in pool.links:
                client_id = options.client_id.format(tid=SUPPORT_DESK, root=options.topic_root)
                pool.open(SUPPORT_DESK, client_id, None, None)
            pool.publish(SUPPORT_DESK, options.complaints_topic, em.payload, 1, False)
            sink.via_mqtt += 1
            stats.published += 1
    else:
        raise ValueError(f"unknown emission action {em.action!r}")
