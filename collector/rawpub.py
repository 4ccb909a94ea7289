"""A minimal MQTT 3.1.1 QoS 1 publisher over a plain socket, for the ingest benchmark.

The benchmark must load the collector, not itself: on a small machine a general-purpose
client spends more CPU per message than the collector does. This one writes PUBLISH packets
in large chunks and counts PUBACKs, keeping at most ``window`` messages unacknowledged.
It supports exactly what the benchmark needs (no TLS, no QoS 2, no retained messages).
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Callable, Sequence
from typing import Final

CONNECT: Final = 0x10
CONNACK: Final = 0x20
PUBLISH_QOS1: Final = 0x32
PUBACK: Final = 0x40
DISCONNECT: Final = b"\xe0\x00"
_CHUNK: Final = 64 * 1024


class ProtocolError(Exception):
    """The broker answered something this publisher does not expect."""


def remaining_length(n: int) -> bytes:
    """MQTT's variable-length encoding of a packet's remaining length."""
    out = bytearray()
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | 0x80 if n else byte)
        if not n:
            return bytes(out)


class RawPublisher:
    """One connection; :meth:`publish_all` sends messages and waits for every PUBACK."""

    def __init__(self, host: str, port: int, client_id: str, *, keepalive_s: int = 60) -> None:
        self._sock = socket.create_connection((host, port), timeout=30)
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        cid = client_id.encode()
        body = (
            b"\x00\x04MQTT\x04\x02"  # protocol name, level 4 (3.1.1), clean session
            + struct.pack("!H", keepalive_s)
            + struct.pack("!H", len(cid))
            + cid
        )
        self._sock.sendall(bytes([CONNECT]) + remaining_length(len(body)) + body)
        ack = self._recv_exact(4)
        if ack[0] != CONNACK or ack[3] != 0:
            raise ProtocolError(f"connection refused: {ack!r}")

    def publish_all(
        self,
        messages: Sequence[tuple[bytes, bytes]],
        *,
        window: int = 5000,
        may_send: Callable[[int], bool] | None = None,
        on_acked: Callable[[int], None] | None = None,
    ) -> int:
        """Publish ``(topic, payload)`` pairs at QoS 1; return how many the broker acknowledged.

        At most ``window`` are unacknowledged at a time. Before each chunk, ``may_send(n)`` is
        asked whether ``n`` more may go (the benchmark's flow control); ``on_acked(n)``
        reports acknowledgements as they come.
        """
        sock = self._sock
        total = len(messages)
        sent = acked = 0
        pid = 0
        pending = b""
        while acked < total:
            chunk = bytearray()
            room = min(window - (sent - acked), total - sent)
            if room > 0 and (may_send is None or may_send(room)):
                while sent < total and sent - acked < window and len(chunk) < _CHUNK:
                    topic, payload = messages[sent]
                    pid = pid % 65535 + 1
                    body = struct.pack("!H", len(topic)) + topic + struct.pack("!H", pid) + payload
                    chunk += bytes([PUBLISH_QOS1]) + remaining_length(len(body)) + body
                    sent += 1
                sock.sendall(chunk)
            if sent == acked:
                sock.settimeout(0.005)  # waiting for flow control, not for the broker
            else:
                sock.settimeout(30)
            try:
                data = sock.recv(_CHUNK)
            except TimeoutError:
                continue
            if not data:
                raise ProtocolError("the broker closed the connection")
            pending += data
            whole = len(pending) // 4
            for i in range(whole):
                if pending[4 * i] != PUBACK:
                    raise ProtocolError(f"expected PUBACK, got packet type {pending[4 * i]:#x}")
            pending = pending[4 * whole :]
            acked += whole
            if on_acked is not None and whole:
                on_acked(whole)
        return acked

    def close(self) -> None:
        try:
            self._sock.sendall(DISCONNECT)
        finally:
            self._sock.close()

    def _recv_exact(self, n: int) -> bytes:
        data = b""
        while len(data) < n:
            part = self._sock.recv(n - len(data))
            if not part:
                raise ProtocolError("the broker closed the connection")
            data += part
        return data
