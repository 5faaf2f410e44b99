"""Cost of the security-header middleware per request (bot.api.security), measured at the ASGI boundary.

The same small FastAPI app (a JSON route under /api/ and an HTML page) is called directly through ASGI, with and
without SecurityHeadersMiddleware, N times each, interleaved in rounds so machine noise hits both alike. Prints the
median per-request time of each and the difference. No network: the difference is the middleware alone.

    .venv/bin/python bench/headers_bench.py [--requests 20000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from typing import Any

from fastapi import FastAPI
from fastapi.responses import HTMLResponse

from bot.api.security import SecurityHeadersMiddleware


def make_app(with_headers: bool) -> Any:
    app = FastAPI()

    @app.get("/api/ping")
    async def ping() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/")
    async def page() -> HTMLResponse:
        return HTMLResponse("<!doctype html><title>x</title>")

    if with_headers:
        app.add_middleware(SecurityHeadersMiddleware)
    return app


async def call(app: Any, path: str) -> list[tuple[bytes, bytes]]:
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"bench")],
        "client": ("127.0.0.1", 1),
        "server": ("bench", 80),
    }
    headers: list[tuple[bytes, bytes]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            headers.extend(message["headers"])

    await app(scope, receive, send)
    return headers


async def timed(app: Any, n: int) -> float:
    started = time.perf_counter()
    for i in range(n):
        await call(app, "/api/ping" if i % 2 else "/")
    return (time.perf_counter() - started) / n * 1e6


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    plain, secured = make_app(False), make_app(True)
    # Lifespan is not needed for these routes; warm both up.
    for app in (plain, secured):
        await timed(app, 500)
    assert any(k == b"content-security-policy" for k, _ in await call(secured, "/"))
    without: list[float] = []
    with_mw: list[float] = []
    for _ in range(args.rounds):
        without.append(await timed(plain, args.requests))
        with_mw.append(await timed(secured, args.requests))
    a, b = statistics.median(without), statistics.median(with_mw)
    print(f"requests per variant: {args.requests} x {args.rounds} rounds (half JSON under /api/, half HTML)")
    print(f"without the middleware: {a:.1f} µs per request (median of rounds)")
    print(f"with the middleware:    {b:.1f} µs per request")
    print(f"overhead: {b - a:+.1f} µs per request ({(b - a) / a * 100:+.1f} %)")


if __name__ == "__main__":
    asyncio.run(main())
