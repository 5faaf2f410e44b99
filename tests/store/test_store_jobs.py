"""Job postings on both stores: one transaction per import, upsert by id, replace, removal, expiry never read back."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy.exc

from bot.jobs.feed import read_feed
from bot.jobs.model import Posting
from bot.jobs.repository import JobRepository
from bot.store import open_store

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "knowledge" / "jobs" / "sample-postings.jsonld"
NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


def make(n: int, *, source: str = "feed", **extra: object) -> Posting:
    values: dict[str, object] = {
        "id": f"{source}-{n:05d}",
        "source": source,
        "source_label": "テスト求人（架空）",
        "title": f"営業スタッフ{n}",
        "company": "テスト商事（架空）",
        "description": "既存のお客さまを訪問します。",
        "job_type": "sales",
        "prefecture": "東京都",
        "employment_types": ["FULL_TIME"],
        "salary_min": 4_000_000,
        "salary_max": 5_000_000,
        "salary_unit": "YEAR",
        "url": f"https://jobs.example.com/{source}/{n}",
        "valid_through": NOW + timedelta(days=30),
    }
    values.update(extra)
    return Posting.model_validate(values)


@pytest.fixture
def repo(store_url: str):
    store = open_store(store_url)
    yield JobRepository(store)
    store.close()


def test_import_then_read_back_exactly_what_was_imported(repo: JobRepository) -> None:
    feed = read_feed(SAMPLE)
    result = repo.import_feed(feed.postings, source="sample", now=NOW)
    assert (result.added, result.updated, result.unchanged, result.removed) == (len(feed.postings), 0, 0, 0)
    assert result.expired == 1  # sample-034 ended in 2020
    shown = repo.get([p.id for p in feed.postings], now=NOW)
    # The expired posting is stored and never read back; every other one comes back field for field.
    assert [p.id for p in shown] == [p.id for p in feed.postings if p.id != "sample-034"]
    assert shown == [p for p in feed.postings if p.id != "sample-034"]
    assert repo.count(now=NOW) == len(feed.postings) - 1 and repo.count(live_only=False) == len(feed.postings)
    assert "sample-034" not in {row.id for row in repo.snapshot(now=NOW)}


def test_re_import_upserts_by_id_and_counts_what_changed(repo: JobRepository) -> None:
    repo.import_feed([make(1), make(2), make(3)], source="feed", now=NOW)
    version = repo.version()
    changed = make(2, title="営業スタッフ（条件変更）", salary_min=4_500_000)
    result = repo.import_feed([make(1), changed, make(3), make(4)], source="feed", now=NOW)
    assert (result.added, result.updated, result.unchanged, result.removed) == (1, 1, 2, 0)
    assert repo.get(["feed-00002"], now=NOW)[0].title == "営業スタッフ（条件変更）"
    assert repo.count(now=NOW) == 4
    assert repo.version() > version, "servers reload their snapshot after an import"


def test_replace_removes_the_sources_postings_absent_from_the_feed(repo: JobRepository) -> None:
    repo.import_feed([make(1), make(2), make(3)], source="feed", now=NOW)
    repo.import_feed([make(1, source="other")], source="other", now=NOW)
    result = repo.import_feed([make(1), make(3)], source="feed", replace=True, now=NOW)
    assert result.removed == 1
    assert repo.get(["feed-00001", "feed-00002", "feed-00003", "other-00001"], now=NOW) == [
        make(1),
        make(3),
        make(1, source="other"),
    ]


def test_a_re_import_with_a_past_valid_through_hides_the_posting(repo: JobRepository) -> None:
    repo.import_feed([make(1), make(2)], source="feed", now=NOW)
    repo.import_feed([make(2, valid_through=NOW - timedelta(minutes=1))], source="feed", now=NOW)
    assert [p.id for p in repo.get(["feed-00001", "feed-00002"], now=NOW)] == ["feed-00001"]
    # ...and time passing does the same: tomorrow's reader sees neither once both ended.
    later = NOW + timedelta(days=31)
    assert repo.get(["feed-00001", "feed-00002"], now=later) == [] and repo.snapshot(now=later) == []


def test_remove_by_id_by_source_and_every_expired_one(repo: JobRepository) -> None:
    repo.import_feed([make(n) for n in range(1, 6)], source="feed", now=NOW)
    repo.import_feed([make(1, source="old", valid_through=NOW - timedelta(days=1))], source="old", now=NOW)
    repo.import_feed([make(1, source="gone")], source="gone", now=NOW)
    assert repo.remove(["feed-00001", "feed-00002", "no-such-id"], now=NOW) == 2
    assert repo.remove(source="gone", now=NOW) == 1
    assert repo.remove(expired=True, now=NOW) == 1
    assert sorted(repo.all_hashes()) == ["feed-00003", "feed-00004", "feed-00005"]


def test_a_feed_that_fails_midway_leaves_nothing_behind(repo: JobRepository) -> None:
    """Several statements' worth of postings, the last one refused by the database: the whole import rolls back."""
    repo.import_feed([make(1)], source="feed", now=NOW)
    version = repo.version()
    good = [make(n) for n in range(2, 900)]  # more than two insert statements
    broken = Posting.model_construct(**{**make(900).model_dump(), "company": None})  # NOT NULL in both databases
    with pytest.raises(sqlalchemy.exc.IntegrityError):
        repo.import_feed([*good, broken], source="feed", now=NOW)
    assert sorted(repo.all_hashes()) == ["feed-00001"] and repo.version() == version


def test_a_large_import_is_chunked_within_the_databases_limits(repo: JobRepository) -> None:
    postings = [make(n) for n in range(6000)]  # above BIG_CHANGE: hashes read in one pass, statistics refreshed
    result = repo.import_feed(postings, source="feed", now=NOW)
    assert result.added == 6000 and repo.count(now=NOW) == 6000
    assert len(repo.get([p.id for p in postings], now=NOW)) == 6000
    postings[10] = make(10, title="変更")
    again = repo.import_feed(postings, source="feed", now=NOW)
    assert (again.added, again.updated, again.unchanged) == (0, 1, 5999)
