"""The collector's broker link: paho-mqtt (v2 callback API), MQTT v5, QoS 1, manual PUBACK.

paho's network thread only decodes, validates and enqueues (:meth:`MqttSource._on_message`);
the writer acknowledges each QoS 1 message after its batch is committed
(:meth:`MqttSource.ack`). The session is persistent (a fixed client id, ``clean_start``
false, a session expiry of :data:`SESSION_EXPIRY_S`), so messages published while the
collector is away wait at the broker, and a message received but not acknowledged before a
crash is delivered again. paho reconnects with exponential backoff; every (re)connection
subscribes again.

A dead link is found within seconds, not after paho's keepalive (which needs up to 1.5 x
:data:`KEEPALIVE_S` when packets vanish without a reset): every :data:`PROBE_EVERY_S` the
collector publishes a QoS 0 probe to a topic of its own (``termwatch/probe/<client id>``)
that it subscribes to. While neither a probe nor any other message has come back for
:data:`PROBE_TIMEOUT_S`, the link is suspect and the event clock stands still, as when the
connection is down, so silence on a black-holed link does not declare the fleet offline.

Flow control: the broker keeps at most the client's *Receive Maximum* of QoS 1 messages
unacknowledged with a v5 client, and stops sending when that many are in flight. Since
acknowledgements wait for a commit (tens of milliseconds), the collector asks for the
largest value MQTT allows (65535). A v3.1.1 client would get the broker's
``max_inflight_messages`` instead (Mosquitto's default: 20, about a thousand messages a
second at this commit latency).
"""

from __future__ import annotations

import contextlib
import logging
import re
import socket
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Final

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

from collector.client import FastClient
from collector.clock import EventClock
from collector.decode import COMPLAINTS_TOPIC, decode
from collector.inbox import Inbox, Received
from termwatch.metrics import MQTT_CONNECTED
from termwatch.settings import Settings

log = logging.getLogger(__name__)

RECEIVE_MAXIMUM: Final = 65535
SESSION_EXPIRY_S: Final = 7 * 24 * 3600
KEEPALIVE_S: Final = 30
#: How often the link is probed, and how long without anything coming back makes it suspect.
PROBE_EVERY_S: Final = 1.0
PROBE_TIMEOUT_S: Final = 4.0
PROBE_TOPIC_PREFIX: Final = "termwatch/probe/"
RECONNECT_MIN_S: Final = 1
RECONNECT_MAX_S: Final = 30
#: While the broker cannot be reached or refuses the collector, a warning at once and then
#: one every this many seconds.
BROKER_WARNING_EVERY_S: Final = 30.0
#: CONNACK reason codes that mean the credentials (MQTT v5: 0x86, 0x87; v3: 4, 5).
_CREDENTIALS_REFUSED: Final = frozenset({0x86, 0x87, 4, 5})
_CLIENT_ID_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


def default_client_id(settings: Settings) -> str:
    """``settings.client_id``, else one derived from the topic root (and share group).

    The id must stay the same across restarts for the session to persist, and must differ
    between collectors connected at once: set ``TERMWATCH_CLIENT_ID`` per instance when
    several collectors share a group.
    """
    if settings.client_id:
        return settings.client_id
    base = f"termwatch-collector-{_CLIENT_ID_UNSAFE.sub('_', settings.topic_root)}"
    return f"{base}-{settings.share_group}" if settings.share_group else base


def subscriptions(settings: Settings, *, complaints: bool) -> list[str]:
    """Topic filters: everything under the root, and ``support/complaints`` when wanted."""
    filters = [f"{settings.topic_root}/#"]
    if complaints:
        filters.append(COMPLAINTS_TOPIC)
    if settings.share_group:
        filters = [f"$share/{settings.share_group}/{f}" for f in filters]
    return filters


class MqttSource:
    """Receives messages into an :class:`Inbox`; sends PUBACKs when told to."""

    def __init__(
        self,
        settings: Settings,
        inbox: Inbox,
        clock: EventClock,
        *,
        complaints: bool,
    ) -> None:
        self._url = settings.require_mqtt()
        self._root = settings.topic_root
        self._inbox = inbox
        self._clock = clock
        self.client_id = default_client_id(settings)
        self.topics = subscriptions(settings, complaints=complaints)
        self.subscribed = threading.Event()
        self._down = threading.Event()
        self._lock = threading.Lock()
        self._generation = 0
        self._connected = False
        self._accepting = True
        self._subscribe_mid: int | None = None
        self._trouble_since: float | None = None
        self._trouble_warned: float | None = None
        self.probe_topic = PROBE_TOPIC_PREFIX + _CLIENT_ID_UNSAFE.sub("_", self.client_id)
        self._probe_topic_bytes = self.probe_topic.encode()
        self._heard = time.monotonic()  # the last time anything came from the broker
        #: set while the link is proven (connected, and something came back recently)
        self.link_alive = threading.Event()
        #: set while the link is connected but silent for too long (probes lost)
        self.link_suspect = threading.Event()
        self._stopping = threading.Event()
        self._probe_works = False  # a probe came back on this connection
        #: set once a probe has come back on the current connection
        self.probe_returned = threading.Event()
        self._prober: threading.Thread | None = None
        self._client = self._make_client()

    def _make_client(self) -> FastClient:
        client = FastClient(
            CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            protocol=MQTTProtocolVersion.MQTTv5,
        )
        client.manual_ack_set(True)
        client.reconnect_delay_set(RECONNECT_MIN_S, RECONNECT_MAX_S)
        if self._url.username is not None:
            client.username_pw_set(self._url.username, self._url.password)
        if self._url.tls:
            client.tls_set()
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_disconnect = self._on_disconnect
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
        client.on_publish_raw = self._receive
        return client

    def start(self) -> None:
        """Connect in the background; paho retries until the broker answers."""
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.ReceiveMaximum = RECEIVE_MAXIMUM
        props.SessionExpiryInterval = SESSION_EXPIRY_S
        self._client.connect_async(
            self._url.host,
            self._url.port,
            keepalive=KEEPALIVE_S,
            clean_start=False,
            properties=props,
        )
        self._client.loop_start()
        self._stopping.clear()
        self._prober = threading.Thread(target=self._probe_loop, name="mqtt-probe", daemon=True)
        self._prober.start()

    def _probe_loop(self) -> None:
        """Publish a probe every :data:`PROBE_EVERY_S`; freeze the clock while none returns
        (once one has come back on this connection: a broker that refuses probes leaves the
        clock to the keepalive, as before)."""
        while not self._stopping.wait(PROBE_EVERY_S):
            if not self._connected:
                continue
            # an error means the link is going down; the disconnect callback follows
            with contextlib.suppress(OSError, ValueError, RuntimeError):
                self._client.publish(self.probe_topic, b"p", qos=0)
            silent = time.monotonic() - self._heard
            suspect = self._probe_works and silent >= PROBE_TIMEOUT_S
            if suspect and not self.link_suspect.is_set():
                self.link_suspect.set()
                self.link_alive.clear()
                self._clock.set_connected(False)
                log.warning(
                    "nothing from the broker %s for %.0f s, probes included: the event clock "
                    "stands still until the link answers",
                    self._url,
                    silent,
                )

    def _heard_from_broker(self) -> None:
        self._heard = time.monotonic()
        if self.link_suspect.is_set() and self._connected:
            self.link_suspect.clear()
            self._clock.set_connected(True)
            log.warning("the broker %s answers again", self._url)
        self.link_alive.set()

    def pause(self) -> None:
        """Stop taking messages in: what arrives from now on stays unacknowledged at the
        broker and is delivered to the next session."""
        with self._lock:
            self._accepting = False

    def stop(self, timeout_s: float = 5.0) -> None:
        """Make sure the broker has read the acknowledgements sent, disconnect (the session
        stays at the broker) and stop paho's thread."""
        self.pause()
        if self._connected:
            if not self._client.sync(timeout_s):
                log.warning("the broker did not confirm the last acknowledgements")
            self._client.disconnect()
            self._down.wait(timeout_s)
        self._stopping.set()
        if self._prober is not None:
            self._prober.join(timeout_s)
        self._client.loop_stop()
        self._set_connected(False)

    @property
    def connected(self) -> bool:
        return self._connected

    def ack(self, items: Sequence[Received]) -> int:
        """Acknowledge the QoS 1 messages among ``items`` that came on the current
        connection; return how many. Older ones will be delivered again (and found to be
        duplicates), since a packet id means nothing on another connection."""
        with self._lock:
            if not self._connected:
                return 0
            generation = self._generation
            mids = [i.mid for i in items if i.qos == 1 and i.generation == generation]
            self._client.ack_many(mids)
        return len(mids)

    # -- paho callbacks, on paho's network thread -------------------------------------------

    def _on_connect(
        self,
        client: paho.Client,
        userdata: Any,
        flags: paho.ConnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if reason_code.is_failure:
            hint = ""
            if reason_code.value in _CREDENTIALS_REFUSED:
                hint = "; check the user name and password in TERMWATCH_MQTT_URL"
            self._trouble(f"refused the connection: {reason_code}{hint}")
            return
        if self._trouble_since is not None and self._trouble_warned is not None:
            log.warning(
                "the broker %s answers again after %.0f s",
                self._url,
                time.monotonic() - self._trouble_since,
            )
        self._trouble_since = self._trouble_warned = None
        with self._lock:
            self._generation += 1
            self._connected = True
        self._down.clear()
        self._set_connected(True)
        log.info(
            "connected to %s as %s (session %s)",
            self._url,
            self.client_id,
            "resumed" if flags.session_present else "new",
        )
        # Retained messages only when the subscription is new: a resumed session already had
        # them, and what changed since is queued for it.
        options = SubscribeOptions(qos=1, retainHandling=SubscribeOptions.RETAIN_SEND_IF_NEW_SUB)
        probe = SubscribeOptions(qos=0)
        _, mid = client.subscribe(
            [(topic, options) for topic in self.topics] + [(self.probe_topic, probe)]
        )
        self._subscribe_mid = mid
        self._probe_works = False  # until a probe comes back on this connection
        self.probe_returned.clear()
        self._heard_from_broker()

    def _on_connect_fail(self, client: paho.Client, userdata: Any) -> None:
        """paho could not open the connection (it retries with backoff)."""
        self._trouble("cannot be reached", probe=True)

    def _trouble(self, what: str, *, probe: bool = False) -> None:
        """Warn that the broker is unusable: at once, then every
        :data:`BROKER_WARNING_EVERY_S` while it lasts."""
        now = time.monotonic()
        if self._trouble_since is None:
            self._trouble_since = now
        if self._trouble_warned is not None and now - self._trouble_warned < BROKER_WARNING_EVERY_S:
            return
        self._trouble_warned = now
        if probe:  # paho does not say why; one short attempt of our own does
            try:
                socket.create_connection((self._url.host, self._url.port), timeout=2).close()
            except OSError as exc:
                what = f"{what} ({exc.strerror or exc})"
        lasting = now - self._trouble_since
        log.warning(
            "the broker %s %s%s; retrying",
            self._url,
            what,
            f", for {lasting:.0f} s" if lasting >= 1 else "",
        )

    def _on_subscribe(
        self,
        client: paho.Client,
        userdata: Any,
        mid: int,
        reason_codes: list[ReasonCode],
        properties: Properties | None,
    ) -> None:
        self._heard_from_broker()
        if len(reason_codes) > len(self.topics) and reason_codes[-1].is_failure:
            log.warning(
                "broker refused the link probe %s (%s): a dead link is found only by the "
                "keepalive; grant the collector readwrite on termwatch/probe/#",
                self.probe_topic,
                reason_codes[-1],
            )
        refused = [
            f"{topic}: {code}"
            for topic, code in zip(self.topics, reason_codes, strict=False)
            if code.is_failure
        ]
        if refused:
            log.error("broker refused subscriptions: %s", "; ".join(refused))
            return
        if mid == self._subscribe_mid:
            log.info("subscribed to %s", ", ".join(self.topics))
            self.subscribed.set()

    def _on_disconnect(
        self,
        client: paho.Client,
        userdata: Any,
        flags: paho.DisconnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        with self._lock:
            self._generation += 1
            was_connected = self._connected
            self._connected = False
        self.subscribed.clear()
        self.link_alive.clear()
        self.link_suspect.clear()
        self._down.set()
        self._set_connected(False)
        if was_connected and self._accepting:
            log.warning("lost the broker %s (%s); reconnecting", self._url, reason_code)

    def _on_message(self, client: paho.Client, userdata: Any, message: paho.MQTTMessage) -> None:
        try:
            topic: str | bytes = message.topic
        except UnicodeDecodeError:
            # paho keeps the raw topic private; brokers refuse such topics anyway.
            topic = b"\xff"
        self._receive(topic, message.payload, message.mid, message.qos)

    def _receive(self, topic: str | bytes, payload: bytes | bytearray, mid: int, qos: int) -> None:
        """Decode and enqueue; the only work done on paho's network thread."""
        self._heard_from_broker()
        if topic == self.probe_topic or topic == self._probe_topic_bytes:
            self._probe_works = True
            self._clock.prove()
            self.probe_returned.set()
            return
        if not self._accepting:
            return  # not acknowledged: the broker delivers it to the next session
        if isinstance(topic, bytes):
            word = topic.endswith(b"/availability")
        else:
            word = topic.endswith("/availability")
        clock_now = self._clock.now() if word else None
        result = decode(topic, payload, self._root, datetime.now(UTC), clock_now=clock_now)
        self._inbox.put(Received(result, mid, qos, self._generation, payload))

    def _set_connected(self, connected: bool) -> None:
        self._clock.set_connected(connected)
        MQTT_CONNECTED.set(1 if connected else 0)
