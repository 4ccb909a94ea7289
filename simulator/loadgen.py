"""``termwatch bench publish``: load mode, telemetry published at a target rate.

Several processes (each a shard of terminals with a few MQTT connections) publish
contract-valid heartbeat and status messages as fast as allowed. The figure is the number
of messages handed to the broker (written to its sockets, and for QoS 1 acknowledged) per
second of the common publishing window; with our own broker, Mosquitto's own count of
received publishes ($SYS) is printed beside it.
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing as mp
import sys
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection

import msgspec
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from simulator.broker import BrokerError, OwnMosquitto
from simulator.timefmt import rfc3339
from termwatch.settings import MqttUrl, Settings

POOL = 4096  # distinct payloads per process
TERMINALS_PER_PROCESS = 250


@dataclass(frozen=True, slots=True)
class WorkerSpec:
    index: int
    url: MqttUrl
    root: str
    connections: int
    rate: float  # msg/s for this process, 0 = unlimited
    seconds: float
    qos: int
    start_at: float  # wall time.time() when everyone starts


def payloads(index: int, root: str) -> list[tuple[str, bytes]]:
    """Heartbeats and status snapshots of this shard's terminals (valid contract JSON)."""
    enc = msgspec.json.Encoder()
    out: list[tuple[str, bytes]] = []
    base = 1_777_852_800_000  # 2026-05-04T00:00:00Z
    for n in range(POOL):
        tid = f"L{index:02d}-{n % TERMINALS_PER_PROCESS:06d}"
        seq = n // TERMINALS_PER_PROCESS + 1
        head = {
            "v": 1,
            "tid": tid,
            "id": f"{tid}-{seq}",
            "ts": rfc3339(base + seq * 60_000, 180),
            "seq": seq,
        }
        if n % 20:
            body = {**head, "interval_s": 60, "uptime_s": seq * 60, "app": "kiosk 2.3.1"}
            out.append((f"{root}/{tid}/heartbeat", enc.encode(body)))
        else:
            devices = {
                "printer": {"device": "online", "paper": "full"},
                "cashAcceptor": {"device": "online", "acceptor": "ok"},
            }
            out.append((f"{root}/{tid}/status", enc.encode({**head, "devices": devices})))
    return out


def worker(spec: WorkerSpec, result: Connection) -> None:
    """Publish for ``spec.seconds`` from ``spec.start_at``; send (count, first, last) back."""
    messages = payloads(spec.index, spec.root)
    clients = []
    for c in range(spec.connections):
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"bench-{spec.index}-{c}-{spec.start_at:.0f}"
        )
        client.max_inflight_messages_set(1000)
        if spec.url.username:
            client.username_pw_set(spec.url.username, spec.url.password)
        client.connect(spec.url.host, spec.url.port, 60)
        while not client.is_connected():
            client.loop(0.05)
        clients.append(client)
    time.sleep(max(0.0, spec.start_at - time.time()))
    start = time.time()
    end = start + spec.seconds
    sent = 0
    n = len(messages)
    k = len(clients)
    batch = 200
    while True:
        now = time.time()
        if now >= end:
            break
        if spec.rate > 0:
            due = start + sent / spec.rate
            if due > now:
                time.sleep(min(due - now, end - now))
                continue
        for i in range(sent, sent + batch):
            topic, payload = messages[i % n]
            clients[i % k].publish(topic, payload, qos=spec.qos)
        sent += batch
        if sent % 5000 < batch:
            for client in clients:
                client.loop_read()
                client.loop_misc()
    for client in clients:
        while client.want_write() or (spec.qos and client._out_messages):
            client.loop(0.01)
    finished = time.time()
    for client in clients:
        client.disconnect()
    result.send((sent, start, finished))
    result.close()


def run_bench(
    url: MqttUrl, root: str, processes: int, connections: int, rate: float, seconds: float, qos: int
) -> tuple[int, float]:
    """Total messages and the publishing window in seconds."""
    ctx = mp.get_context("spawn")
    start_at = time.time() + 2.0 + 0.3 * processes
    pipes = []
    procs = []
    for i in range(processes):
        recv, send = ctx.Pipe(duplex=False)
        spec = WorkerSpec(
            i, url, root, connections, rate / processes if rate else 0.0, seconds, qos, start_at
        )
        proc = ctx.Process(target=worker, args=(spec, send), name=f"bench-publish-{i}")
        proc.start()
        send.close()
        pipes.append(recv)
        procs.append(proc)
    results = []
    for recv, proc in zip(pipes, procs, strict=True):
        with contextlib.suppress(EOFError):  # the worker died: its exit code says so below
            results.append(recv.recv())
        proc.join()
        if proc.exitcode != 0:
            raise RuntimeError(f"{proc.name} exited with code {proc.exitcode}")
    total = sum(r[0] for r in results)
    window = max(r[2] for r in results) - min(r[1] for r in results)
    return total, window


def broker_received(url: MqttUrl, settle_s: float = 2.5, limit_s: float = 15.0) -> int | None:
    """Mosquitto's final count of PUBLISH packets received ($SYS), or None if not offered.

    Mosquitto republishes the counter each second while it changes (it may still be reading
    what the publishers wrote into their sockets), so the count is the last value once none
    has come for ``settle_s`` (at most ``limit_s`` in all).
    """
    got: list[int] = []
    last_at = time.monotonic()

    def on_message(c: mqtt.Client, u: object, m: mqtt.MQTTMessage) -> None:
        nonlocal last_at
        got.append(int(m.payload))
        last_at = time.monotonic()

    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-sys-{time.time():.0f}")
    client.on_message = on_message
    client.connect(url.host, url.port, 10)
    client.subscribe("$SYS/broker/publish/messages/received")
    start = time.monotonic()
    while time.monotonic() - start < limit_s and time.monotonic() - last_at < settle_s:
        client.loop(0.1)
    client.disconnect()
    return got[-1] if got else None


def bench_command(args: argparse.Namespace, settings: Settings) -> int:
    if not 1 <= args.processes <= 64 or not 1 <= args.connections <= 100 or args.seconds <= 0:
        print(
            "bench publish: --processes 1..64, --connections 1..100, --seconds > 0", file=sys.stderr
        )
        return 2
    root = f"{settings.topic_root}-bench"
    try:
        if args.broker == "own":
            with OwnMosquitto() as url:
                total, window = run_bench(
                    url, root, args.processes, args.connections, args.rate, args.seconds, args.qos
                )
                counted = broker_received(url)
        else:
            url = settings.require_mqtt()
            total, window = run_bench(
                url, root, args.processes, args.connections, args.rate, args.seconds, args.qos
            )
            counted = None
    except (BrokerError, RuntimeError, OSError) as exc:
        print(f"bench publish: {exc}", file=sys.stderr)
        return 1
    rate = total / window if window > 0 else 0.0
    where = f"own mosquitto on port {url.port}" if args.broker == "own" else str(url)
    print(f"broker: {where}; QoS {args.qos}; {args.connections} connections per process")
    if counted is not None:
        print(f"broker: mosquitto counted {counted} PUBLISH packets received")
    print(f"publish: {rate:.0f} msg/s published from {args.processes} processes, {total} messages")
    return 0
