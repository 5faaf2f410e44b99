"""Migrations on both backends: no drift from the models, idempotent, safe when processes start together."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, inspect

from bot.store import open_store, upgrade
from bot.store.migrations import alembic_config, current_revision, head_revision
from bot.store.postgres import PostgresStore, psycopg_url
from bot.store.schema import metadata
from bot.store.sql import SQLStore
from bot.store.sqlite import SQLiteStore

TABLES = {table.name for table in metadata.sorted_tables}


def _sa_url(url: str) -> str:
    return psycopg_url(url).render_as_string(False) if url.startswith("postgres") else url


def table_names(url: str) -> set[str]:
    engine = create_engine(_sa_url(url))
    try:
        with engine.connect() as conn:
            return set(inspect(conn).get_table_names())
    finally:
        engine.dispose()


def test_head_matches_the_models(fresh_url: str) -> None:
    assert upgrade(fresh_url) == head_revision()
    engine = create_engine(_sa_url(fresh_url))
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True, "target_metadata": metadata})
            diff = compare_metadata(context, metadata)
            assert current_revision(conn) == head_revision()
    finally:
        engine.dispose()
    assert diff == [], f"schema.py and the migrations disagree; add a revision: {diff}"


def test_indexes_the_queries_rely_on(fresh_url: str) -> None:
    upgrade(fresh_url)
    engine = create_engine(_sa_url(fresh_url))
    try:
        with engine.connect() as conn:
            insp = inspect(conn)
            turn_ix = {tuple(ix["column_names"]) for ix in insp.get_indexes("turns")}
            inbox_ix = {tuple(ix["column_names"]) for ix in insp.get_indexes("inbox_events")}
            inbox_uq = {tuple(uq["column_names"]) for uq in insp.get_unique_constraints("inbox_events")}
    finally:
        engine.dispose()
    assert ("conversation_id", "id") in turn_ix
    assert {("status", "claimed_at"), ("conversation_key", "pk")} <= inbox_ix
    assert ("source", "event_id") in inbox_uq


def test_upgrade_is_idempotent(fresh_url: str) -> None:
    store = open_store(fresh_url)
    store.add_turn("c1", "user", "残っているはず")
    store.close()
    assert upgrade(fresh_url) == head_revision()
    store = open_store(fresh_url)
    assert [t.text for t in store.recent_turns("c1", 5)] == ["残っているはず"]
    store.close()


def test_concurrent_migrations_from_two_threads(fresh_url: str) -> None:
    barrier = threading.Barrier(4)
    outcomes: list[object] = []

    def start_up(i: int) -> None:
        barrier.wait()
        try:
            if i % 2:
                outcomes.append(upgrade(fresh_url))
            else:
                store = open_store(fresh_url)
                store.ping()
                store.close()
                outcomes.append(head_revision())
        except Exception as exc:
            outcomes.append(exc)

    threads = [threading.Thread(target=start_up, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert outcomes == [head_revision()] * 4
    assert table_names(fresh_url) >= TABLES


def test_downgrade_and_upgrade_again(fresh_url: str) -> None:
    store = open_store(fresh_url)
    assert isinstance(store, SQLStore)
    with store.engine.begin() as conn:
        command.downgrade(alembic_config(conn), "base")
    assert not (TABLES & table_names(fresh_url))
    store.upgrade()
    assert table_names(fresh_url) >= TABLES
    store.close()


def test_migrate_false_leaves_the_database_alone(fresh_url: str) -> None:
    store = open_store(fresh_url, migrate=False)
    store.ping()
    store.close()
    assert not (TABLES & table_names(fresh_url))


def test_url_picks_the_backend(tmp_path: Path) -> None:
    nested = tmp_path / "a" / "b" / "bot.sqlite3"
    store = open_store(f"sqlite:///{nested}")
    assert isinstance(store, SQLiteStore) and nested.exists()
    store.close()
    for url in (
        "postgresql://u@h/db",
        "postgres://u@h/db",
        "postgresql+psycopg2://u@h/db",
        "postgresql+psycopg://u@h/db",
    ):
        assert psycopg_url(url).drivername == "postgresql+psycopg"
    pg = open_store("postgresql://postgres@127.0.0.1:9/none", migrate=False)
    assert isinstance(pg, PostgresStore) and pg.engine.url.drivername == "postgresql+psycopg"
    pg.close()
    with pytest.raises(ValueError, match="scheme"):
        open_store("mysql://u@h/db")
    with pytest.raises(ValueError, match="SQLite file"):
        open_store("sqlite://")


def test_sqlite_is_set_up_for_several_processes(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'x.sqlite3'}")
    assert isinstance(store, SQLiteStore)
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert (conn.exec_driver_sql("PRAGMA busy_timeout").scalar() or 0) >= 5000
    store.close()


def test_upgrades_of_different_databases_in_one_process(tmp_path: Path) -> None:
    """Alembic's context is process-wide: upgrades of several databases at once must not trip over each other."""
    urls = [f"sqlite:///{tmp_path / f'db{i}.sqlite3'}" for i in range(6)]
    barrier = threading.Barrier(len(urls))
    outcomes: list[object] = []

    def start_up(url: str) -> None:
        barrier.wait()
        try:
            outcomes.append(upgrade(url))
        except Exception as exc:
            outcomes.append(exc)

    threads = [threading.Thread(target=start_up, args=(url,)) for url in urls]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert outcomes == [head_revision()] * len(urls)
