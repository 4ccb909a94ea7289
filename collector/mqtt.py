"""The collector's broker link: paho-mqtt (v2 callback API), MQTT v5, QoS 1, manual PUBACK.

paho's network thread only decodes, validates and enqueues (:meth:`MqttSource._on_message`);
the writer acknowledges each QoS 1 message after its batch is committed
(:meth:`MqttSource.ack`). The session is persistent (a fixed client id, ``clean_start``
false, a session expiry of :data:`SESSION_EXPIRY_S`), so messages published while the
collector is away wait at the broker, and a message received but not acknowledged before a
crash is delivered again. paho reconnects with exponential backoff; every (re)connection
subscribes again.

Flow control: the broker keeps at most the client's *Receive Maximum* of QoS 1 messages
unacknowledged with a v5 client, and stops sending when that many are in flight. Since
acknowledgements wait for a commit (tens of milliseconds), the collector asks for the
largest value MQTT allows (65535). A v3.1.1 client would get the broker's
``max_inflight_messages`` instead (Mosquitto's default: 20, about a thousand messages a
second at this commit latency).
"""

from __future__ import annotations

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
        _, mid = client.subscribe([(topic, options) for topic in self.topics])
        self._subscribe_mid = mid

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
