"""A real uvicorn server in a thread on a free port (for browser tests, concurrency tests and the benchmark)."""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

import httpx
import uvicorn


class LiveServer:
    def __init__(self, app: Any, *, host: str = "127.0.0.1") -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, 0))
        self.host, self.port = host, self.sock.getsockname()[1]
        self.url = f"http://{host}:{self.port}"
        # server_header=False as `bot serve` runs it (the app sends a neutral Server header).
        config = uvicorn.Config(
            app, log_level="warning", lifespan="on", timeout_graceful_shutdown=5, server_header=False
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.server.started:
                try:
                    if httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200:
                        return self
                except httpx.HTTPError:
                    pass
            if not self.thread.is_alive():
                raise RuntimeError("the server thread exited during start-up")
            time.sleep(0.05)
        raise RuntimeError("the server did not start within 30 s")

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)
        self.sock.close()
