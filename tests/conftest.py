"""Shared fixtures. Tests never read ../shared: what they need is copied into tests/fixtures/."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"
KNOWLEDGE = ROOT / "knowledge"
IN_CI = bool(os.environ.get("CI"))
# PostgreSQL session fixtures (pg_admin, pg_session_url) for every directory.
pytest_plugins = ["pgfixtures"]


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    return FIXTURES


@pytest.fixture(scope="session")
def knowledge_dir() -> Path:
    return KNOWLEDGE


DATA = ROOT / "data"


@pytest.fixture(scope="session")
def index_settings():
    """Settings whose model and search index are the repo's own `data/` (built by `make prepare`, or here)."""
    from bot.config import Settings
    from bot.knowledge.library import load_library
    from bot.retrieval.chunks import library_chunks
    from bot.retrieval.e5_build import build_e5_model
    from bot.retrieval.embeddings import default_e5_path
    from bot.retrieval.index import build_index, make_chroma_client
    from bot.retrieval.stack import build_article_head_for, build_embeddings, build_topic_head_for
    from bot.safety.head_build import build_head, training_dir

    settings = Settings(DATA_DIR=DATA, KNOWLEDGE_DIR=KNOWLEDGE)
    build_e5_model(default_e5_path(settings.models_dir))
    build_head(
        settings.models_dir, training_dir(ROOT / "training")
    )  # the crisis head: a no-op when `make prepare` built it
    build_topic_head_for(settings)  # a no-op when `make prepare` built it
    build_article_head_for(settings)  # likewise
    # Incremental: a no-op when `make prepare` already indexed this library.
    build_index(make_chroma_client(settings), library_chunks(load_library(KNOWLEDGE)), build_embeddings(settings))
    return settings


@pytest.fixture(scope="session")
def searcher(index_settings):
    from bot.retrieval.stack import open_searcher

    return open_searcher(index_settings)


@pytest.fixture
def app_settings(tmp_path, index_settings):
    """Per-test database and data dir; shared model and index."""
    return index_settings.model_copy(
        update={"data_dir": tmp_path, "models_path": index_settings.models_dir, "chroma_path": DATA / "chroma"}
    )


@pytest.fixture
def services(app_settings, searcher):
    from bot.dialogue.factory import build_engine

    built = build_engine(app_settings, searcher=searcher)
    yield built
    built.store.close()


@pytest.fixture
def engine(services):
    return services.engine


REDIS_URL = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0"


@pytest.fixture
def redis_url() -> str:
    """A running Redis (CI must provide one: the test fails there instead of skipping)."""
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
    except redis.RedisError as exc:
        if IN_CI:
            pytest.fail(f"Redis is not reachable at {REDIS_URL} (CI needs it): {exc}")
        pytest.skip(f"Redis is not reachable at {REDIS_URL}: {exc}")
    return REDIS_URL
