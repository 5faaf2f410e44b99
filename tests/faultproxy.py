"""A TCP proxy in front of a real service (PostgreSQL, Redis, a Chroma server) that can take it away on demand.

The service itself keeps running (other tests and other people use it); what the client under test sees is what an
outage looks like on the wire:
- "forward": bytes flow both ways;
- "down": open connections are cut and new ones are closed at once (a crashed or restarting server);
- "hang": connections are accepted and open ones stay open, but nothing flows (a hung server, a dropped route).
Used by the readiness and outage tests and by bench/fault_harness.py.
"""

from __future__ import annotations

import contextlib
import select
import socket
import threading
from typing import Literal

Mode = Literal["forward", "down", "hang"]


class FaultProxy:
    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        self._mode: Mode = "forward"
        self._guard = threading.Lock()
        self._pairs: list[tuple[socket.socket, socket.socket]] = []
        self._closed = False
        threading.Thread(target=self._accept, name=f"faultproxy-{self.port}", daemon=True).start()

    @property
    def mode(self) -> Mode:
        return self._mode

    def set_mode(self, mode: Mode) -> None:
        with self._guard:
            self._mode = mode
            if mode == "down":
                pairs, self._pairs = self._pairs, []
                for pair in pairs:
                    _close(*pair)

    def close(self) -> None:
        self._closed = True
        self.set_mode("down")
        self._listener.close()

    def __enter__(self) -> FaultProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if self._mode == "down":
                _close(client)
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                _close(client)
                continue
            upstream.settimeout(None)
            with self._guard:
                self._pairs.append((client, upstream))
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()

    def _pump(self, client: socket.socket, upstream: socket.socket) -> None:
        peers = {client: upstream, upstream: client}
        try:
            while True:
                if self._mode == "hang":
                    threading.Event().wait(0.05)
                    continue
                readable, _, _ = select.select(list(peers), [], [], 0.1)
                for sock in readable:
                    data = sock.recv(65536)
                    if not data:
                        return
                    peers[sock].sendall(data)
        except (OSError, ValueError):
            return
        finally:
            _close(client, upstream)
            with self._guard:
                if (client, upstream) in self._pairs:
                    self._pairs.remove((client, upstream))


def _close(*socks: socket.socket) -> None:
    for sock in socks:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        sock.close()
