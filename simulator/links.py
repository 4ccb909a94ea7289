"""Many MQTT connections driven from one thread: paho clients on an external event loop.

Each simulated terminal has its own connection (its own client id, optionally its own user
name and password, and a real last will). Sockets are watched with one ``selectors`` loop;
paho's ``loop_read``/``loop_write``/``loop_misc`` do the protocol work, so 500 terminals
need no 500 threads.
"""

from __future__ import annotations

import contextlib
import logging
import selectors
import socket
import ssl
import time
from dataclasses import dataclass, field
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode

from termwatch.settings import MqttUrl

log = logging.getLogger(__name__)


class LinkError(RuntimeError):
    """The broker cannot be reached or refused a connection; not worth retrying blindly."""


@dataclass(frozen=True, slots=True)
class Credentials:
    """How terminals log in: the broker URL's user for all, or ``tid`` with a password each."""

    password_template: str | None = None

    def for_tid(self, url: MqttUrl, tid: str) -> tuple[str | None, str | None]:
        if self.password_template is not None:
            return tid, self.password_template.format(tid=tid)
        return url.username, url.password


@dataclass(slots=True, eq=False)
class Link:
    """One connection. Messages wait in ``backlog`` until the broker has accepted it."""

    name: str
    client_id: str = ""
    client: mqtt.Client | None = None
    connected: bool = False
    backlog: list[tuple[str, bytes, int, bool]] = field(default_factory=list)
    will: tuple[str, bytes] | None = None
    wanted: bool = False  # should be connected (reconnect when the broker closed it)


class LinkPool:
    def __init__(self, url: MqttUrl, credentials: Credentials, keepalive: int = 60) -> None:
        self.url = url
        self.credentials = credentials
        self.keepalive = keepalive
        self.selector = selectors.DefaultSelector()
        self.links: dict[str, Link] = {}
        self._writers: set[Link] = set()
        self._misc_at = 0.0
        self.sent = 0  # publishes handed to paho
        self.acked = 0  # of them written (QoS 0) or acknowledged (QoS 1): paho's on_publish
        self.unexpected_disconnects = 0
        self.refused: list[str] = []

    # -- connections --------------------------------------------------------------------

    def open(
        self, name: str, client_id: str, tid: str | None, will: tuple[str, bytes] | None
    ) -> Link:
        """Connect (TCP now, MQTT CONNACK later in :meth:`pump`); raises LinkError."""
        link = self.links.get(name) or Link(name)
        self.links[name] = link
        link.will = will
        link.client_id = client_id
        link.wanted = True
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            clean_session=True,
            protocol=mqtt.MQTTv311,
            userdata=link,
        )
        client.max_inflight_messages_set(100)
        user, password = (
            self.credentials.for_tid(self.url, tid)
            if tid
            else (self.url.username, self.url.password)
        )
        if user is not None:
            client.username_pw_set(user, password)
        if will is not None:
            client.will_set(will[0], will[1], qos=1, retain=True)
        if self.url.tls:
            client.tls_set(cert_reqs=ssl.CERT_REQUIRED)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        client.on_socket_open = self._on_socket_open
        client.on_socket_close = self._on_socket_close
        link.client = client
        link.connected = False
        try:
            client.connect(self.url.host, self.url.port, self.keepalive)
        except (OSError, ssl.SSLError) as exc:
            link.client = None
            raise LinkError(f"cannot connect to the broker at {self.url}: {exc}") from None
        if client.want_write():
            self._writers.add(link)
        return link

    def cut(self, name: str) -> None:
        """Lose the connection without DISCONNECT, as a network loss does.

        What was already sent still arrives (the socket is half-closed after it, never
        reset); the broker then sees the connection end and publishes the last will. The old
        client stays in the loop until the broker has closed its side.
        """
        link = self.links.get(name)
        if link is None or link.client is None:
            return
        client = link.client
        end = time.monotonic() + 2.0
        while (not link.connected or client.want_write()) and time.monotonic() < end:
            self.pump(0.005)
        link.wanted = False
        link.client, link.connected = None, False
        link.backlog.clear()
        self._writers.discard(link)
        sock = client.socket()
        if isinstance(sock, socket.socket):
            with contextlib.suppress(OSError):  # already gone: the broker saw the loss
                sock.shutdown(socket.SHUT_WR)

    def close_all(self) -> None:
        """Disconnect every link cleanly (DISCONNECT: no will is published)."""
        for link in self.links.values():
            link.wanted = False
            if link.client is not None:
                link.client.disconnect()
                link.client.loop_write()
        deadline = time.monotonic() + 2.0
        while self.selector.get_map() and time.monotonic() < deadline:
            self.pump(0.05)
        for key in list(self.selector.get_map().values()):
            key.fileobj.close()  # type: ignore[union-attr]
        self.selector.close()

    # -- messages -----------------------------------------------------------------------

    def publish(self, name: str, topic: str, payload: bytes, qos: int, retain: bool) -> bool:
        """Send now, or queue until the link is up; False when the link is not open."""
        link = self.links.get(name)
        if link is None or link.client is None:
            return False
        if not link.connected:
            link.backlog.append((topic, payload, qos, retain))
            return True
        self._send(link, topic, payload, qos, retain)
        return True

    def _send(self, link: Link, topic: str, payload: bytes, qos: int, retain: bool) -> None:
        assert link.client is not None
        info = link.client.publish(topic, payload, qos=qos, retain=retain)
        if info.rc not in (MQTTErrorCode.MQTT_ERR_SUCCESS, MQTTErrorCode.MQTT_ERR_QUEUE_SIZE):
            log.warning("publish on %s failed: %s", link.name, mqtt.error_string(info.rc))
            return
        self.sent += 1
        if link.client.want_write():
            self._writers.add(link)

    @property
    def unacked(self) -> int:
        return self.sent - self.acked

    def connected_count(self) -> int:
        return sum(1 for link in self.links.values() if link.connected)

    # -- the loop -----------------------------------------------------------------------

    def pump(self, timeout: float) -> None:
        """Write what is pending, read what arrived (waiting up to ``timeout`` s), and once a
        second run paho's housekeeping (keepalive pings) and reconnect dropped links."""
        for link in list(self._writers):
            if link.client is None or not link.client.want_write():
                self._writers.discard(link)
                continue
            link.client.loop_write()
        if self.selector.get_map():
            for key, _ in self.selector.select(timeout):
                key.data.loop_read()
        elif timeout > 0:
            time.sleep(timeout)
        now = time.monotonic()
        if now - self._misc_at >= 1.0:
            self._misc_at = now
            for link in list(self.links.values()):
                if link.client is not None:
                    link.client.loop_misc()
                elif link.wanted:
                    self._reopen(link)
        if self.refused:
            raise LinkError(f"the broker refused {self.refused[0]}")

    def _reopen(self, link: Link) -> None:
        try:
            self.open(link.name, link.client_id, link.name if link.will else None, link.will)
        except LinkError as exc:
            log.warning("reconnecting %s: %s", link.name, exc)

    def wait_connected(self, deadline_s: float) -> None:
        """Pump until every wanted link is up; raises LinkError after ``deadline_s``."""
        end = time.monotonic() + deadline_s
        while any(link.wanted and not link.connected for link in self.links.values()):
            if time.monotonic() > end:
                down = [
                    link.name for link in self.links.values() if link.wanted and not link.connected
                ]
                raise LinkError(
                    f"{len(down)} connections not accepted by {self.url} (e.g. {down[0]})"
                )
            self.pump(0.05)

    def drain(self, deadline_s: float) -> bool:
        """Pump until every message is written and every QoS 1 one acknowledged; False if
        time ran out."""
        end = time.monotonic() + deadline_s
        while self.unacked > 0 or self._writers:
            if time.monotonic() > end:
                return False
            self.pump(0.02)
        return True

    # -- paho callbacks -----------------------------------------------------------------

    def _on_socket_open(self, client: mqtt.Client, link: Link, sock: Any) -> None:
        self.selector.register(sock, selectors.EVENT_READ, client)

    def _on_socket_close(self, client: mqtt.Client, link: Link, sock: Any) -> None:
        with contextlib.suppress(KeyError, ValueError):  # never registered: failed to open
            self.selector.unregister(sock)

    def _on_connect(
        self, client: mqtt.Client, link: Link, flags: Any, reason: Any, props: Any
    ) -> None:
        if reason.is_failure:
            self.refused.append(f"{link.name}: {reason}")
            return
        link.connected = True
        backlog, link.backlog = link.backlog, []
        for topic, payload, qos, retain in backlog:
            self._send(link, topic, payload, qos, retain)

    def _on_disconnect(
        self, client: mqtt.Client, link: Link, flags: Any, reason: Any, props: Any
    ) -> None:
        if link.client is client:
            link.connected = False
            if link.wanted:
                self.unexpected_disconnects += 1
                log.warning("%s: the broker closed the connection (%s)", link.name, reason)
                link.client = None

    def _on_publish(
        self, client: mqtt.Client, link: Link, mid: int, reason: Any, props: Any
    ) -> None:
        self.acked += 1
