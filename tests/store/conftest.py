"""Store fixtures: every behaviour runs on SQLite (a file in tmp_path) and on a real PostgreSQL.

PostgreSQL: a fresh database `bot_test_<random>` per test session, created through the `postgres` database and
dropped at the end; tests that need an empty database (migrations) get an empty schema of it (see fresh_url). When the
server is not reachable the tests fail in CI (CI set) and otherwise try to start the local cluster, skipping loudly
only when that fails too. BOT_TEST_POSTGRES_URL overrides the admin URL.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from pgfixtures import TABLES, _conninfo
from sqlalchemy.engine import make_url

from bot.store import Store, open_store

BACKENDS = [pytest.param("sqlite", id="sqlite"), pytest.param("postgres", id="postgres", marks=pytest.mark.postgres)]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def store_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """A migrated, empty database of the backend under test."""
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'db' / 'store.sqlite3'}"
        open_store(url).close()
        return url
    url = str(request.getfixturevalue("pg_session_url"))
    with psycopg.connect(_conninfo(url), autocommit=True) as conn:
        conn.execute(f"TRUNCATE {TABLES} RESTART IDENTITY")
    return url


@pytest.fixture
def fresh_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    """An empty, never-migrated database of the backend under test.

    On PostgreSQL an empty schema of the session's database, first on the search_path: as good as a new database
    for the store, and dropping it takes milliseconds where DROP DATABASE waits for a checkpoint.
    """
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'fresh' / 'store.sqlite3'}"
        return
    base = make_url(str(request.getfixturevalue("pg_session_url")))
    schema = f"fresh_{secrets.token_hex(4)}"
    with psycopg.connect(_conninfo(base.render_as_string(False)), autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield base.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(False)
    finally:
        with psycopg.connect(_conninfo(base.render_as_string(False)), autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


StoreFactory = Callable[..., Store]


@pytest.fixture
def open_another(store_url: str) -> Iterator[StoreFactory]:
    """Open more store instances on the same database (another process's view); all closed at the end."""
    opened: list[Store] = []

    def factory(**kwargs: object) -> Store:
        store = open_store(store_url, migrate=False, **kwargs)  # type: ignore[arg-type]
        opened.append(store)
        return store

    yield factory
    for store in opened:
        store.close()


@pytest.fixture
def store(open_another: StoreFactory) -> Store:
    return open_another()
