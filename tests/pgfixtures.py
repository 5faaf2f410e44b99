"""PostgreSQL for tests, shared by every directory (registered in tests/conftest.py as a plugin).

A fresh database `bot_test_<random>` per test session, created through the `postgres` database and dropped at the
end. When the server is not reachable the tests fail in CI (CI set) and otherwise try to start the local cluster,
skipping loudly only when that fails too. BOT_TEST_POSTGRES_URL overrides the admin URL.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import time
from collections.abc import Iterator

import psycopg
import pytest
from sqlalchemy.engine import make_url

from bot.store import open_store
from bot.store.schema import metadata

ADMIN_URL = os.environ.get("BOT_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
IN_CI = bool(os.environ.get("CI"))
TABLES = ", ".join(table.name for table in metadata.sorted_tables)


def _conninfo(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _reach(url: str) -> str | None:
    """None when PostgreSQL answers, else why not."""
    try:
        with psycopg.connect(_conninfo(url), connect_timeout=3):
            return None
    except psycopg.Error as exc:
        return str(exc).strip() or type(exc).__name__


def _start_local_cluster() -> str:
    """Try `pg_ctlcluster <version> main start`; returns what happened (for the skip reason)."""
    versions = sorted(os.listdir("/etc/postgresql")) if os.path.isdir("/etc/postgresql") else []
    if not versions:
        return "no /etc/postgresql cluster to start (install Debian's postgresql package)"
    outcome = []
    for version in versions:
        cmd = ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "start"]
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            outcome.append(f"{' '.join(cmd)}: {exc}")
            continue
        outcome.append(f"{' '.join(cmd)}: exit {done.returncode} {done.stderr.strip()}")
    return "; ".join(outcome)


class PostgresAdmin:
    """Creates throw-away databases and drops them all at the end of the session."""

    def __init__(self, admin_url: str) -> None:
        self.admin_url = admin_url
        self.prefix = f"bot_test_{secrets.token_hex(4)}"
        self.created: list[str] = []

    def create(self, suffix: str = "") -> str:
        name = self.prefix + (f"_{suffix}" if suffix else "")
        with psycopg.connect(_conninfo(self.admin_url), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        self.created.append(name)
        return make_url(self.admin_url).set(drivername="postgresql+psycopg", database=name).render_as_string(False)

    def drop_all(self) -> None:
        with psycopg.connect(_conninfo(self.admin_url), autocommit=True) as conn:
            for name in self.created:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self.created.clear()


@pytest.fixture(scope="session")
def pg_admin() -> Iterator[PostgresAdmin]:
    problem = _reach(ADMIN_URL)
    if problem and IN_CI:
        pytest.fail(
            f"PostgreSQL is not reachable at {ADMIN_URL} ({problem}). CI must provide it: start the cluster "
            "(pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start) or set BOT_TEST_POSTGRES_URL.",
            pytrace=False,
        )
    if problem:
        started = _start_local_cluster()
        for _ in range(50):
            problem = _reach(ADMIN_URL)
            if problem is None:
                break
            time.sleep(0.2)
        if problem:
            pytest.skip(
                f"!!! PostgreSQL TESTS SKIPPED: not reachable at {ADMIN_URL} ({problem}); "
                f"starting it failed: {started} !!!"
            )
    admin = PostgresAdmin(ADMIN_URL)
    try:
        yield admin
    finally:
        admin.drop_all()


@pytest.fixture(scope="session")
def pg_session_url(pg_admin: PostgresAdmin) -> str:
    """The session's database, migrated once; tests start from empty tables (see store_url)."""
    url = pg_admin.create()
    open_store(url).close()
    return url
