"""paho's MQTT client, tuned for a subscriber receiving thousands of messages a second.

paho spends some 20 µs of Python per incoming message (three ``recv`` calls, a ``select``,
a packet dictionary, MQTT v5 property objects, an ``MQTTMessage``). On the ingest
benchmark that was more than a third of the collector's CPU, so :class:`FastClient` changes
four things (figures in docs/performance.md), and adds :meth:`FastClient.sync`:

* **Buffered reads.** On a plain TCP connection the socket is wrapped in
  :class:`BufferedSocket`, which reads up to 256 KiB at a time and reports what it holds
  through ``pending()`` (the hook paho already uses for TLS).
* **PUBLISH packets parsed in place.** When an ``on_publish_raw`` callback is set (and
  acknowledgements are manual), :meth:`FastClient.loop_read` takes each *complete* QoS 0
  or QoS 1 PUBLISH packet straight from the buffer and calls
  ``on_publish_raw(topic, payload, mid, qos)``; the MQTT v5 properties are skipped (the
  collector uses none). Anything else (other packet types, QoS 2, a packet not yet fully
  received) goes through paho's own reader, in order.
* **Acknowledgements in bulk.** paho's ``ack(mid)`` queues one packet and wakes the
  network thread for every message; :meth:`FastClient.ack_many` queues all PUBACKs of a
  committed batch as one write.
* **Direct dispatch.** ``on_message`` is called without matching the topic against
  per-topic callbacks, which this client does not support.

Measured draining 100,000 queued QoS 1 messages from Mosquitto (receive, hand over,
acknowledge in batches): 24 µs of CPU per message with paho's reader (buffered), 3.5 µs
with the in-place parser. These use paho 2.x internals (``_packet_queue``, ``_create_socket``,
``_packet_read``, ``_in_packet``, ``_handle_on_message``, ``_last_bytes_received``), which
is why the dependency is pinned below 3; ``tests/test_collector_client.py`` fails if they
change.
"""

from __future__ import annotations

import socket
import struct
import threading
from collections.abc import Callable, Sequence
from typing import Any, Final

import paho.mqtt.client as paho
from paho.mqtt.enums import MQTTErrorCode, MQTTProtocolVersion

PUBACK: Final = 0x40
_PUBACK = struct.Struct("!BBH")
_READ_SIZE: Final = 256 * 1024
_PACKETS_PER_READ: Final = 5000
#: A PUBLISH fixed header with QoS 0 or 1, ignoring the DUP and RETAIN bits.
_TYPE_AND_QOS: Final = 0xF6
_PUBLISH_QOS0: Final = 0x30
_PUBLISH_QOS1: Final = 0x32

#: A topic filter never subscribed to (see :meth:`FastClient.sync`).
SYNC_FILTER: Final = "termwatch/collector/sync"

#: ``on_publish_raw(topic, payload, mid, qos)``; ``mid`` is 0 for QoS 0.
RawPublishCallback = Callable[[bytes, bytes, int, int], None]


class BufferedSocket:
    """A plain socket whose ``recv`` is served from a user-space buffer."""

    __slots__ = ("buf", "pos", "sock")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = b""
        self.pos = 0

    def recv(self, size: int) -> bytes:
        """Up to ``size`` bytes: from the buffer when it holds any, else from one ``recv``
        of up to 256 KiB (raising what the socket raises, e.g. ``BlockingIOError``)."""
        buf, pos = self.buf, self.pos
        held = len(buf) - pos
        if held == 0:
            data = self.sock.recv(max(size, _READ_SIZE))
            if len(data) <= size:
                return data
            self.buf, self.pos = data, size
            return data[:size]
        if size >= held:
            self.buf, self.pos = b"", 0
            return buf[pos:] if pos else buf
        self.pos = pos + size
        return buf[pos : pos + size]

    def pending(self) -> int:
        """Bytes received and not yet read."""
        return len(self.buf) - self.pos

    def __getattr__(self, name: str) -> Any:
        return getattr(self.sock, name)


class MalformedPublish(Exception):
    """A PUBLISH packet whose lengths do not add up."""


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    """MQTT's variable byte integer at ``pos``: ``(value, bytes used)``. Raises IndexError
    when the buffer ends first, :class:`MalformedPublish` after 4 bytes."""
    value, multiplier = 0, 1
    for used in range(1, 5):
        byte = buf[pos + used - 1]
        value += (byte & 0x7F) * multiplier
        if not byte & 0x80:
            return value, used
        multiplier *= 128
    raise MalformedPublish("remaining length longer than 4 bytes")


def parse_publish(header: int, body: bytes, v5: bool) -> tuple[bytes, bytes, int, int]:
    """``(topic, payload, mid, qos)`` of a QoS 0/1 PUBLISH packet's variable header and
    payload. Raises :class:`MalformedPublish`."""
    qos = (header >> 1) & 3
    try:
        topic_end = 2 + (body[0] << 8 | body[1])
        pos = topic_end
        mid = 0
        if qos:
            mid = body[pos] << 8 | body[pos + 1]
            pos += 2
        if v5:
            length, used = _varint(body, pos)
            pos += used + length
    except IndexError:
        raise MalformedPublish("variable header longer than the packet") from None
    if pos > len(body):
        raise MalformedPublish("properties longer than the packet")
    return body[2:topic_end], body[pos:], mid, qos


class FastClient(paho.Client):
    """A :class:`paho.mqtt.client.Client` with :meth:`ack_many`, buffered reads and the
    ``on_publish_raw`` fast path (see the module docstring)."""

    on_publish_raw: RawPublishCallback | None = None

    def ack_many(self, mids: Sequence[int]) -> None:
        """Send a PUBACK for each QoS 1 packet id in ``mids``, in order, as one write.

        Same contract as ``ack(mid, 1)`` with manual acknowledgement on: call it only for
        messages received on the current connection.
        """
        if mids:
            packet = b"".join([_PUBACK.pack(PUBACK, 2, mid) for mid in mids])
            self._packet_queue(PUBACK, packet, 0, 0)

    def sync(self, timeout_s: float) -> bool:
        """Wait until the broker has read every packet sent before this call; False on
        timeout or when not connected.

        The barrier is an UNSUBSCRIBE of a filter never subscribed to: the broker handles a
        client's packets in order, so its UNSUBACK means the PUBACKs before it were taken
        into account. Call it before disconnecting: closing a socket that still has unread
        data resets the connection, and the broker may then lose what it had not read yet.
        Replaces ``on_unsubscribe``.
        """
        answered: set[int] = set()
        changed = threading.Condition()

        def on_unsubscribe(client: paho.Client, userdata: Any, mid: int, *rest: Any) -> None:
            with changed:
                answered.add(mid)
                changed.notify_all()

        self.on_unsubscribe = on_unsubscribe
        rc, mid = self.unsubscribe(SYNC_FILTER)
        if rc != MQTTErrorCode.MQTT_ERR_SUCCESS or mid is None:
            return False
        with changed:
            return changed.wait_for(lambda: mid in answered, timeout_s)

    def message_callback_add(self, sub: str, callback: Any) -> None:
        """Refused: by design every message goes to ``on_message`` (no per-topic callbacks)."""
        raise TypeError("FastClient dispatches every message to on_message")

    def _handle_on_message(self, message: paho.MQTTMessage) -> None:
        on_message = self.on_message
        if on_message is not None:
            with self._in_callback_mutex:
                on_message(self, self._userdata, message)

    def _create_socket(self) -> Any:
        sock = super()._create_socket()
        return BufferedSocket(sock) if type(sock) is socket.socket else sock

    def loop_read(self, max_packets: int = 1) -> MQTTErrorCode:
        """Read every packet the buffer holds (paho reads one per ``select``), taking
        complete QoS 0/1 PUBLISH packets through ``on_publish_raw`` when it is set."""
        sock = self._sock
        if not isinstance(sock, BufferedSocket):
            return super().loop_read(max_packets)
        fast = self.on_publish_raw if self._manual_ack else None
        v5 = self._protocol == MQTTProtocolVersion.MQTTv5
        received = False
        for _ in range(_PACKETS_PER_READ):
            if self._sock is None:
                return MQTTErrorCode.MQTT_ERR_NO_CONN
            if fast is not None and self._in_packet["command"] == 0:
                try:
                    taken = _take_publish(sock, v5)
                except MalformedPublish:
                    return self._loop_rc_handle(MQTTErrorCode.MQTT_ERR_PROTOCOL)
                if taken is not None:
                    received = True
                    fast(*taken)
                    if not sock.pending():
                        break
                    continue
            rc = self._packet_read()
            if rc > 0:
                return self._loop_rc_handle(rc)
            if rc == MQTTErrorCode.MQTT_ERR_AGAIN or not sock.pending():
                break
        if received:
            with self._msgtime_mutex:
                self._last_bytes_received = paho.time_func()
        return MQTTErrorCode.MQTT_ERR_SUCCESS


def _take_publish(sock: BufferedSocket, v5: bool) -> tuple[bytes, bytes, int, int] | None:
    """Consume and parse the complete QoS 0/1 PUBLISH packet at the head of the buffer;
    None (consuming nothing) when the head is anything else or not all there yet."""
    buf, pos = sock.buf, sock.pos
    if len(buf) - pos < 2:
        return None
    header = buf[pos]
    if header & _TYPE_AND_QOS not in (_PUBLISH_QOS0, _PUBLISH_QOS1):
        return None
    try:
        length, used = _varint(buf, pos + 1)
    except IndexError:
        return None
    start = pos + 1 + used
    end = start + length
    if end > len(buf):
        return None
    sock.pos = end
    return parse_publish(header, buf[start:end], v5)
