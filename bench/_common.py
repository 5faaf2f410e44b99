"""Helpers shared by the benchmark scripts (they print numbers; nothing here asserts timings)."""

from __future__ import annotations

import os
import secrets
import statistics
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.retrieval.evaluate import percentile  # noqa: E402  (one definition for reports and benchmarks)

__all__ = ["ROOT", "percentile", "rss_mb", "summary", "temporary_postgres_database"]


def summary(name: str, values_ms: list[float]) -> str:
    return (
        f"{name}: n={len(values_ms)} p50={statistics.median(values_ms):.1f} ms "
        f"p95={percentile(values_ms, 0.95):.1f} ms p99={percentile(values_ms, 0.99):.1f} ms"
    )


def rss_mb() -> float:
    import psutil

    return psutil.Process(os.getpid()).memory_info().rss / 1e6


@contextmanager
def temporary_postgres_database(admin_url: str, prefix: str) -> Iterator[str]:
    """A fresh PostgreSQL database for one benchmark run (psycopg URL), dropped afterwards."""
    import psycopg
    from sqlalchemy.engine import make_url

    admin = make_url(admin_url).set(drivername="postgresql").render_as_string(False)
    name = f"{prefix}_{secrets.token_hex(4)}"
    with psycopg.connect(admin, autocommit=True, connect_timeout=3) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield make_url(admin_url).set(drivername="postgresql+psycopg", database=name).render_as_string(False)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
