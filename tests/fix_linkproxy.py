"""A TCP proxy in front of the broker that can black-hole the link: connections stay open,
nothing is forwarded either way (no reset), as when packets vanish on a network path."""

from __future__ import annotations

import select
import socket
import threading
from collections.abc import Iterator

import pytest


class LinkProxy:
    """Forwards 127.0.0.1:``port`` to ``upstream``; ``black_hole()`` drops everything."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self._upstream = upstream
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._holed = threading.Event()
        self._closing = threading.Event()
        self._sockets: list[socket.socket] = [self._listener]
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._accept, daemon=True)]
        self._threads[0].start()

    def black_hole(self) -> None:
        self._holed.set()

    def restore(self) -> None:
        self._holed.clear()

    def _accept(self) -> None:
        while not self._closing.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(self._upstream, timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._sockets += [client, server]
            pump = threading.Thread(target=self._pump, args=(client, server), daemon=True)
            self._threads.append(pump)
            pump.start()

    def _pump(self, a: socket.socket, b: socket.socket) -> None:
        peer = {a: b, b: a}
        try:
            while not self._closing.is_set():
                ready, _, _ = select.select([a, b], [], [], 0.2)
                for sock in ready:
                    data = sock.recv(65536)
                    if not data:
                        return
                    if not self._holed.is_set():
                        peer[sock].sendall(data)
        except OSError:
            return
        finally:
            a.close()
            b.close()

    def close(self) -> None:
        self._closing.set()
        with self._lock:
            for sock in self._sockets:
                sock.close()
        for thread in self._threads:
            thread.join(2)


@pytest.fixture
def link_proxy() -> Iterator[LinkProxy]:
    proxy = LinkProxy(("127.0.0.1", 1883))
    try:
        yield proxy
    finally:
        proxy.close()
