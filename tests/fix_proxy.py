"""A real TCP proxy in a thread, to put faults between termwatch and a server.

``Proxy(host, port)`` listens on a free local port and forwards to ``host:port``. Its mode
decides what happens to connections:

- :meth:`Proxy.pass_`: forward both ways (new connections; black-holed ones stay dead);
- :meth:`Proxy.refuse`: close the listening socket, so connecting is refused;
- :meth:`Proxy.blackhole`: accept connections and keep them open, forward nothing (what the
  client sends is read and dropped), existing connections included: a hung server, a stuck
  load balancer, a half-open connection;
- :meth:`Proxy.cut`: close every connection now (the client sees the server go away).
"""

from __future__ import annotations

import selectors
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress


class _Pair:
    def __init__(self, client: socket.socket, server: socket.socket | None) -> None:
        self.client = client
        self.server = server
        self.stuck = server is None


class Proxy:
    """See the module docstring. Use as a context manager or call :meth:`stop`."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.port = 0
        self._lock = threading.Lock()
        self._pairs: list[_Pair] = []
        self._mode = "pass"
        self._listener: socket.socket | None = None
        self._sel = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        self._sel.register(self._wake_r, selectors.EVENT_READ, None)
        self._stopped = False
        self._listen()
        self._thread = threading.Thread(target=self._run, name="test-proxy", daemon=True)
        self._thread.start()

    @property
    def host(self) -> str:
        return "127.0.0.1"

    def _listen(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(128)
        listener.setblocking(False)
        self.port = listener.getsockname()[1]
        self._listener = listener
        self._sel.register(listener, selectors.EVENT_READ, "accept")

    def _wake(self) -> None:
        self._wake_w.send(b"x")

    # -- modes ------------------------------------------------------------------------------

    def pass_(self) -> None:
        with self._lock:
            self._mode = "pass"
            if self._listener is None:
                self._listen()
        self._wake()

    def refuse(self) -> None:
        with self._lock:
            self._mode = "refuse"
            if self._listener is not None:
                self._sel.unregister(self._listener)
                self._listener.close()
                self._listener = None
        self._wake()

    def blackhole(self) -> None:
        with self._lock:
            self._mode = "blackhole"
            if self._listener is None:
                self._listen()
            for pair in self._pairs:
                pair.stuck = True
        self._wake()

    def cut(self) -> None:
        with self._lock:
            for pair in list(self._pairs):
                self._close(pair)
        self._wake()

    def stop(self) -> None:
        self._stopped = True
        self._wake()
        self._thread.join(5)
        with self._lock:
            for pair in list(self._pairs):
                self._close(pair)
            if self._listener is not None:
                self._listener.close()
        self._wake_r.close()
        self._wake_w.close()

    # -- the loop ---------------------------------------------------------------------------

    def _close(self, pair: _Pair) -> None:
        for sock in (pair.client, pair.server):
            if sock is None:
                continue
            with suppress(KeyError, ValueError):
                self._sel.unregister(sock)
            sock.close()
        if pair in self._pairs:
            self._pairs.remove(pair)

    def _accept(self) -> None:
        assert self._listener is not None
        try:
            client, _ = self._listener.accept()
        except BlockingIOError:
            return
        server = None
        if self._mode == "pass":
            try:
                server = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                return
            server.setblocking(False)
        client.setblocking(False)
        pair = _Pair(client, server)
        self._pairs.append(pair)
        self._sel.register(client, selectors.EVENT_READ, (pair, "client"))
        if server is not None:
            self._sel.register(server, selectors.EVENT_READ, (pair, "server"))

    def _run(self) -> None:
        while not self._stopped:
            for key, _ in self._sel.select(0.5):
                with self._lock:
                    if key.fileobj is self._wake_r:
                        self._wake_r.recv(4096)
                    elif key.data == "accept":
                        if self._listener is not None:
                            self._accept()
                    else:
                        self._forward(*key.data)

    def _forward(self, pair: _Pair, side: str) -> None:
        if pair not in self._pairs:
            return
        source = pair.client if side == "client" else pair.server
        other = pair.server if side == "client" else pair.client
        assert source is not None
        try:
            data = source.recv(65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self._close(pair)
            return
        if pair.stuck or other is None:
            return  # black-holed: read and dropped
        try:
            other.setblocking(True)
            other.sendall(data)
            other.setblocking(False)
        except OSError:
            self._close(pair)


@contextmanager
def proxy(host: str, port: int) -> Iterator[Proxy]:
    running = Proxy(host, port)
    try:
        yield running
    finally:
        running.stop()
