"""Security headers on every response, as one pure-ASGI middleware (a header list per path, built once).

- `Content-Security-Policy`: scripts only from this origin (the demo page has no inline script; the widget is
  `/widget.js`), no plugins, no framing (`frame-ancestors 'none'`, plus `X-Frame-Options: DENY` for old browsers).
  Styles may be inline: the widget styles its Shadow DOM with a `<style>` element, and CSS cannot run code.
  `/docs` (FastAPI's Swagger UI, which loads from a CDN and starts with an inline script) gets a policy of its own,
  and is off in production (`ENVIRONMENT=production` or `API_DOCS=false`).
- `X-Content-Type-Options: nosniff`, `Referrer-Policy: no-referrer`.
- `Cache-Control: no-store` on everything under `/api/`: histories and answers are private to one visitor.
- `/console` (the operators' console): its own policy (forms post to this origin; no inline script or style) and
  `no-store`, since every page shows people's conversations.
- a neutral `Server` header (uvicorn's own is turned off in `bot serve`: `server_header=False`).
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

PAGE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
DOCS_CSP = (
    "default-src 'none'; script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
    "style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; img-src 'self' data: https://fastapi.tiangolo.com; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
CONSOLE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
SERVER_NAME = b"web"
DOCS_PATHS = ("/docs", "/redoc")

_COMMON: list[tuple[bytes, bytes]] = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"server", SERVER_NAME),
]
PAGE_HEADERS = [*_COMMON, (b"content-security-policy", PAGE_CSP.encode())]
DOCS_HEADERS = [*_COMMON, (b"content-security-policy", DOCS_CSP.encode())]
PRIVATE_HEADERS = [*PAGE_HEADERS, (b"cache-control", b"no-store")]
CONSOLE_HEADERS = [*_COMMON, (b"content-security-policy", CONSOLE_CSP.encode()), (b"cache-control", b"no-store")]
PRIVATE_OWN_CACHE_HEADERS = PAGE_HEADERS  # a private response that already says no-store keeps its Cache-Control
_NAMES = {
    id(h): frozenset(name for name, _ in h) for h in (PAGE_HEADERS, DOCS_HEADERS, PRIVATE_HEADERS, CONSOLE_HEADERS)
}


def _names(headers: list[tuple[bytes, bytes]]) -> frozenset[bytes]:
    return _NAMES[id(headers)]


def headers_for(path: str, private_prefix: str = "/api/") -> list[tuple[bytes, bytes]]:
    if path.startswith(private_prefix):
        return PRIVATE_HEADERS
    if path.startswith(DOCS_PATHS):
        return DOCS_HEADERS
    if path == "/console" or path.startswith("/console/"):
        return CONSOLE_HEADERS
    return PAGE_HEADERS


class SecurityHeadersMiddleware:
    def __init__(self, app: ASGIApp, *, private_prefix: str = "/api/") -> None:
        self.app = app
        self.private_prefix = private_prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = headers_for(scope["path"], self.private_prefix)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                # Ours win, except a route's own Cache-Control that already says no-store (the SSE stream adds
                # no-transform to it).
                added = extra
                own = message.get("headers", [])
                if added is PRIVATE_HEADERS and any(k.lower() == b"cache-control" and b"no-store" in v for k, v in own):
                    added = PRIVATE_OWN_CACHE_HEADERS
                names = _names(added)
                kept = [(k, v) for k, v in own if k.lower() not in names]
                message["headers"] = kept + added
            await send(message)

        await self.app(scope, receive, send_with_headers)
