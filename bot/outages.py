"""Which failures mean "a dependency is down right now" rather than a bug.

Such a failure gets a 503 with a sentence a person can act on (try again shortly), a LINE event is retried within
its time budget, and the log says which dependency, without a traceback per request: an outage is an operational
state, not an error in the code.
"""

from __future__ import annotations

import sqlite3

WEB_UNAVAILABLE_MESSAGE = "ただいま一時的に回答できない状態です。少し時間をおいてから、もう一度送信してください。"
RETRY_AFTER_SECONDS = 5


def unavailable_dependency(exc: BaseException) -> str | None:
    """'store' or 'index' when `exc` (or what caused it) is that dependency being unreachable; else None."""
    import httpx
    from sqlalchemy import exc as sa_exc

    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, sa_exc.OperationalError | sa_exc.InterfaceError | sa_exc.TimeoutError):
            return "store"  # connection refused or cut, pool exhausted, SQLite busy beyond its timeout
        if isinstance(current, sa_exc.DBAPIError) and current.connection_invalidated:
            return "store"
        if isinstance(current, sqlite3.OperationalError):
            return "store"
        if isinstance(current, httpx.TransportError):
            return "index"  # the Chroma server is unreachable
        if _is_chroma_error(current):
            return "index"  # e.g. the collection was switched away while a query ran
        current = current.__cause__ or current.__context__
    return None


def outage_exception_types() -> tuple[type[Exception], ...]:
    """The exception classes that are always an outage (for frameworks that dispatch on the class)."""
    import httpx
    from chromadb.errors import ChromaError
    from sqlalchemy import exc as sa_exc

    return (
        sa_exc.OperationalError,
        sa_exc.InterfaceError,
        sa_exc.TimeoutError,
        sqlite3.OperationalError,
        httpx.TransportError,
        ChromaError,
    )


def _is_chroma_error(exc: BaseException) -> bool:
    try:
        from chromadb.errors import ChromaError
    except ImportError:  # pragma: no cover - chromadb is a dependency
        return False
    if isinstance(exc, ChromaError):
        return True
    # chromadb's HttpClient says "Could not connect to a Chroma server" with a plain ValueError.
    return isinstance(exc, ValueError) and "Chroma server" in str(exc)
