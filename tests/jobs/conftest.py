"""An engine whose job search holds the sample feed, in a Chroma collection of the test's own."""

from __future__ import annotations

import contextlib
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "knowledge" / "jobs" / "sample-postings.jsonld"


def import_feed(settings, store, embeddings, path: Path = SAMPLE, **options) -> None:
    """What `bot jobs import` does: read, one transaction into the store, then the postings' own index."""
    from bot.jobs.feed import read_feed
    from bot.jobs.index import JobIndex, posting_embedder
    from bot.jobs.repository import JobRepository
    from bot.retrieval.index import make_chroma_client

    feed = read_feed(path)
    assert feed.errors == [] and feed.options is not None
    repo = JobRepository(store)
    repo.import_feed(feed.postings, source=feed.options.source, **options)
    JobIndex(make_chroma_client(settings), posting_embedder(embeddings), settings.jobs_collection).sync(repo)


@pytest.fixture
def jobs_settings(app_settings):
    settings = app_settings.model_copy(update={"jobs_collection": f"jobs_test_{uuid.uuid4().hex[:8]}"})
    yield settings
    from bot.retrieval.index import make_chroma_client

    with contextlib.suppress(Exception):
        make_chroma_client(settings).delete_collection(settings.jobs_collection)


@pytest.fixture
def jobs_services(jobs_settings, searcher):
    from bot.dialogue.factory import build_engine

    built = build_engine(jobs_settings, searcher=searcher)
    import_feed(jobs_settings, built.store, searcher.embeddings)
    yield built
    built.store.close()


@pytest.fixture
def jobs_engine(jobs_services):
    return jobs_services.engine
